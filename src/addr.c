/* addr.c - RFC 5321 / RFC 6531 mailbox syntax checks: pure functions, no I/O, no allocation. */
#include "addr.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "bounds.h"

/* The reasons below spell these numbers out. */
_Static_assert(ADDR_MAX_LOCAL == 64u, "reason text says 64");
_Static_assert(ADDR_MAX_DOMAIN == 255u, "reason text says 255");
_Static_assert(ADDR_MAX_MAILBOX == 254u, "reason text says 254");

#define ADDR_MAX_LABEL 63u     /* octets in one domain label (RFC 1035 2.3.4) */
#define ADDR_MAX_LITERAL 64u   /* octets inside "[...]" we are willing to look at */

/* addr_alnum - ASCII letter or digit. */
static bool addr_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* addr_atext - RFC 5322 atext, ASCII part (RFC 6531 adds UTF-8, handled apart). */
static bool addr_atext(unsigned char c)
{
	return addr_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* addr_utf8_len - length (2..4) of the well-formed UTF-8 sequence at s, or 0.
 * Rejects overlong forms, surrogates (U+D800..DFFF) and code points above U+10FFFF
 * (the table of RFC 3629 section 4). */
static size_t addr_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t k;

	if (c >= 0xc2 && c <= 0xdf)
		k = 2;
	else if (c >= 0xe0 && c <= 0xef)
		k = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		k = 4;
	else
		return 0; /* ASCII, continuation octet, C0/C1 overlong lead, F5..FF */
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* above U+10FFFF */
	if (n < k || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < k; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return k;
}

/* addr_dot_string - check a Dot-string local part s[0..n), n >= 1. */
static const char *addr_dot_string(const unsigned char *s, size_t n, unsigned *fl)
{
	if (s[0] == '.')
		return "local part starts with a dot";
	if (s[n - 1] == '.')
		return "local part ends with a dot";
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		if (c == '.') {
			if (s[i + 1] == '.') /* i + 1 < n: the last octet is not a dot */
				return "consecutive dots in local part";
			i++;
		} else if (c >= 0x80) {
			size_t k = addr_utf8_len(s + i, n - i);
			if (k == 0)
				return "invalid UTF-8 in local part";
			*fl |= ADDR_UTF8;
			i += k;
		} else if (addr_atext(c)) {
			i++;
		} else {
			return "invalid character in local part";
		}
	}
	return NULL;
}

/* addr_quoted - check a Quoted-string local part starting at s[0] == '"'.
 * Sets *end to the offset just past the closing quote. */
static const char *addr_quoted(const unsigned char *s, size_t n, size_t *end, unsigned *fl)
{
	for (size_t i = 1; i < n;) {
		unsigned char c = s[i];
		if (c == '"') {
			*end = i + 1;
			return NULL;
		}
		if (c == '\\') {
			if (i + 1 >= n || s[i + 1] < 32 || s[i + 1] > 126)
				return "invalid quoted pair in local part";
			i += 2;
		} else if (c >= 0x80) { /* RFC 6531: qtextSMTP =/ UTF8-non-ascii */
			size_t k = addr_utf8_len(s + i, n - i);
			if (k == 0)
				return "invalid UTF-8 in local part";
			*fl |= ADDR_UTF8;
			i += k;
		} else {
			i++; /* 32..126 except '"' and '\\': qtextSMTP */
		}
	}
	return "unterminated quoted local part";
}

/* addr_ipv4 - check a dotted quad: four 1..3 digit numbers, each at most 255. */
static bool addr_ipv4(const unsigned char *s, size_t n)
{
	size_t i = 0;

	for (unsigned part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;
		if (part > 0) {
			if (i >= n || s[i] != '.')
				return false;
			i++;
		}
		while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 3) {
			v = v * 10u + (unsigned)(s[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0 || v > 255)
			return false;
	}
	return i == n;
}

/* addr_literal - check an address literal "[...]" of n octets (s[0] == '['). */
static const char *addr_literal(const unsigned char *s, size_t n)
{
	char buf[ADDR_MAX_LITERAL + 1];
	unsigned char a6[16];
	const unsigned char *in = s + 1;
	size_t len;

	if (n < 2 || s[n - 1] != ']')
		return "unterminated address literal";
	len = n - 2;
	if (len >= 5 && strncasecmp((const char *)in, "IPv6:", 5) == 0) {
		in += 5;
		len -= 5;
		if (len == 0 || len > ADDR_MAX_LITERAL)
			return "invalid IPv6 address literal";
		memcpy(buf, in, len);
		buf[len] = '\0';
		if (inet_pton(AF_INET6, buf, a6) != 1)
			return "invalid IPv6 address literal";
		return NULL;
	}
	if (memchr(in, ':', len) != NULL)
		return "unsupported address literal (only IPv4 and IPv6)";
	if (!addr_ipv4(in, len))
		return "invalid IPv4 address literal";
	return NULL;
}

/* addr_label - check the label d[0..n) (n may be 0) of a domain. */
static const char *addr_label(const unsigned char *d, size_t n, unsigned *fl)
{
	if (n == 0)
		return "empty label in domain";
	if (n > ADDR_MAX_LABEL)
		return "domain label longer than 63 octets";
	if (d[0] == '-')
		return "domain label starts with '-'";
	if (d[n - 1] == '-')
		return "domain label ends with '-'";
	for (size_t i = 0; i < n;) {
		unsigned char c = d[i];
		if (c >= 0x80) {
			size_t k = addr_utf8_len(d + i, n - i);
			if (k == 0)
				return "invalid UTF-8 in domain";
			*fl |= ADDR_UTF8;
			i += k;
		} else if (addr_alnum(c) || c == '-') {
			i++;
		} else {
			return "invalid character in domain";
		}
	}
	return NULL;
}

/* addr_domain_check - check a Domain or address literal d[0..n). */
static const char *addr_domain_check(const unsigned char *d, size_t n, unsigned *fl)
{
	if (n == 0)
		return "empty domain";
	if (n > ADDR_MAX_DOMAIN)
		return "domain longer than 255 octets";
	if (d[0] == '[')
		return addr_literal(d, n);
	for (size_t i = 0;;) {
		const unsigned char *dot = memchr(d + i, '.', n - i);
		size_t end = dot ? (size_t)(dot - d) : n;
		const char *why = addr_label(d + i, end - i, fl);
		if (why)
			return why;
		if (end == n)
			return NULL;
		i = end + 1; /* a trailing dot leaves an empty last label */
	}
}

/* addr_check - validate a bare Mailbox (see addr.h). */
const char *addr_check(const char *a, size_t len, unsigned *flags)
{
	const unsigned char *s = (const unsigned char *)a;
	unsigned fl = 0;
	size_t local;
	const char *why;

	if (flags)
		*flags = 0;
	if (len == 0)
		return "empty address";
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return "control character in address";
	if (s[0] == '"') {
		why = addr_quoted(s, len, &local, &fl);
		if (why)
			return why;
		if (local > ADDR_MAX_LOCAL)
			return "local part longer than 64 octets";
		if (local == len)
			return "missing '@'";
		if (s[local] != '@')
			return "expected '@' after quoted local part";
	} else {
		const unsigned char *at = memchr(s, '@', len);
		if (at == NULL)
			return "missing '@'";
		local = (size_t)(at - s);
		if (local == 0)
			return "empty local part";
		if (local > ADDR_MAX_LOCAL)
			return "local part longer than 64 octets";
		why = addr_dot_string(s, local, &fl);
		if (why)
			return why;
	}
	why = addr_domain_check(s + local + 1, len - local - 1, &fl);
	if (why)
		return why;
	if (len > ADDR_MAX_MAILBOX)
		return "address longer than 254 octets";
	if (flags)
		*flags = fl;
	return NULL;
}

/* addr_domain - pointer just past the last '@' outside quotes, or NULL. */
const char *addr_domain(const char *a, size_t len)
{
	const char *at = NULL;
	bool quoted = false;

	for (size_t i = 0; i < len; i++) {
		char c = a[i];
		if (quoted) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '"')
				quoted = false;
		} else if (c == '"') {
			quoted = true;
		} else if (c == '@') {
			at = a + i;
		}
	}
	return at ? at + 1 : NULL;
}
