/* resume.c - parsing volley's own results lines to find the recipients already done. */
#include "resume.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* resume_tag - FNV-1a folded to 16 bits, kept clear of 0 and RESUME_TAG_ANY. */
uint16_t resume_tag(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	uint16_t t = (uint16_t)((h ^ (h >> 16)) | 1u);
	return t == RESUME_TAG_ANY ? 3u : t;
}

/* field - the text after "key": in line [p, end), or NULL. Keys are found in
 * order after from; a key's name cannot occur inside a JSON string unescaped. */
static const char *field(const char *p, const char *end, const char *key)
{
	size_t k = strlen(key);
	for (; p + k <= end; p++) {
		p = memchr(p, '"', (size_t)(end - p));
		if (!p || p + k > end)
			return NULL;
		if (memcmp(p, key, k) == 0)
			return p + k;
	}
	return NULL;
}

/* json_str - the extent of a JSON string starting at p (at its opening quote);
 * *esc tells whether it holds escapes. Returns one past the closing quote, or NULL. */
static const char *json_str(const char *p, const char *end, const char **s, size_t *n, bool *esc)
{
	if (p >= end || *p != '"')
		return NULL;
	*esc = false;
	const char *q = p + 1;
	while (q < end && *q != '"') {
		if (*q == '\\') {
			*esc = true;
			q++;
		}
		q++;
	}
	if (q >= end)
		return NULL;
	*s = p + 1;
	*n = (size_t)(q - p - 1);
	return q + 1;
}

/* grow - room for mark[line]. */
static int grow(struct resume *r, uint64_t line)
{
	if (line < r->cap)
		return 0;
	uint64_t cap = r->cap ? r->cap : 65536;
	while (cap <= line)
		cap *= 2;
	uint16_t *m = realloc(r->mark, cap * sizeof *m);
	if (!m)
		return -1;
	memset(m + r->cap, 0, (cap - r->cap) * sizeof *m);
	r->mark = m;
	r->cap = cap;
	return 0;
}

/* one - one complete line: 1 read, 0 not a result line, -1 out of memory. */
static int one(struct resume *r, const char *p, const char *end)
{
	const char *s, *v;
	size_t n;
	bool esc;
	if (end - p < 2 || memcmp(p, "{\"rcpt\":", 8) != 0 || end[-1] != '}')
		return 0;
	const char *after = json_str(p + 8, end, &s, &n, &esc);
	if (!after || !(v = field(after, end, "\"line\":")))
		return 0;
	char *e;
	unsigned long long line = strtoull(v, &e, 10);
	/* our own lines: "rcpt", "line" and "status" come first, in this order */
	if (e == v || line == 0 || line >= RESUME_MAX_LINE || end - e < 11 ||
	    memcmp(e, ",\"status\":\"", 11) != 0)
		return 0;
	v = e + 11;
	bool final = !strncmp(v, "delivered\"", 10) || !strncmp(v, "bounced\"", 8) ||
	             !strncmp(v, "failed\"", 7);
	if (!final) {
		if (strncmp(v, "deferred\"", 9) != 0)
			return 0;
		r->nonfinal++;
		return 1;
	}
	if (r->max_line && line > r->max_line) {
		r->beyond++;
		return 1;
	}
	if (grow(r, line) < 0)
		return -1;
	bool cut = n >= 3 && !memcmp(s + n - 3, "...", 3);
	if (r->mark[line])
		r->twice++;
	r->mark[line] = esc || cut ? RESUME_TAG_ANY : resume_tag(s, n);
	r->final++;
	return 1;
}

/* resume_scan - every complete line. */
int resume_scan(struct resume *r, const char *buf, size_t len, char *err, size_t errlen)
{
	const char *p = buf, *end = buf + len;
	uint64_t lineno = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl) {
			r->torn = true;
			break;
		}
		lineno++;
		int rc = one(r, p, nl);
		if (rc < 0) {
			snprintf(err, errlen, "out of memory reading results line %llu",
			         (unsigned long long)lineno);
			return -1;
		}
		if (rc == 0 && nl > p) {
			if (!r->bad)
				r->first_bad = lineno;
			r->bad++;
		}
		p = nl + 1;
	}
	return 0;
}

/* resume_final - has a final result. */
bool resume_final(const struct resume *r, uint64_t line)
{
	return line < r->cap && r->mark[line] != 0;
}

/* resume_matches - the recorded tag agrees with s (or cannot be checked). */
bool resume_matches(const struct resume *r, uint64_t line, const char *s, size_t len)
{
	uint16_t t = line < r->cap ? r->mark[line] : 0;
	return t == RESUME_TAG_ANY || t == resume_tag(s, len);
}

/* resume_free - release. */
void resume_free(struct resume *r)
{
	free(r->mark);
	memset(r, 0, sizeof *r);
}
