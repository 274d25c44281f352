/* test_results.c - unit tests for results.c: exact JSON lines, escaping, cutting, bounds, fuzz. */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bounds.h"
#include "category.h"
#include "results.h"

static char buf[RESULT_MAX_LINE + 64];

/* fmt - format r into buf (with the full cap) and NUL-terminate it. */
static size_t fmt(const struct result *r)
{
	memset(buf, 0x55, sizeof buf);
	size_t n = result_format(buf, RESULT_MAX_LINE, r);
	cr_assert_gt(n, 0);
	cr_assert_leq(n, RESULT_MAX_LINE);
	size_t past = n;
	while (past < sizeof buf && (unsigned char)buf[past] == 0x55)
		past++;
	cr_assert_eq(past, sizeof buf, "wrote past the end at %zu", past);
	buf[n] = '\0';
	return n;
}

/* expect - format r and compare with want exactly. */
static void expect(const struct result *r, const char *want)
{
	size_t n = fmt(r);
	cr_assert_eq(n, strlen(want), "length %zu, want %zu\n got: %s\nwant: %s", n, strlen(want), buf, want);
	cr_assert_str_eq(buf, want);
}

/* S - a string and its length, for the struct's (pointer, length) pairs. */
#define S(s) (s), (sizeof(s) - 1)

Test(results, status_names)
{
	cr_assert_str_eq(result_status_name(RS_DELIVERED), "delivered");
	cr_assert_str_eq(result_status_name(RS_BOUNCED), "bounced");
	cr_assert_str_eq(result_status_name(RS_DEFERRED), "deferred");
	cr_assert_str_eq(result_status_name(RS_FAILED), "failed");
}

Test(results, delivered_line)
{
	struct result r = { S("alice@example.com"), 2, RS_DELIVERED, 250, "2.0.0",
	                    S("2.0.0 Ok: queued as 4F1A"), "127.0.0.1:25", 1, 12, NULL, NULL, NULL, NULL };
	expect(&r, "{\"rcpt\":\"alice@example.com\",\"line\":2,\"status\":\"delivered\",\"category\":null,"
	           "\"code\":250,\"enhanced\":\"2.0.0\",\"reply\":\"2.0.0 Ok: queued as 4F1A\","
	           "\"server\":\"127.0.0.1:25\",\"mx\":null,\"ip\":null,\"tls\":null,\"attempts\":1,\"ms\":12}\n");
}

Test(results, bounced_multiline_reply)
{
	struct result r = { S("bob@example.org"), 18446744073709551615u, RS_BOUNCED, 550, "5.1.1",
	                    S("5.1.1 no such user\n5.1.1 really"), "[2001:db8::1]:2525", 4294967295u,
	                    INT64_MAX, NULL, NULL, NULL, NULL };
	expect(&r, "{\"rcpt\":\"bob@example.org\",\"line\":18446744073709551615,\"status\":\"bounced\","
	           "\"category\":\"bad-mailbox\",\"code\":550,\"enhanced\":\"5.1.1\",\"reply\":\"5.1.1 no such user\\n5.1.1 really\","
	           "\"server\":\"[2001:db8::1]:2525\",\"mx\":null,\"ip\":null,\"tls\":null,\"attempts\":4294967295,\"ms\":9223372036854775807}\n");
}

Test(results, failed_bad_line_with_control_chars_and_invalid_utf8)
{
	struct result r = { S("x\x01y\x7f\xff\xc3(\"\t"), 7, RS_FAILED, 0, NULL,
	                    S("control character in address"), NULL, 0, -1, NULL, NULL, NULL, NULL };
	expect(&r, "{\"rcpt\":\"x\\u0001y\\u007f\\u00ff\\u00c3(\\\"\\t\",\"line\":7,\"status\":\"failed\","
	           "\"category\":\"local\",\"code\":null,\"enhanced\":null,\"reply\":\"control character in address\","
	           "\"server\":null,\"mx\":null,\"ip\":null,\"tls\":null,\"attempts\":0,\"ms\":null}\n");
}

Test(results, deferred_with_nulls_and_zero_line)
{
	struct result r = { S("c@d"), 0, RS_DEFERRED, 0, NULL, S("connection timed out"),
	                    "10.0.0.1:25", 3, 0, NULL, NULL, NULL, NULL };
	expect(&r, "{\"rcpt\":\"c@d\",\"line\":0,\"status\":\"deferred\",\"category\":\"other\",\"code\":null,"
	           "\"enhanced\":null,\"reply\":\"connection timed out\",\"server\":\"10.0.0.1:25\","
	           "\"mx\":null,\"ip\":null,\"tls\":null,\"attempts\":3,\"ms\":0}\n");
}

Test(results, mx_and_ip)
{
	struct result r = { S("a@b.test"), 9, RS_DELIVERED, 250, NULL, S("ok"), "127.0.0.2:25",
	                    1, 3, "mx1.b.test", "127.0.0.2", NULL, NULL };
	expect(&r, "{\"rcpt\":\"a@b.test\",\"line\":9,\"status\":\"delivered\",\"category\":null,\"code\":250,"
	           "\"enhanced\":null,\"reply\":\"ok\",\"server\":\"127.0.0.2:25\","
	           "\"mx\":\"mx1.b.test\",\"ip\":\"127.0.0.2\",\"tls\":null,\"attempts\":1,\"ms\":3}\n");
}

Test(results, null_strings_are_empty)
{
	struct result r = { NULL, 0, 1, RS_FAILED, 0, NULL, NULL, 0, NULL, 0, -1, NULL, NULL, NULL, NULL };
	expect(&r, "{\"rcpt\":\"\",\"line\":1,\"status\":\"failed\",\"category\":\"local\",\"code\":null,"
	           "\"enhanced\":null,\"reply\":\"\",\"server\":null,\"mx\":null,\"ip\":null,\"tls\":null,\"attempts\":0,\"ms\":null}\n");
}

Test(results, escaping_quotes_backslashes_newlines)
{
	struct result r = { S("\"q\"@x"), 3, RS_BOUNCED, 554, "5.7.1",
	                    S("a\"b\\c\r\nd\te\bf/g"), "h:25", 1, 5, NULL, NULL, NULL, NULL };
	expect(&r, "{\"rcpt\":\"\\\"q\\\"@x\",\"line\":3,\"status\":\"bounced\",\"category\":\"policy\",\"code\":554,"
	           "\"enhanced\":\"5.7.1\",\"reply\":\"a\\\"b\\\\c\\r\\nd\\te\\u0008f/g\","
	           "\"server\":\"h:25\",\"mx\":null,\"ip\":null,\"tls\":null,\"attempts\":1,\"ms\":5}\n");
}

Test(results, nul_inside_strings_is_escaped)
{
	struct result r = { "a\0b", 3, 1, RS_FAILED, 0, NULL, "\0", 1, NULL, 0, -1, NULL, NULL, NULL, NULL };
	expect(&r, "{\"rcpt\":\"a\\u0000b\",\"line\":1,\"status\":\"failed\",\"category\":\"local\","
	           "\"code\":null,\"enhanced\":null,\"reply\":\"\\u0000\",\"server\":null,\"mx\":null,\"ip\":null,\"tls\":null,\"attempts\":0,\"ms\":null}\n");
}

Test(results, category_given_or_computed)
{
	/* NULL: computed from status, code, enhanced and reply. */
	struct result r = { S("a@b"), 5, RS_DEFERRED, 452, "4.2.2", S("4.2.2 Mailbox full"), "s:25", 1, 4,
	                    NULL, NULL, NULL, NULL };
	expect(&r, "{\"rcpt\":\"a@b\",\"line\":5,\"status\":\"deferred\",\"category\":\"quota\","
	           "\"code\":452,\"enhanced\":\"4.2.2\",\"reply\":\"4.2.2 Mailbox full\",\"server\":\"s:25\","
	           "\"mx\":null,\"ip\":null,\"tls\":null,\"attempts\":1,\"ms\":4}\n");
	/* Given by the caller: written as it is. */
	r.category = "throttled";
	fmt(&r);
	cr_assert_not_null(strstr(buf, "\"status\":\"deferred\",\"category\":\"throttled\",\"code\":452,"),
	                   "%s", buf);
	/* Delivered: always null, whatever was given. */
	r.status = RS_DELIVERED;
	fmt(&r);
	cr_assert_not_null(strstr(buf, "\"status\":\"delivered\",\"category\":null,\"code\":452,"),
	                   "%s", buf);
}

/* json_string_at - the raw JSON string value of key in buf (between its quotes). */
static const char *json_string_at(const char *key, size_t *len)
{
	char pat[32];
	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	const char *p = strstr(buf, pat);
	cr_assert_not_null(p, "no %s in %s", key, buf);
	p += strlen(pat);
	const char *q = p;
	while (*q != '"') {
		if (*q == '\\')
			q++;
		q++;
	}
	*len = (size_t)(q - p);
	return p;
}

Test(results, long_reply_is_cut_with_dots)
{
	static char reply[3000];
	memset(reply, 'r', sizeof reply);
	struct result r = { S("a@b"), 1, RS_BOUNCED, 550, NULL, reply, sizeof reply, "s:25", 1, 1, NULL, NULL, NULL, NULL };
	fmt(&r);
	size_t n;
	const char *v = json_string_at("reply", &n);
	cr_assert_eq(n, RESULT_MAX_REPLY + 3);
	for (size_t i = 0; i < RESULT_MAX_REPLY; i++)
		cr_assert_eq(v[i], 'r');
	cr_assert_eq(memcmp(v + RESULT_MAX_REPLY, "...", 3), 0);
}

Test(results, reply_of_exactly_the_limit_is_not_cut)
{
	static char reply[RESULT_MAX_REPLY];
	memset(reply, 'r', sizeof reply);
	struct result r = { S("a@b"), 1, RS_BOUNCED, 550, NULL, reply, sizeof reply, "s:25", 1, 1, NULL, NULL, NULL, NULL };
	fmt(&r);
	size_t n;
	const char *v = json_string_at("reply", &n);
	cr_assert_eq(n, RESULT_MAX_REPLY);
	cr_assert_eq(v[n - 1], 'r');
}

Test(results, long_rcpt_is_cut_at_512)
{
	static char rcpt[600];
	memset(rcpt, 'a', sizeof rcpt);
	struct result r = { rcpt, sizeof rcpt, 9, RS_FAILED, 0, NULL, S("address too long"), NULL, 0, -1, NULL, NULL, NULL, NULL };
	fmt(&r);
	size_t n;
	const char *v = json_string_at("rcpt", &n);
	cr_assert_eq(n, 512 + 3);
	cr_assert_eq(memcmp(v + 512, "...", 3), 0);
	cr_assert_eq(v[511], 'a');
}

Test(results, multibyte_utf8_is_preserved)
{
	struct result r = { S("j\xc3\xb6rg@b\xc3\xbc\x63her.example"), 4, RS_DELIVERED, 250, "2.0.0",
	                    S("ok \xe2\x9c\x93 \xf0\x9f\x93\xa8"), "m:25", 1, 7, NULL, NULL, NULL, NULL };
	expect(&r, "{\"rcpt\":\"j\xc3\xb6rg@b\xc3\xbc\x63her.example\",\"line\":4,\"status\":\"delivered\",\"category\":null,"
	           "\"code\":250,\"enhanced\":\"2.0.0\",\"reply\":\"ok \xe2\x9c\x93 \xf0\x9f\x93\xa8\","
	           "\"server\":\"m:25\",\"mx\":null,\"ip\":null,\"tls\":null,\"attempts\":1,\"ms\":7}\n");
}

Test(results, overlong_surrogate_and_truncated_sequences_are_escaped)
{
	/* C0 80 (overlong NUL), ED A0 80 (surrogate), F4 90 80 80 (> U+10FFFF), E2 9C (cut short). */
	struct result r = { S("\xc0\x80|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x9c"), 1, RS_FAILED, 0, NULL,
	                    S(""), NULL, 0, -1, NULL, NULL, NULL, NULL };
	fmt(&r);
	size_t n;
	const char *v = json_string_at("rcpt", &n);
	const char *want = "\\u00c0\\u0080|\\u00ed\\u00a0\\u0080|\\u00f4\\u0090\\u0080\\u0080|"
	                   "\\u00e2\\u009c";
	cr_assert_eq(n, strlen(want), "got %.*s", (int)n, v);
	cr_assert_eq(memcmp(v, want, n), 0, "got %.*s", (int)n, v);
}

Test(results, cut_never_splits_a_utf8_sequence)
{
	/* 1022 ASCII octets, then a 4-octet sequence straddling the 1024 limit. */
	static char reply[RESULT_MAX_REPLY + 10];
	memset(reply, 'x', sizeof reply);
	memcpy(reply + RESULT_MAX_REPLY - 2, "\xf0\x9f\x93\xa8", 4);
	struct result r = { S("a@b"), 1, RS_BOUNCED, 550, NULL, reply, sizeof reply, "s:25", 1, 1, NULL, NULL, NULL, NULL };
	fmt(&r);
	size_t n;
	const char *v = json_string_at("reply", &n);
	cr_assert_eq(n, RESULT_MAX_REPLY - 2 + 3, "reply value is %zu octets", n);
	cr_assert_eq(memcmp(v + RESULT_MAX_REPLY - 2, "...", 3), 0);
	cr_assert_eq(v[RESULT_MAX_REPLY - 3], 'x');
}

Test(results, sequence_ending_exactly_at_the_limit_is_kept)
{
	static char reply[RESULT_MAX_REPLY + 10];
	memset(reply, 'x', sizeof reply);
	memcpy(reply + RESULT_MAX_REPLY - 2, "\xc3\xa9", 2);
	struct result r = { S("a@b"), 1, RS_BOUNCED, 550, NULL, reply, sizeof reply, "s:25", 1, 1, NULL, NULL, NULL, NULL };
	fmt(&r);
	size_t n;
	const char *v = json_string_at("reply", &n);
	cr_assert_eq(n, RESULT_MAX_REPLY + 3);
	cr_assert_eq(memcmp(v + RESULT_MAX_REPLY - 2, "\xc3\xa9...", 5), 0);
}

Test(results, worst_case_inputs_stay_within_the_line_limit)
{
	/* Every octet escaped six-fold in every string: the reply gives way. */
	static char rcpt[2000], reply[5000], server[1000], enhanced[100];
	memset(rcpt, 0x01, sizeof rcpt);
	memset(reply, 0xff, sizeof reply);
	memset(server, 0x02, sizeof server - 1);
	memset(enhanced, 0x03, sizeof enhanced - 1);
	struct result r = { rcpt, sizeof rcpt, UINT64_MAX, RS_DEFERRED, -2147483647 - 1, enhanced,
	                    reply, sizeof reply, server, 4294967295u, INT64_MAX, NULL, NULL, NULL, NULL };
	size_t n = fmt(&r);
	cr_assert_leq(n, RESULT_MAX_LINE);
	cr_assert_eq(buf[n - 1], '\n');
	cr_assert_eq(buf[n - 2], '}');
	cr_assert_not_null(strstr(buf, "\"code\":-2147483648,"));
	size_t vn;
	const char *v = json_string_at("reply", &vn);
	cr_assert_geq(vn, 1024, "reply squeezed to %zu octets", vn);
	cr_assert_eq(memcmp(v + vn - 3, "...", 3), 0);
	cr_assert_eq(memcmp(v, "\\u00ff", 6), 0);
	cr_assert_eq((vn - 3) % 6, 0, "an escape was split");
}

Test(results, worst_case_at_every_alignment)
{
	/* Shift where the reply's room ends by 0..11 octets: the line must always fit. */
	static char rcpt[600], reply[5000], server[400];
	memset(reply, 0x01, sizeof reply);
	memset(server, 0x02, sizeof server - 1);
	for (size_t shift = 0; shift < 12; shift++) {
		memset(rcpt, 0x01, sizeof rcpt);
		memset(rcpt, 'a', shift);
		struct result r = { rcpt, sizeof rcpt, UINT64_MAX, RS_DELIVERED, -2147483647 - 1,
		                    "\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"
		                    "\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01",
		                    reply, sizeof reply, server, 4294967295u, INT64_MAX, NULL, NULL, NULL, NULL };
		size_t n = fmt(&r);
		cr_assert_leq(n, RESULT_MAX_LINE, "shift %zu: %zu octets", shift, n);
		cr_assert_eq(memcmp(buf + n - 2, "}\n", 2), 0);
	}
}

Test(results, cap_too_small_returns_zero)
{
	struct result r = { S("a@b"), 1, RS_DELIVERED, 250, NULL, S("ok"), NULL, 1, 1, NULL, NULL, NULL, NULL };
	memset(buf, 'Z', sizeof buf);
	cr_assert_eq(result_format(buf, RESULT_MAX_LINE - 1, &r), 0);
	cr_assert_eq(result_format(buf, 0, &r), 0);
	cr_assert_eq(buf[0], 'Z');
	cr_assert_gt(result_format(buf, RESULT_MAX_LINE, &r), 0);
}

/* utf8_valid - whether s[0..n) is valid UTF-8 (RFC 3629). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) { i++; continue; }
		else if (c >= 0xc2 && c <= 0xdf) { k = 2; cp = c & 0x1f; }
		else if (c >= 0xe0 && c <= 0xef) { k = 3; cp = c & 0x0f; }
		else if (c >= 0xf0 && c <= 0xf4) { k = 4; cp = c & 0x07; }
		else return false;
		if (i + k > n)
			return false;
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k;
	}
	return true;
}

/* decode_json_string - decode the JSON string at *pp (after its opening quote)
 * into out, mapping \u00XX back to the octet XX; returns octets, or -1 if bad. */
static long decode_json_string(const char **pp, unsigned char *out, size_t cap)
{
	const char *p = *pp;
	size_t o = 0;
	for (; *p != '"'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f || o >= cap)
			return -1;
		if (c != '\\') {
			out[o++] = c;
			continue;
		}
		p++;
		switch (*p) {
		case '"': out[o++] = '"'; break;
		case '\\': out[o++] = '\\'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'u': {
			unsigned v;
			if (strncmp(p + 1, "00", 2) != 0 || sscanf(p + 3, "%2x", &v) != 1)
				return -1;
			out[o++] = (unsigned char)v;
			p += 4;
			break;
		}
		default: return -1;
		}
	}
	*pp = p + 1;
	return (long)o;
}

/* check_string_field - the field's value decodes back to (a prefix of) the input. */
static void check_string_field(const char **pp, const char *key, const char *in, size_t in_len,
                               size_t in_max)
{
	char pat[32];
	int pn = snprintf(pat, sizeof pat, "\"%s\":", key);
	cr_assert_eq(strncmp(*pp, pat, (size_t)pn), 0, "expected %s at %s", pat, *pp);
	*pp += pn;
	if (in == NULL && strncmp(*pp, "null", 4) == 0) {
		*pp += 4;
		return;
	}
	cr_assert_eq(**pp, '"');
	(*pp)++;
	static unsigned char dec[RESULT_MAX_LINE];
	long n = decode_json_string(pp, dec, sizeof dec);
	cr_assert_geq(n, 0, "bad JSON string for %s", key);
	size_t d = (size_t)n;
	if (in == NULL)
		in_len = 0;
	if (d == in_len && memcmp(dec, in, d) == 0)
		return;   /* whole, uncut */
	cr_assert_geq(d, 3, "%s cut without dots", key);
	cr_assert_eq(memcmp(dec + d - 3, "...", 3), 0, "%s cut without dots", key);
	cr_assert_leq(d - 3, in_max, "%s kept more than %zu octets", key, in_max);
	cr_assert_lt(d - 3, in_len);
	cr_assert_eq(memcmp(dec, in, d - 3), 0, "%s is not a prefix of its input", key);
}

/* check_number_field - "key":digits or null, followed by ',' or '}'. */
static void check_number_field(const char **pp, const char *key)
{
	char pat[32];
	int pn = snprintf(pat, sizeof pat, ",\"%s\":", key);
	cr_assert_eq(strncmp(*pp, pat, (size_t)pn), 0, "expected %s at %s", pat, *pp);
	*pp += pn;
	if (strncmp(*pp, "null", 4) == 0) {
		*pp += 4;
		return;
	}
	if (**pp == '-')
		(*pp)++;
	cr_assert(**pp >= '0' && **pp <= '9');
	while (**pp >= '0' && **pp <= '9')
		(*pp)++;
}

/* rnd - a small fixed-seed generator (xorshift64). */
static uint64_t rnd_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* rnd_bytes - fill p with n octets biased towards the interesting ones. */
static void rnd_bytes(char *p, size_t n)
{
	static const unsigned char hot[] = { 0, '\n', '\r', '\t', '"', '\\', 0x7f, 0x80, 0xbf,
	                                     0xc2, 0xc3, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xff, 'a' };
	for (size_t i = 0; i < n; i++) {
		uint64_t x = rnd();
		p[i] = (x & 3) ? (char)(x >> 8) : (char)hot[(x >> 8) % sizeof hot];
	}
	if (n >= 4 && (rnd() & 1))
		memcpy(p + rnd() % (n - 3), "\xf0\x9f\x93\xa8", 4);
}

/* fuzz_one - format one random result and check the line is well-formed JSON. */
static void fuzz_one(void)
{
	static char rcpt[1200], reply[3000], server[400], enh[64];
	size_t rl = rnd() % sizeof rcpt, pl = rnd() % sizeof reply;
	rnd_bytes(rcpt, rl);
	rnd_bytes(reply, pl);
	size_t sl = rnd() % (sizeof server - 1), el = rnd() % (sizeof enh - 1);
	rnd_bytes(server, sl);
	rnd_bytes(enh, el);
	server[sl] = '\0';
	enh[el] = '\0';
	uint64_t pick = rnd();
	struct result r = { rcpt, rl, rnd(), (enum result_status)(pick % 4), (int)(rnd() % 700) - 50,
	                    (pick & 16) ? NULL : enh, reply, pl, (pick & 32) ? NULL : server,
	                    (unsigned)rnd(), (pick & 64) ? -1 : (int64_t)(rnd() >> 1), NULL, NULL, NULL, NULL };
	size_t n = fmt(&r);
	cr_assert_eq(buf[0], '{');
	cr_assert_eq(buf[n - 2], '}');
	cr_assert_eq(buf[n - 1], '\n');
	size_t i = 0;
	while (i + 1 < n && (unsigned char)buf[i] >= 0x20 && buf[i] != 0x7f)
		i++;
	cr_assert_eq(i, n - 1, "raw control octet at %zu: %s", i, buf);
	cr_assert(utf8_valid((const unsigned char *)buf, n), "not valid UTF-8: %s", buf);

	const char *p = buf + 1;
	check_string_field(&p, "rcpt", rcpt, rl, 512);
	check_number_field(&p, "line");
	cr_assert_eq(strncmp(p, ",\"status\":\"", 11), 0);
	p += 11 + strlen(result_status_name(r.status)) + 1;
	const char *cat = category_of(r.status, r.code, r.enhanced, reply, pl);
	char want[64];
	snprintf(want, sizeof want, cat ? ",\"category\":\"%s\"" : ",\"category\":null", cat);
	cr_assert_eq(strncmp(p, want, strlen(want)), 0, "expected %s at %.60s", want, p);
	p += strlen(want);
	check_number_field(&p, "code");
	cr_assert_eq(*p++, ',');
	check_string_field(&p, "enhanced", r.enhanced, strlen(enh), 32);
	cr_assert_eq(*p++, ',');
	check_string_field(&p, "reply", reply, pl, RESULT_MAX_REPLY);
	cr_assert_eq(*p++, ',');
	check_string_field(&p, "server", r.server, strlen(server), 80);
	cr_assert_eq(strncmp(p, ",\"mx\":null,\"ip\":null,\"tls\":null", 31), 0,
	             "mx, ip and tls null: %s", p);
	p += 31;
	check_number_field(&p, "attempts");
	check_number_field(&p, "ms");
	cr_assert_str_eq(p, "}\n");
}

Test(results, fuzz_random_bytes_always_give_a_valid_line)
{
	for (int i = 0; i < 20000; i++)
		fuzz_one();
}
