/* test_addr.c - unit tests for addr.c: RFC 5321 / RFC 6531 mailbox syntax. */
#include <criterion/criterion.h>
#include <string.h>

#include "addr.h"
#include "bounds.h"

/* ok - assert that the NUL-terminated a is valid with exactly the flags want. */
static void ok(const char *a, unsigned want)
{
	unsigned fl = 0xffu;
	const char *why = addr_check(a, strlen(a), &fl);

	cr_assert_null(why, "'%s' rejected: %s", a, why ? why : "");
	cr_assert_eq(fl, want, "'%s': flags %u, want %u", a, fl, want);
}

/* bad_n - assert that a[0..n) is rejected with exactly the reason want, flags cleared. */
static void bad_n(const char *a, size_t n, const char *want)
{
	unsigned fl = 0xffu;
	const char *why = addr_check(a, n, &fl);

	cr_assert_not_null(why, "'%.*s' accepted, want '%s'", (int)n, a, want);
	cr_assert_str_eq(why, want, "'%.*s'", (int)n, a);
	cr_assert_eq(fl, 0u, "flags must be 0 on rejection");
}

/* bad - bad_n for a NUL-terminated string. */
static void bad(const char *a, const char *want)
{
	bad_n(a, strlen(a), want);
}

/* fill - write n copies of c at p; returns p + n. */
static char *fill(char *p, char c, size_t n)
{
	memset(p, c, n);
	return p + n;
}

/* make_domain - write a domain of exactly n octets (labels of at most 63) into p, NUL-terminated. */
static void make_domain(char *p, size_t n)
{
	while (n > 0) {
		size_t l = n > 63 ? 63 : n;
		if (n - l == 1) /* never leave a lone dot at the end */
			l--;
		p = fill(p, 'd', l);
		n -= l;
		if (n > 0) {
			*p++ = '.';
			n--;
		}
	}
	*p = '\0';
}

Test(addr, dot_string_valid)
{
	ok("a@b", 0);
	ok("alice@example.org", 0);
	ok("first.last@example.com", 0);
	ok("a.b.c.d@e.f.g", 0);
	ok("x!#$%&'*+-/=?^_`{|}~y@example.com", 0);
	ok("USER+tag@Example.COM", 0);
	ok("user@localhost", 0);
	ok("1@2.3", 0);
	ok("u@a-b.c--d.e", 0);
	ok("u@xn--bcher-kva.example", 0);
}

Test(addr, quoted_valid)
{
	ok("\"john doe\"@example.com", 0);
	ok("\"a\\\"b\"@example.com", 0);
	ok("\"a\\\\b\"@example.com", 0);
	ok("\"a@b\"@example.com", 0);
	ok("\"a..b\"@example.com", 0);
	ok("\".a.\"@example.com", 0);
	ok("\"(comment) <x>, y\"@example.com", 0);
	ok("\"\"@example.com", 0);
	ok("\"\\ \"@example.com", 0);
}

Test(addr, address_literals_valid)
{
	ok("a@[192.0.2.1]", 0);
	ok("a@[0.0.0.0]", 0);
	ok("a@[255.255.255.255]", 0);
	ok("a@[010.1.1.1]", 0);
	ok("a@[IPv6:2001:db8::1]", 0);
	ok("a@[IPv6:::1]", 0);
	ok("a@[ipv6:::ffff:192.0.2.1]", 0);
	ok("\"q\"@[192.0.2.1]", 0);
}

Test(addr, address_literals_invalid)
{
	bad("a@[256.1.1.1]", "invalid IPv4 address literal");
	bad("a@[1.2.3]", "invalid IPv4 address literal");
	bad("a@[1.2.3.4.5]", "invalid IPv4 address literal");
	bad("a@[1.2.3.1234]", "invalid IPv4 address literal");
	bad("a@[1.2.3.0255]", "invalid IPv4 address literal");
	bad("a@[0001.2.3.4]", "invalid IPv4 address literal");
	bad("a@[1..2.3]", "invalid IPv4 address literal");
	bad("a@[1.2.3.4 ]", "invalid IPv4 address literal");
	bad("a@[]", "invalid IPv4 address literal");
	bad("a@[example.com]", "invalid IPv4 address literal");
	bad("a@[1.2.3.4", "unterminated address literal");
	bad("a@[", "unterminated address literal");
	bad("a@[IPv6:zz::1]", "invalid IPv6 address literal");
	bad("a@[IPv6:1.2.3.4]", "invalid IPv6 address literal");
	bad("a@[IPv6:]", "invalid IPv6 address literal");
	bad("a@[IPv6:1:2:3:4:5:6:7:8:9]", "invalid IPv6 address literal");
	bad("a@[x-tag:abc]", "unsupported address literal (only IPv4 and IPv6)");
	bad("a@[2001:db8::1]", "unsupported address literal (only IPv4 and IPv6)");
}

Test(addr, utf8_flagged)
{
	ok("josé@example.com", ADDR_UTF8);
	ok("user@münchen.de", ADDR_UTF8);
	ok("δοκιμή@παράδειγμα.δοκιμή", ADDR_UTF8);
	ok("用户@例子.广告", ADDR_UTF8);
	ok("😀@example.com", ADDR_UTF8);
	ok("\"ü ö\"@example.de", ADDR_UTF8);
	ok("a.\xe2\x82\xac@example.com", ADDR_UTF8);     /* U+20AC */
	ok("\xef\xbf\xbd@example.com", ADDR_UTF8);       /* U+FFFD */
	ok("\xf4\x8f\xbf\xbf@example.com", ADDR_UTF8);   /* U+10FFFF */
	ok("\xed\x9f\xbf@example.com", ADDR_UTF8);       /* U+D7FF, just below surrogates */
	ok("plain@example.com", 0);
}

Test(addr, utf8_malformed)
{
	bad("\xc3@example.com", "invalid UTF-8 in local part");          /* truncated */
	bad("a\xc3", "missing '@'");
	bad("\xc0\xaf@example.com", "invalid UTF-8 in local part");      /* overlong '/' */
	bad("\xc1\xbf@example.com", "invalid UTF-8 in local part");      /* overlong */
	bad("\xe0\x80\xaf@example.com", "invalid UTF-8 in local part");  /* overlong */
	bad("\xf0\x80\x80\xaf@example.com", "invalid UTF-8 in local part"); /* overlong */
	bad("\xed\xa0\x80@example.com", "invalid UTF-8 in local part");  /* U+D800 */
	bad("\xed\xbf\xbf@example.com", "invalid UTF-8 in local part");  /* U+DFFF */
	bad("\xf4\x90\x80\x80@example.com", "invalid UTF-8 in local part"); /* > U+10FFFF */
	bad("\xf5\x80\x80\x80@example.com", "invalid UTF-8 in local part");
	bad("\xff@example.com", "invalid UTF-8 in local part");
	bad("\x80@example.com", "invalid UTF-8 in local part");          /* lone continuation */
	bad("\xe2\x82@example.com", "invalid UTF-8 in local part");      /* cut by '@' */
	bad("\"\xc3(\"@example.com", "invalid UTF-8 in local part");
	bad("a@\xff.com", "invalid UTF-8 in domain");
	bad("a@m\xc3\x28nchen.de", "invalid UTF-8 in domain");
	bad("a@example.\xed\xa0\x80", "invalid UTF-8 in domain");
}

Test(addr, control_characters)
{
	bad("a\r@example.com", "control character in address");
	bad("a\n@example.com", "control character in address");
	bad("a@example.com\r\n", "control character in address");
	bad("a\t@example.com", "control character in address");
	bad("a\x7f@example.com", "control character in address");
	bad("\x01@example.com", "control character in address");
	bad("a@exa\x1fmple.com", "control character in address");
	bad("\"a\x01\"@example.com", "control character in address");
	bad_n("a\0b@example.com", 15, "control character in address");
	bad_n("a@example.com\0", 14, "control character in address");
}

Test(addr, structure_rejections)
{
	bad("", "empty address");
	bad("alice", "missing '@'");
	bad("alice.example.com", "missing '@'");
	bad("\"alice\"", "missing '@'");
	bad("@example.com", "empty local part");
	bad("@", "empty local part");
	bad("alice@", "empty domain");
	bad("\"alice\"@", "empty domain");
	bad("a@b@c", "invalid character in domain");
}

Test(addr, dot_string_rejections)
{
	bad(".a@example.com", "local part starts with a dot");
	bad("a.@example.com", "local part ends with a dot");
	bad(".@example.com", "local part starts with a dot");
	bad("a..b@example.com", "consecutive dots in local part");
	bad("a b@example.com", "invalid character in local part");
	bad("a(b)@example.com", "invalid character in local part");
	bad("a,b@example.com", "invalid character in local part");
	bad("a\"b\"@example.com", "invalid character in local part");
	bad("<a@example.com>", "invalid character in local part");
	bad("a\\b@example.com", "invalid character in local part");
	bad("a[b]@example.com", "invalid character in local part");
}

Test(addr, quoted_rejections)
{
	bad("\"abc@example.com", "unterminated quoted local part");
	bad("\"", "unterminated quoted local part");
	bad("\"a\"b@example.com", "expected '@' after quoted local part");
	bad("\"a\".b@example.com", "expected '@' after quoted local part");
	bad("\"a\\\xc3\xa9\"@example.com", "invalid quoted pair in local part");
	bad("\"a\\", "invalid quoted pair in local part");
}

Test(addr, domain_rejections)
{
	bad("a@-b.com", "domain label starts with '-'");
	bad("a@b-.com", "domain label ends with '-'");
	bad("a@b.-", "domain label starts with '-'");
	bad("a@b..com", "empty label in domain");
	bad("a@.com", "empty label in domain");
	bad("a@example.com.", "empty label in domain");
	bad("a@.", "empty label in domain");
	bad("a@b_c.com", "invalid character in domain");
	bad("a@b c.com", "invalid character in domain");
	bad("a@example.com>", "invalid character in domain");
	bad("a@exa!mple.com", "invalid character in domain");
}

Test(addr, local_part_length_boundary)
{
	char a[256];
	char *p;

	p = fill(a, 'l', 64);
	strcpy(p, "@example.com");
	ok(a, 0);
	p = fill(a, 'l', 65);
	strcpy(p, "@example.com");
	bad(a, "local part longer than 64 octets");

	/* A quoted local part counts its quotes: 1 + 62 + 1 = 64. */
	a[0] = '"';
	p = fill(a + 1, 'q', 62);
	strcpy(p, "\"@example.com");
	ok(a, 0);
	p = fill(a + 1, 'q', 63);
	strcpy(p, "\"@example.com");
	bad(a, "local part longer than 64 octets");

	/* Multi-octet characters count as octets: 32 x "é" = 64 octets, 33 = 66. */
	p = a;
	for (int i = 0; i < 32; i++, p += 2)
		memcpy(p, "\xc3\xa9", 2);
	strcpy(p, "@example.com");
	ok(a, ADDR_UTF8);
	memcpy(p, "\xc3\xa9@example.com", 15);
	bad(a, "local part longer than 64 octets");
}

Test(addr, label_length_boundary)
{
	char a[128];
	char *p;

	p = fill(a, 'l', 1);
	*p++ = '@';
	p = fill(p, 'd', 63);
	strcpy(p, ".com");
	ok(a, 0);

	p = fill(a, 'l', 1);
	*p++ = '@';
	p = fill(p, 'd', 64);
	strcpy(p, ".com");
	bad(a, "domain label longer than 63 octets");

	p = fill(a, 'l', 1);
	strcpy(p, "@x.");
	p = fill(p + 3, 'd', 64);
	*p = '\0';
	bad(a, "domain label longer than 63 octets");
}

Test(addr, domain_length_boundary)
{
	char a[600];

	/* A domain of 255 octets is a valid domain, but "a@" + 255 exceeds 254. */
	strcpy(a, "a@");
	make_domain(a + 2, 255);
	cr_assert_eq(strlen(a), 257u);
	bad(a, "address longer than 254 octets");

	make_domain(a + 2, 256);
	cr_assert_eq(strlen(a), 258u);
	bad(a, "domain longer than 255 octets");

	make_domain(a + 2, 500);
	bad(a, "domain longer than 255 octets");

	/* The mailbox limit itself: 254 octets pass, 255 do not. */
	make_domain(a + 2, 252);
	cr_assert_eq(strlen(a), 254u);
	ok(a, 0);
	make_domain(a + 2, 253);
	cr_assert_eq(strlen(a), 255u);
	bad(a, "address longer than 254 octets");
}

Test(addr, mailbox_length_boundary_with_full_local_part)
{
	char a[300];
	char *p = fill(a, 'l', 64);

	*p++ = '@';
	make_domain(p, ADDR_MAX_MAILBOX - 65);
	cr_assert_eq(strlen(a), (size_t)ADDR_MAX_MAILBOX);
	ok(a, 0);
	make_domain(p, ADDR_MAX_MAILBOX - 64);
	cr_assert_eq(strlen(a), (size_t)ADDR_MAX_MAILBOX + 1);
	bad(a, "address longer than 254 octets");
}

Test(addr, length_is_respected_not_nul)
{
	const char *s = "alice@example.orgGARBAGE";
	unsigned fl = 7;

	cr_assert_null(addr_check(s, 17, &fl));
	cr_assert_eq(fl, 0u);
	cr_assert_str_eq(addr_check(s, 5, &fl), "missing '@'");
	cr_assert_str_eq(addr_check(s, 6, &fl), "empty domain");
}

Test(addr, null_flags_pointer)
{
	cr_assert_null(addr_check("a@b.c", 5, NULL));
	cr_assert_str_eq(addr_check("a@", 2, NULL), "empty domain");
	cr_assert_null(addr_check("é@b.c", strlen("é@b.c"), NULL));
}

Test(addr, domain_pointer)
{
	const char *a = "alice@example.org";
	const char *q = "\"x@y\"@z.org";
	const char *e = "\"x\\\"@y\"@z";
	const char *t = "a@";

	cr_assert_eq(addr_domain(a, strlen(a)), a + 6);
	cr_assert_eq(addr_domain(q, strlen(q)), q + 6);
	cr_assert_eq(addr_domain(e, strlen(e)), e + 8);
	cr_assert_str_eq(addr_domain(e, strlen(e)), "z");
	cr_assert_null(addr_domain("alice", 5));
	cr_assert_null(addr_domain("\"a@b\"", 5));
	cr_assert_null(addr_domain("", 0));
	cr_assert_str_eq(addr_domain("a@b@c", 5), "c");
	cr_assert_eq(addr_domain(t, 2), t + 2, "empty domain: pointer at the end");
	cr_assert_eq(addr_domain(a, 5), NULL, "the length bounds the search");
}
