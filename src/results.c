/* results.c - one result record formatted as one JSON line: escaping, bounding, no allocation. */
#include "results.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include "bounds.h"
#include "category.h"

/*
 * result_format is called once per recipient on the engine's hot path, so it
 * writes straight into the caller's buffer: literals by memcpy, integers by a
 * small hand-written formatter, strings through a table-driven escaper whose
 * inner loop copies runs of plain ASCII.
 *
 * Bounding. Every string has an input limit (rcpt, enhanced, server, reply).
 * With those, everything except the reply has a fixed worst case (an input
 * octet becomes at most six output octets, "\u00XX"), computed below. The
 * reply gets whatever is left of RESULT_MAX_LINE after the worst-case tail,
 * so a line never exceeds RESULT_MAX_LINE octets whatever the input.
 */

#define RESULT_MAX_RCPT      512u  /* input octets of rcpt copied */
#define RESULT_MAX_ENHANCED  32u   /* input octets of the enhanced code copied */
#define RESULT_MAX_SERVER    80u
#define RESULT_MAX_MX        255u
#define RESULT_MAX_IP        64u
#define RESULT_MAX_TLS       64u  /* input octets of "host:port" copied */
#define RESULT_MAX_CATEGORY  32u   /* input octets of the category copied */
#define RESULT_ESC_MAX       6u    /* output octets for one input octet ("\u00XX") */
#define RESULT_CUT           "..."  /* appended when a string is cut */

/* A string's worst-case output: quotes, every octet escaped, "..." appended. */
#define RESULT_STR_MAX(in)   (2u + (in) * RESULT_ESC_MAX + (sizeof RESULT_CUT - 1u))
#define RESULT_LIT_LEN(s)    (sizeof(s) - 1u)

/* Worst case of everything before the reply string. */
#define RESULT_HEAD_MAX (RESULT_LIT_LEN("{\"rcpt\":") + RESULT_STR_MAX(RESULT_MAX_RCPT) \
	+ RESULT_LIT_LEN(",\"line\":") + 20u \
	+ RESULT_LIT_LEN(",\"status\":\"delivered\"") \
	+ RESULT_LIT_LEN(",\"category\":") + RESULT_STR_MAX(RESULT_MAX_CATEGORY) \
	+ RESULT_LIT_LEN(",\"code\":") + 11u \
	+ RESULT_LIT_LEN(",\"enhanced\":") + RESULT_STR_MAX(RESULT_MAX_ENHANCED) \
	+ RESULT_LIT_LEN(",\"reply\":"))

/* Worst case of everything after the reply string. */
#define RESULT_TAIL_MAX (RESULT_LIT_LEN(",\"server\":") + RESULT_STR_MAX(RESULT_MAX_SERVER) \
	+ RESULT_LIT_LEN(",\"mx\":") + RESULT_STR_MAX(RESULT_MAX_MX) \
	+ RESULT_LIT_LEN(",\"ip\":") + RESULT_STR_MAX(RESULT_MAX_IP) \
	+ RESULT_LIT_LEN(",\"tls\":") + RESULT_STR_MAX(RESULT_MAX_TLS) \
	+ RESULT_LIT_LEN(",\"attempts\":") + 10u \
	+ RESULT_LIT_LEN(",\"ms\":") + 20u \
	+ RESULT_LIT_LEN("}\n"))

_Static_assert(RESULT_HEAD_MAX + RESULT_TAIL_MAX + 1024u <= RESULT_MAX_LINE,
               "a result line must leave the reply at least 1 KiB of room");

/* Octet classes for the escaper. */
enum { JC_PLAIN = 0, JC_SHORT = 1, JC_CTRL = 2, JC_HIGH = 3 };

#define JC_HIGH_8   JC_HIGH, JC_HIGH, JC_HIGH, JC_HIGH, JC_HIGH, JC_HIGH, JC_HIGH, JC_HIGH
#define JC_HIGH_32  JC_HIGH_8, JC_HIGH_8, JC_HIGH_8, JC_HIGH_8
#define JC_HIGH_128 JC_HIGH_32, JC_HIGH_32, JC_HIGH_32, JC_HIGH_32

/* jc - the class of each octet: plain ASCII, \-escape, \u00XX, or >= 0x80. */
static const unsigned char jc[256] = {
	[0x00] = JC_CTRL, [0x01] = JC_CTRL, [0x02] = JC_CTRL, [0x03] = JC_CTRL,
	[0x04] = JC_CTRL, [0x05] = JC_CTRL, [0x06] = JC_CTRL, [0x07] = JC_CTRL,
	[0x08] = JC_CTRL, [0x09] = JC_SHORT, [0x0a] = JC_SHORT, [0x0b] = JC_CTRL,
	[0x0c] = JC_CTRL, [0x0d] = JC_SHORT, [0x0e] = JC_CTRL, [0x0f] = JC_CTRL,
	[0x10] = JC_CTRL, [0x11] = JC_CTRL, [0x12] = JC_CTRL, [0x13] = JC_CTRL,
	[0x14] = JC_CTRL, [0x15] = JC_CTRL, [0x16] = JC_CTRL, [0x17] = JC_CTRL,
	[0x18] = JC_CTRL, [0x19] = JC_CTRL, [0x1a] = JC_CTRL, [0x1b] = JC_CTRL,
	[0x1c] = JC_CTRL, [0x1d] = JC_CTRL, [0x1e] = JC_CTRL, [0x1f] = JC_CTRL,
	['"'] = JC_SHORT, ['\\'] = JC_SHORT, [0x7f] = JC_CTRL,
	[0x80] = JC_HIGH_128,   /* 0x80..0xff: UTF-8 lead or continuation, checked */
};

static const char hexdig[16] = "0123456789abcdef";

/* result_status_name - "delivered", "bounced", "deferred" or "failed". */
const char *result_status_name(enum result_status s)
{
	switch (s) {
	case RS_DELIVERED: return "delivered";
	case RS_BOUNCED:   return "bounced";
	case RS_DEFERRED:  return "deferred";
	case RS_FAILED:    return "failed";
	}
	assert(!"unknown result status");
	return "failed";
}

/* utf8_len - length of the valid UTF-8 sequence at s[0..n) (n >= 1), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t k;
	unsigned lo = 0x80, hi = 0xbf;   /* allowed range of the second octet */
	if (c >= 0xc2 && c <= 0xdf)
		k = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		k = 3;
		lo = c == 0xe0 ? 0xa0 : 0x80;   /* no overlong forms */
		hi = c == 0xed ? 0x9f : 0xbf;   /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		k = 4;
		lo = c == 0xf0 ? 0x90 : 0x80;   /* no overlong forms */
		hi = c == 0xf4 ? 0x8f : 0xbf;   /* nothing above U+10FFFF */
	} else
		return 0;
	if (n < k || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < k; i++)
		if ((s[i] & 0xc0u) != 0x80u)
			return 0;
	return k;
}

/* put_u64 - write v in decimal at p; returns one past the last digit. */
static char *put_u64(char *p, uint64_t v)
{
	char t[20];
	size_t n = 0;
	do {
		t[n++] = (char)('0' + v % 10u);
		v /= 10u;
	} while (v != 0);
	while (n > 0)
		*p++ = t[--n];
	return p;
}

/* put_lit - copy n octets of a literal to p; returns one past them. */
static inline char *put_lit(char *p, const char *lit, size_t n)
{
	memcpy(p, lit, n);
	return p + n;
}

#define PUT_LIT(p, s) put_lit((p), (s), RESULT_LIT_LEN(s))

/* put_unit - write the escaped form of the one unit at s[0..k) (k octets); returns the end. */
static inline char *put_unit(char *p, const unsigned char *s, size_t k, unsigned cls)
{
	if (cls == JC_SHORT) {
		*p++ = '\\';
		*p++ = s[0] == '\n' ? 'n' : s[0] == '\r' ? 'r' : s[0] == '\t' ? 't' : (char)s[0];
		return p;
	}
	if (k == 0) {   /* control octet, or an octet that is not valid UTF-8 */
		p = PUT_LIT(p, "\\u00");
		*p++ = hexdig[s[0] >> 4];
		*p++ = hexdig[s[0] & 0xfu];
		return p;
	}
	memcpy(p, s, k);   /* a whole valid UTF-8 sequence */
	return p + k;
}

/* put_str - write s[0..n) as a JSON string, cut at in_max input octets or where
 * the output would pass end (room for "..." and the closing quote kept). */
static char *put_str(char *p, const char *end, const char *str, size_t n, size_t in_max)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t lim = n < in_max ? n : in_max;
	const char *stop = end - 1 - RESULT_LIT_LEN(RESULT_CUT);   /* last room for content */
	size_t i = 0;
	assert(end - p >= (ptrdiff_t)(2 + RESULT_LIT_LEN(RESULT_CUT)));
	*p++ = '"';
	while (i < lim) {
		size_t room = (size_t)(stop - p);
		size_t run_end = lim - i < room ? lim : i + room;   /* plain octets that fit */
		while (i < run_end && jc[s[i]] == JC_PLAIN)
			*p++ = (char)s[i++];
		if (i == lim || p >= stop)
			break;
		unsigned cls = jc[s[i]];
		size_t k = cls == JC_HIGH ? utf8_len(s + i, n - i) : cls == JC_CTRL ? 0 : 1;
		size_t in = k ? k : 1;           /* input octets this unit takes */
		size_t out = cls == JC_SHORT ? 2 : k ? k : RESULT_ESC_MAX;
		if (i + in > lim || p + out > stop)
			break;                       /* never split a sequence or an escape */
		p = put_unit(p, s + i, k, cls);
		i += in;
	}
	if (i < n)
		p = PUT_LIT(p, RESULT_CUT);
	*p++ = '"';
	return p;
}

/* put_str_or_null - put_str for a NUL-terminated string, or null when s is NULL. */
static char *put_str_or_null(char *p, const char *end, const char *s, size_t in_max)
{
	if (s == NULL)
		return PUT_LIT(p, "null");
	return put_str(p, end, s, strnlen(s, in_max + 1), in_max);
}

/* result_format - write r as one JSON line ending in '\n' into dst (see results.h). */
size_t result_format(char *dst, size_t cap, const struct result *r)
{
	if (dst == NULL || cap < RESULT_MAX_LINE)
		return 0;
	const char *end = dst + RESULT_MAX_LINE;
	char *p = dst;

	p = PUT_LIT(p, "{\"rcpt\":");
	p = put_str(p, end, r->rcpt ? r->rcpt : "", r->rcpt ? r->rcpt_len : 0, RESULT_MAX_RCPT);
	p = PUT_LIT(p, ",\"line\":");
	p = put_u64(p, r->line);
	p = PUT_LIT(p, ",\"status\":\"");
	const char *st = result_status_name(r->status);
	p = put_lit(p, st, strlen(st));
	p = PUT_LIT(p, "\",\"category\":");
	const char *cat = r->status == RS_DELIVERED ? NULL : r->category ? r->category :
	                  category_of(r->status, r->code, r->enhanced, r->reply,
	                              r->reply ? r->reply_len : 0);
	p = put_str_or_null(p, end, cat, RESULT_MAX_CATEGORY);
	p = PUT_LIT(p, ",\"code\":");
	if (r->code == 0)
		p = PUT_LIT(p, "null");
	else if (r->code < 0) {
		*p++ = '-';
		p = put_u64(p, (uint64_t)(-(int64_t)r->code));
	} else
		p = put_u64(p, (uint64_t)r->code);
	p = PUT_LIT(p, ",\"enhanced\":");
	p = put_str_or_null(p, end, r->enhanced, RESULT_MAX_ENHANCED);
	p = PUT_LIT(p, ",\"reply\":");
	assert((size_t)(p - dst) <= RESULT_HEAD_MAX);
	p = put_str(p, end - RESULT_TAIL_MAX, r->reply ? r->reply : "",
	            r->reply ? r->reply_len : 0, RESULT_MAX_REPLY);
	p = PUT_LIT(p, ",\"server\":");
	p = put_str_or_null(p, end, r->server, RESULT_MAX_SERVER);
	p = PUT_LIT(p, ",\"mx\":");
	p = put_str_or_null(p, end, r->mx, RESULT_MAX_MX);
	p = PUT_LIT(p, ",\"ip\":");
	p = put_str_or_null(p, end, r->ip, RESULT_MAX_IP);
	p = PUT_LIT(p, ",\"tls\":");
	p = put_str_or_null(p, end, r->tls, RESULT_MAX_TLS);
	p = PUT_LIT(p, ",\"attempts\":");
	p = put_u64(p, r->attempts);
	p = PUT_LIT(p, ",\"ms\":");
	if (r->ms < 0)
		p = PUT_LIT(p, "null");
	else
		p = put_u64(p, (uint64_t)r->ms);
	p = PUT_LIT(p, "}\n");
	assert(p <= end);
	return (size_t)(p - dst);
}
