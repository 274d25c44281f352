/* shaping.c - shaping rules (parse, merge, look up), GCRA rate limiters, AIMD throttling; only shaping_init reads a file. */
#include "shaping.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The rules volley ships with. Numbers marked "kumo" come from KumoMTA's
 * assets/policy-extras/shaping.toml, "kumo-community" from its assets/community/shaping.toml;
 * "guess" marks a conservative choice with no published source. Rates are guesses
 * everywhere: ceilings a little above what the connection limit carries, so that the
 * adaptive throttle (421 / 4.7.x) does the real work. docs/shaping.md has the table. */
const char shaping_builtin[] =
	"# volley built-in shaping rules; a user file's rule with the same selector replaces one.\n"
	"\n"
	"# volley's own command-line defaults (--max-connections-per-destination 20,\n"
	"# --max-messages-per-connection 1000), no rate: relays and test servers run at full speed.\n"
	"# (kumo's default: 10 connections, 100 per connection, 100/s, 100 connections/min.)\n"
	"default connections=20 messages-per-connection=1000\n"
	"\n"
	"# Google (Gmail, Workspace): kumo provider \"google\" (both suffixes): 5 connections,\n"
	"# 50 per connection. Rate guess; kumo-community drops to 10/m on \"unusual rate\".\n"
	"mx:.google.com name=google connections=5 messages-per-connection=50 rate=10/s connect-rate=30/m\n"
	"mx:.googlemail.com name=google connections=5 messages-per-connection=50 rate=10/s connect-rate=30/m\n"
	"\n"
	"# Yahoo and AOL: 20 per connection (Yahoo help SLN3433, kumo \"provided by Yahoo\");\n"
	"# Yahoo publishes no connection count: 10 is kumo's default per-site limit, here for all.\n"
	"mx:.yahoodns.net name=yahoo connections=10 messages-per-connection=20 rate=10/s connect-rate=60/m\n"
	"\n"
	"# Microsoft (outlook.com consumer .olc., Office 365 .mail., DANE .mx.microsoft): kumo has\n"
	"# three providers of 5 connections and 50 per connection; one provider here, 10 in all.\n"
	"mx:.protection.outlook.com name=microsoft connections=10 messages-per-connection=50 rate=10/s connect-rate=30/m\n"
	"mx:.mx.microsoft name=microsoft connections=10 messages-per-connection=50 rate=10/s connect-rate=30/m\n"
	"\n"
	"# Apple iCloud (mxNN.mail.icloud.com): kumo provider \"apple\": 10 connections, 5 per\n"
	"# connection (Return Path's old overview said 150 and 50; the stricter one is kept).\n"
	"mx:.icloud.com name=apple connections=10 messages-per-connection=5 rate=5/s connect-rate=120/m\n"
	"\n"
	"# GMX and WEB.DE (United Internet): kumo-community: 4 connections, 20 per connection.\n"
	"mx:.gmx.net name=gmx-webde connections=4 messages-per-connection=20 rate=5/s connect-rate=30/m\n"
	"mx:.web.de name=gmx-webde connections=4 messages-per-connection=20 rate=5/s connect-rate=30/m\n"
	"\n"
	"# Comcast: kumo, \"provided directly by Comcast\": 25 connections, 1000 per connection.\n"
	"mx:.comcast.net name=comcast connections=25 messages-per-connection=1000 rate=25/s connect-rate=30/m\n"
	"\n"
	"# Orange: kumo: 3 connections. Per connection 100 (kumo's default), rate guess.\n"
	"mx:.orange.fr name=orange connections=3 messages-per-connection=100 rate=2/s connect-rate=10/m\n"
	"\n"
	"# mail.ru, Yandex, Zoho: nothing published; guess: 5 connections, 20 per connection.\n"
	"mx:.mail.ru name=mail-ru connections=5 messages-per-connection=20 rate=5/s connect-rate=30/m\n"
	"mx:.yandex.net name=yandex connections=5 messages-per-connection=20 rate=5/s connect-rate=30/m\n"
	"mx:.yandex.ru name=yandex connections=5 messages-per-connection=20 rate=5/s connect-rate=30/m\n"
	"mx:.zoho.com name=zoho connections=5 messages-per-connection=20 rate=5/s connect-rate=30/m\n"
	"mx:.zoho.eu name=zoho connections=5 messages-per-connection=20 rate=5/s connect-rate=30/m\n"
	"\n"
	"# Proton: nothing published, a smaller provider; guess: 3 connections, 20 per connection.\n"
	"mx:.protonmail.ch name=proton connections=3 messages-per-connection=20 rate=2/s connect-rate=20/m\n";

/* The keys of an option. */
enum key { K_CONN, K_MPC, K_RATE, K_CRATE, K_NAME, K_COUNT };
static const char *const key_name[K_COUNT] = {
	"connections", "messages-per-connection", "rate", "connect-rate", "name",
};

/* One file being parsed. */
struct parse {
	const char *fname;
	unsigned line;
	char *err;
	size_t errlen;
	struct shaping_rule *rule;   /* this file's rules */
	unsigned n;
};

/* fail - write "FNAME:LINE: reason" to err; returns -1. */
static int fail(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parse *p, const char *fmt, ...)
{
	char reason[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	if (p->errlen)
		snprintf(p->err, p->errlen, "%s:%u: %s", p->fname, p->line, reason);
	return -1;
}

/* lower_copy - copy n octets of s lower-cased into out (n+1 bytes). */
static void lower_copy(char *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[n] = '\0';
}

/* valid_label - one DNS label: 1..63 letters, digits, hyphens, not at either end. */
static bool valid_label(const char *s, size_t n)
{
	if (n < 1 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* valid_host - a host or domain name: dot-separated valid labels, no empty label. */
static bool valid_host(const char *s)
{
	for (;;) {
		const char *dot = strchr(s, '.');
		size_t n = dot ? (size_t)(dot - s) : strlen(s);
		if (!valid_label(s, n))
			return false;
		if (!dot)
			return true;
		s = dot + 1;
	}
}

/* selector_text - "default", "domain:NAME" or "mx:SUFFIX" of r into out. */
static const char *selector_text(const struct shaping_rule *r, char *out, size_t cap)
{
	static const char *const pre[] = {"default", "domain:", "mx:"};
	snprintf(out, cap, "%s%s", pre[r->kind], r->match);
	return out;
}

/* parse_host_selector - the NAME of domain:NAME or the SUFFIX of mx:SUFFIX into r. */
static int parse_host_selector(struct parse *p, struct shaping_rule *r, const char *v)
{
	const char *what = r->kind == SHAPING_MX ? "MX suffix" : "domain";
	size_t n = strlen(v);
	if (n > SHAPING_MAX_NAME)
		return fail(p, "%s longer than %u octets", what, SHAPING_MAX_NAME);
	bool dot = r->kind == SHAPING_MX && v[0] == '.';
	if (!valid_host(v + dot))
		return fail(p, "bad %s '%s'", what, v);
	lower_copy(r->match, v, n);
	strcpy(r->name, r->match + dot);
	return 0;
}

/* parse_selector - the first word of a rule line into r. */
static int parse_selector(struct parse *p, struct shaping_rule *r, const char *tok)
{
	if (!strcmp(tok, "default")) {
		r->kind = SHAPING_DEFAULT;
		strcpy(r->name, "default");
		return 0;
	}
	if (!strncmp(tok, "domain:", 7)) {
		r->kind = SHAPING_DOMAIN;
		return parse_host_selector(p, r, tok + 7);
	}
	if (!strncmp(tok, "mx:", 3)) {
		r->kind = SHAPING_MX;
		return parse_host_selector(p, r, tok + 3);
	}
	return fail(p, "unknown selector '%s'", tok);
}

/* parse_count - a decimal count into *out (saturating); false if not all digits. */
static bool parse_count(const char *v, unsigned long long *out)
{
	unsigned long long n = 0;
	if (!*v)
		return false;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return false;
		n = n > 100000000000ULL ? n : n * 10 + (unsigned)(*v - '0');
	}
	*out = n;
	return true;
}

/* parse_uint_key - connections= or messages-per-connection= into *out. */
static int parse_uint_key(struct parse *p, const char *key, const char *v, unsigned max,
                          unsigned *out)
{
	unsigned long long n;
	if (!parse_count(v, &n))
		return fail(p, "bad number '%s' for %s", v, key);
	if (n < 1 || n > max)
		return fail(p, "%s=%s out of range (1..%u)", key, v, max);
	*out = (unsigned)n;
	return 0;
}

/* decimal_len - octets of a "D+[.D+]" number at the start of v, 0 if none. */
static size_t decimal_len(const char *v)
{
	size_t i = strspn(v, "0123456789");
	if (i && v[i] == '.') {
		size_t f = strspn(v + i + 1, "0123456789");
		i = f ? i + 1 + f : 0;
	}
	return i;
}

/* decimal_value - the value of a checked "D+[.D+]" of n octets (no strtod: no locale). */
static double decimal_value(const char *v, size_t n)
{
	double whole = 0, frac = 0, scale = 1;
	size_t i = 0;
	for (; i < n && v[i] != '.'; i++)
		whole = whole * 10 + (v[i] - '0');
	for (i++; i < n && scale < 1e17; i++) {   /* digits past double precision are dropped */
		frac = frac * 10 + (v[i] - '0');
		scale *= 10;
	}
	return whole + frac / scale;
}

/* parse_rate_key - rate= or connect-rate= ("N/s", "N/m", "N/h") into per second. */
static int parse_rate_key(struct parse *p, const char *key, const char *v, double *out)
{
	size_t i = decimal_len(v);
	if (!i || v[i] != '/' || !v[i + 1] || !strchr("smh", v[i + 1]) || v[i + 2])
		return fail(p, "bad rate '%s' for %s (want N/s, N/m or N/h)", v, key);
	double per = v[i + 1] == 's' ? 1 : v[i + 1] == 'm' ? 60 : 3600;
	double r = decimal_value(v, i) / per;
	if (!(r >= SHAPING_MIN_RATE * (1 - 1e-9)) || r > SHAPING_MAX_RATE)
		return fail(p, "%s=%s out of range (one a day to 1000000/s)", key, v);
	*out = r;
	return 0;
}

/* parse_name_key - name= into r. */
static int parse_name_key(struct parse *p, struct shaping_rule *r, const char *v)
{
	size_t n = strlen(v);
	if (n > SHAPING_MAX_NAME)
		return fail(p, "name longer than %u octets", SHAPING_MAX_NAME);
	if (!n || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789._-") != n)
		return fail(p, "bad name '%s' (want a-z, 0-9, '.', '_', '-')", v);
	memcpy(r->name, v, n + 1);
	return 0;
}

/* find_key - index of a key name, K_COUNT if unknown. */
static enum key find_key(const char *k, size_t n)
{
	for (int i = 0; i < K_COUNT; i++)
		if (strlen(key_name[i]) == n && !memcmp(key_name[i], k, n))
			return (enum key)i;
	return K_COUNT;
}

/* parse_option - one key=value word into r; seen marks the keys given on this line. */
static int parse_option(struct parse *p, struct shaping_rule *r, const char *tok, unsigned *seen)
{
	const char *eq = strchr(tok, '=');
	if (!eq)
		return fail(p, "missing '=' in '%s'", tok);
	enum key k = find_key(tok, (size_t)(eq - tok));
	if (k == K_COUNT)
		return fail(p, "unknown key '%.*s'", (int)(eq - tok), tok);
	if (*seen & (1u << k))
		return fail(p, "duplicate key '%s'", key_name[k]);
	*seen |= 1u << k;
	const char *v = eq + 1;
	switch (k) {
	case K_CONN:  return parse_uint_key(p, key_name[k], v, SHAPING_MAX_CONNECTIONS, &r->lim.connections);
	case K_MPC:   return parse_uint_key(p, key_name[k], v, SHAPING_MAX_MSGS_PER_CONN, &r->lim.msgs_per_conn);
	case K_RATE:  return parse_rate_key(p, key_name[k], v, &r->lim.rate);
	case K_CRATE: return parse_rate_key(p, key_name[k], v, &r->lim.connect_rate);
	default:      return parse_name_key(p, r, v);
	}
}

/* same_selector - do two rules select the same thing? */
static bool same_selector(const struct shaping_rule *a, const struct shaping_rule *b)
{
	return a->kind == b->kind && !strcmp(a->match, b->match);
}

/* lim_eq - are two limits equal? */
static bool lim_eq(const struct shaping_limits *a, const struct shaping_limits *b)
{
	return a->connections == b->connections && a->msgs_per_conn == b->msgs_per_conn &&
	       a->rate == b->rate && a->connect_rate == b->connect_rate;
}

/* check_new_rule - r against the file's earlier rules: duplicate selector, provider limits. */
static int check_new_rule(struct parse *p, const struct shaping_rule *r)
{
	char sel[SHAPING_MAX_NAME + 16];
	for (unsigned i = 0; i < p->n; i++) {
		const struct shaping_rule *o = &p->rule[i];
		if (same_selector(o, r))
			return fail(p, "duplicate selector '%s' (first at line %u)",
			            selector_text(r, sel, sizeof sel), o->line);
		if (r->kind == SHAPING_MX && o->kind == SHAPING_MX && !strcmp(o->name, r->name) &&
		    !lim_eq(&o->lim, &r->lim))
			return fail(p, "provider '%s' has other limits at line %u", r->name, o->line);
	}
	return 0;
}

/* parse_words - the words of one rule line (comment cut off) into a new rule. */
static int parse_words(struct parse *p, char *buf)
{
	char *save, *tok = strtok_r(buf, " \t", &save);
	if (!tok)
		return 0;
	if (p->n == SHAPING_MAX_RULES)
		return fail(p, "too many rules (at most %u)", SHAPING_MAX_RULES);
	struct shaping_rule r = {.provider = SHAPING_NO_PROVIDER, .line = p->line};
	snprintf(r.file, sizeof r.file, "%s", p->fname);
	if (parse_selector(p, &r, tok))
		return -1;
	unsigned seen = 0;
	while ((tok = strtok_r(NULL, " \t", &save)))
		if (parse_option(p, &r, tok, &seen))
			return -1;
	if (check_new_rule(p, &r))
		return -1;
	p->rule[p->n++] = r;
	return 0;
}

/* parse_line - one line (without its LF) of a rules file. */
static int parse_line(struct parse *p, const char *s, size_t n)
{
	char buf[SHAPING_MAX_LINE + 1];
	if (n && s[n - 1] == '\r')
		n--;
	if (n > SHAPING_MAX_LINE)
		return fail(p, "line too long (over %u octets)", SHAPING_MAX_LINE);
	if (memchr(s, '\0', n))
		return fail(p, "NUL byte");
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *hash = strchr(buf, '#');
	if (hash)
		*hash = '\0';
	return parse_words(p, buf);
}

/* parse_text - every line of a file into p->rule. */
static int parse_text(struct parse *p, const char *text, size_t len)
{
	size_t off = 0;
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
		p->line++;
		if (parse_line(p, text + off, n))
			return -1;
		off += n + 1;
	}
	return 0;
}

/* by_match - order rule pointers by match. */
static int by_match(const void *a, const void *b)
{
	return strcmp((*(const struct shaping_rule *const *)a)->match,
	              (*(const struct shaping_rule *const *)b)->match);
}

/* assign_providers - give each mx rule the index of the first mx rule name it shares. */
static void assign_providers(struct shaping *s)
{
	s->nprovider = 0;
	for (unsigned i = 0; i < s->n; i++) {
		struct shaping_rule *r = &s->rule[i];
		r->provider = SHAPING_NO_PROVIDER;
		if (r->kind != SHAPING_MX)
			continue;
		for (unsigned j = 0; j < i && r->provider == SHAPING_NO_PROVIDER; j++)
			if (s->rule[j].kind == SHAPING_MX && !strcmp(s->rule[j].name, r->name))
				r->provider = s->rule[j].provider;
		if (r->provider == SHAPING_NO_PROVIDER)
			r->provider = s->nprovider++;
	}
}

/* build_index - the default pointer and the sorted domain and mx arrays (already sized). */
static void build_index(struct shaping *s)
{
	s->def = NULL;
	s->ndom = s->nmx = 0;
	for (unsigned i = 0; i < s->n; i++) {
		const struct shaping_rule *r = &s->rule[i];
		if (r->kind == SHAPING_DEFAULT)
			s->def = r;
		else if (r->kind == SHAPING_DOMAIN)
			s->dom[s->ndom++] = r;
		else
			s->mx[s->nmx++] = r;
	}
	qsort(s->dom, s->ndom, sizeof *s->dom, by_match);
	qsort(s->mx, s->nmx, sizeof *s->mx, by_match);
}

/* place_rules - put p's rules into s (replacing same selectors of earlier files); marks fresh slots. */
static void place_rules(struct shaping *s, const struct parse *p, unsigned char *fresh)
{
	unsigned old = s->n;
	for (unsigned i = 0; i < p->n; i++) {
		unsigned j = 0;
		while (j < old && !same_selector(&s->rule[j], &p->rule[i]))
			j++;
		if (j == old)
			j = s->n++;
		s->rule[j] = p->rule[i];
		fresh[j] = 1;
	}
}

/* inherit_provider_limits - earlier mx rules take the limits a fresh rule of their name sets. */
static void inherit_provider_limits(struct shaping *s, const unsigned char *fresh)
{
	for (unsigned i = 0; i < s->n; i++) {
		if (fresh[i] || s->rule[i].kind != SHAPING_MX)
			continue;
		for (unsigned j = 0; j < s->n; j++)
			if (fresh[j] && s->rule[j].kind == SHAPING_MX &&
			    !strcmp(s->rule[j].name, s->rule[i].name)) {
				s->rule[i].lim = s->rule[j].lim;
				break;
			}
	}
}

/* merge - fold a parsed file into s; allocates everything before changing s. */
static int merge(struct shaping *s, struct parse *p)
{
	unsigned total = s->n + p->n;
	const struct shaping_rule **dom = calloc(total + 1, sizeof *dom);
	const struct shaping_rule **mx = calloc(total + 1, sizeof *mx);
	unsigned char *fresh = calloc(total + 1, 1);
	struct shaping_rule *rule = dom && mx && fresh ?
		realloc(s->rule, (total + 1) * sizeof *rule) : NULL;
	if (!rule) {
		free(dom);
		free(mx);
		free(fresh);
		if (p->errlen)
			snprintf(p->err, p->errlen, "%s: out of memory", p->fname);
		return -1;
	}
	free(s->dom);
	free(s->mx);
	s->rule = rule;
	s->dom = dom;
	s->mx = mx;
	place_rules(s, p, fresh);
	inherit_provider_limits(s, fresh);
	free(fresh);
	assign_providers(s);
	build_index(s);
	return 0;
}

/* shaping_parse - parse one file's text over s. */
int shaping_parse(struct shaping *s, const char *fname, const char *text, size_t len,
                  char *err, size_t errlen)
{
	struct parse p = {.fname = fname, .err = err, .errlen = errlen};
	p.rule = malloc(SHAPING_MAX_RULES * sizeof *p.rule);
	if (!p.rule) {
		snprintf(err, errlen, "%s: out of memory", fname);
		return -1;
	}
	int rc = parse_text(&p, text, len);
	if (!rc)
		rc = merge(s, &p);
	free(p.rule);
	return rc;
}

/* read_all - the whole of a file of at most SHAPING_MAX_FILE_SIZE octets into *out. */
static int read_all(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = f ? malloc(SHAPING_MAX_FILE_SIZE + 1) : NULL;
	size_t n = buf ? fread(buf, 1, SHAPING_MAX_FILE_SIZE + 1, f) : 0;
	int e = errno;
	if (!buf || ferror(f) || n > SHAPING_MAX_FILE_SIZE) {
		if (buf && !ferror(f))
			snprintf(err, errlen, "%s: larger than %u octets", path, SHAPING_MAX_FILE_SIZE);
		else
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
		free(buf);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	*out = buf, *len = n;
	return 0;
}

/* shaping_init - the built-ins, then the user's file over them. */
int shaping_init(struct shaping *s, const char *user_path, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	if (shaping_parse(s, "<built-in>", shaping_builtin, sizeof shaping_builtin - 1, err, errlen))
		return -1;
	if (!user_path)
		return 0;
	char *text;
	size_t len;
	int rc = read_all(user_path, &text, &len, err, errlen);
	if (!rc) {
		rc = shaping_parse(s, user_path, text, len, err, errlen);
		free(text);
	}
	if (rc)
		shaping_free(s);
	return rc;
}

/* shaping_free - release s. */
void shaping_free(struct shaping *s)
{
	free(s->rule);
	free(s->dom);
	free(s->mx);
	memset(s, 0, sizeof *s);
}

/* shaping_default - the default rule. */
const struct shaping_rule *shaping_default(const struct shaping *s)
{
	return s->def;
}

/* key_cmp - compare a match string with a rule pointer's match (for bsearch). */
static int key_cmp(const void *key, const void *elem)
{
	return strcmp(key, (*(const struct shaping_rule *const *)elem)->match);
}

/* find_match - the rule in a sorted array whose match is key, NULL if none. */
static const struct shaping_rule *find_match(const struct shaping_rule *const *arr, unsigned n,
                                             const char *key)
{
	if (!n)
		return NULL;
	const struct shaping_rule *const *r = bsearch(key, arr, n, sizeof *arr, key_cmp);
	return r ? *r : NULL;
}

/* lower_name - a name lower-cased, one trailing dot dropped; false if empty or too long. */
static bool lower_name(const char *in, char out[SHAPING_MAX_NAME + 1])
{
	size_t n = in ? strlen(in) : 0;
	if (n && in[n - 1] == '.')
		n--;
	if (!n || n > SHAPING_MAX_NAME)
		return false;
	lower_copy(out, in, n);
	return true;
}

/* shaping_domain - the rule of a recipient domain. */
const struct shaping_rule *shaping_domain(const struct shaping *s, const char *domain)
{
	char key[SHAPING_MAX_NAME + 1];
	if (!lower_name(domain, key))
		return NULL;
	return find_match(s->dom, s->ndom, key);
}

/* host_provider - the longest mx rule matching one host: the exact host, then each ".suffix". */
static const struct shaping_rule *host_provider(const struct shaping *s, const char *host)
{
	char h[SHAPING_MAX_NAME + 1];
	if (!lower_name(host, h))
		return NULL;
	const struct shaping_rule *r = find_match(s->mx, s->nmx, h);
	for (const char *d = strchr(h, '.'); !r && d; d = strchr(d + 1, '.'))
		r = find_match(s->mx, s->nmx, d);
	return r;
}

/* shaping_provider - the longest match over all hosts, the earliest rule on a tie. */
const struct shaping_rule *shaping_provider(const struct shaping *s, const char *const *mx_hosts,
                                            unsigned n)
{
	const struct shaping_rule *best = NULL;
	size_t best_len = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct shaping_rule *r = host_provider(s, mx_hosts[i]);
		size_t len = r ? strlen(r->match) : 0;
		if (r && (len > best_len || (len == best_len && r < best)))
			best = r, best_len = len;
	}
	return best;
}

/* tighter_u - the stricter of two counts, 0 meaning none. */
static unsigned tighter_u(unsigned a, unsigned b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

/* tighter_d - the stricter of two rates, 0 meaning none. */
static double tighter_d(double a, double b)
{
	return !(a > 0) ? b : !(b > 0) ? a : a < b ? a : b;
}

/* shaping_tighter - the stricter of two limits, field by field. */
struct shaping_limits shaping_tighter(struct shaping_limits a, struct shaping_limits b)
{
	return (struct shaping_limits){
		.connections = tighter_u(a.connections, b.connections),
		.msgs_per_conn = tighter_u(a.msgs_per_conn, b.msgs_per_conn),
		.rate = tighter_d(a.rate, b.rate),
		.connect_rate = tighter_d(a.connect_rate, b.connect_rate),
	};
}

/* rate_init - reset r to full. */
void rate_init(struct rate_limiter *r)
{
	atomic_store_explicit(&r->tat_us, 0, memory_order_relaxed);
}

/* interval_us - microseconds between tokens, rounded up so the rate is never exceeded. */
static int64_t interval_us(double per_second)
{
	double t = ceil(1e6 / per_second);
	if (!(t >= 1))
		return 1;
	return t > (double)RATE_MAX_INTERVAL_US ? RATE_MAX_INTERVAL_US : (int64_t)t;
}

/* tolerance_us - how far ahead of now the arrival time may run: (burst - 1) intervals. */
static int64_t tolerance_us(double burst, int64_t interval)
{
	double b = burst >= 1 ? burst : 1;
	if (b > RATE_MAX_BURST)
		b = RATE_MAX_BURST;
	return (int64_t)((b - 1) * (double)interval);
}

/* rate_take - GCRA: allow when tat - tolerance <= now, then tat = max(tat, now) + interval. */
bool rate_take(struct rate_limiter *r, double per_second, double burst, int64_t now_us,
               int64_t *retry_at_us)
{
	if (!(per_second > 0))
		return true;
	int64_t t = interval_us(per_second), tau = tolerance_us(burst, t);
	int64_t tat = atomic_load_explicit(&r->tat_us, memory_order_relaxed);
	for (;;) {
		int64_t base = tat > now_us ? tat : now_us;
		if (base - tau > now_us) {
			if (retry_at_us)
				*retry_at_us = base - tau;
			return false;
		}
		if (atomic_compare_exchange_weak_explicit(&r->tat_us, &tat, base + t,
		                                          memory_order_relaxed, memory_order_relaxed))
			return true;
	}
}

/* rate_ready - the test of rate_take without the take. */
bool rate_ready(const struct rate_limiter *r, double per_second, double burst, int64_t now_us,
                int64_t *retry_at_us)
{
	if (!(per_second > 0))
		return true;
	int64_t t = interval_us(per_second), tau = tolerance_us(burst, t);
	int64_t tat = atomic_load_explicit(&r->tat_us, memory_order_relaxed);
	int64_t base = tat > now_us ? tat : now_us;
	if (base - tau <= now_us)
		return true;
	if (retry_at_us)
		*retry_at_us = base - tau;
	return false;
}

/* throttle_init - start at the configured maxima. */
void throttle_init(struct throttle *t, unsigned conn_max, double rate_max)
{
	memset(t, 0, sizeof *t);
	t->conn_max = t->conn = t->conn_top = conn_max;
	t->rate_max = t->rate = t->rate_top = rate_max > 0 ? rate_max : 0;
}

/* ci_find - does needle occur in s[0..n) ignoring ASCII case? */
static bool ci_find(const char *s, size_t n, const char *needle)
{
	size_t m = strlen(needle);
	for (size_t i = 0; m <= n && i <= n - m; i++) {
		size_t j = 0;
		while (j < m && tolower((unsigned char)s[i + j]) == needle[j])
			j++;
		if (j == m)
			return true;
	}
	return false;
}

/* ci_any - does any of a NULL-terminated list of lower-case needles occur in s[0..n)? */
static bool ci_any(const char *s, size_t n, const char *const *needles)
{
	for (; *needles; needles++)
		if (ci_find(s, n, *needles))
			return true;
	return false;
}

/* is_policy_code - does s[0..n) start with an enhanced code "4.7.D"? */
static bool is_policy_code(const char *s, size_t n)
{
	return n >= 5 && !memcmp(s, "4.7.", 4) && isdigit((unsigned char)s[4]);
}

/* Texts that ask the sender to slow down (providers' 4xx replies). */
static const char *const throttle_texts[] = {
	"rate limit", "rate-limit", "ratelimit", "too many connections", "too many concurrent",
	"maximum number of connections", "connection limit", "too many messages",
	"try again later", "try later", "throttl", "temporarily deferred", "unusual rate",
	"sending rate", "too fast", "slow down", "frequency limit", "trop de connexions", NULL,
};

/* Texts of greylisting: a first-contact delay, not a load signal. */
static const char *const greylist_texts[] = {
	"greylist", "graylist", "grey-list", "gray-list", "grey list", "gray list", NULL,
};

/* shaping_is_throttling - does this reply ask us to slow down? */
bool shaping_is_throttling(int code, const char *enhanced, const char *text, size_t len)
{
	if (code < 400 || code > 499)
		return false;
	if (code == 421)
		return true;
	if (!text)
		len = 0;
	if (ci_any(text, len, greylist_texts))
		return false;
	if (enhanced && *enhanced ? is_policy_code(enhanced, strlen(enhanced))
	                          : is_policy_code(text, len))
		return true;
	return ci_any(text, len, throttle_texts);
}

/* halve_conn - the connection limit after a halving (base 0: stays unlimited). */
static void halve_conn(struct throttle *t, unsigned conn_seen)
{
	unsigned base = t->conn ? t->conn : conn_seen;
	if (!base)
		return;
	if (!t->conn)
		t->conn_top = base;
	t->conn = base / 2 ? base / 2 : 1;
}

/* halve_rate - the rate after a halving, not below THROTTLE_MIN_RATE (nor above the base). */
static void halve_rate(struct throttle *t, double rate_seen)
{
	double base = t->rate > 0 ? t->rate : rate_seen;
	if (!(base > 0))
		return;
	if (!(t->rate > 0))
		t->rate_top = base;
	double r = base / 2;
	if (r < THROTTLE_MIN_RATE)
		r = base < THROTTLE_MIN_RATE ? base : THROTTLE_MIN_RATE;
	t->rate = r;
}

/* throttle_slow - count a throttling reply; halve unless the last halving is too recent. */
bool throttle_slow(struct throttle *t, int64_t now_ms, unsigned conn_seen, double rate_seen)
{
	t->events++;
	t->last_event_ms = now_ms;
	if (t->halvings && now_ms - t->last_halve_ms < THROTTLE_DEDUP_MS)
		return false;
	halve_conn(t, conn_seen);
	halve_rate(t, rate_seen);
	t->halvings++;
	t->last_halve_ms = t->last_step_ms = now_ms;
	return true;
}

/* throttle_slowed - is either limit below its ceiling? */
bool throttle_slowed(const struct throttle *t)
{
	return (t->conn && t->conn < t->conn_top) || (t->rate > 0 && t->rate < t->rate_top);
}

/* step_up - one recovery step of both limits; a limit reaching its ceiling gets its maximum back. */
static void step_up(struct throttle *t)
{
	if (t->conn && t->conn < t->conn_top) {
		t->conn += THROTTLE_STEP_CONN;
		if (t->conn >= t->conn_top)
			t->conn = t->conn_max;
	}
	if (t->rate > 0 && t->rate < t->rate_top) {
		t->rate += THROTTLE_STEP_RATE * t->rate_top;
		if (t->rate >= t->rate_top * (1 - 1e-9))
			t->rate = t->rate_max;
	}
}

/* throttle_tick - one recovery step when calm long enough and the last step is old enough. */
bool throttle_tick(struct throttle *t, int64_t now_ms)
{
	if (!throttle_slowed(t))
		return false;
	int64_t calm = t->last_event_ms + THROTTLE_CALM_MS, next = t->last_step_ms + THROTTLE_STEP_MS;
	if (now_ms < (calm > next ? calm : next))
		return false;
	step_up(t);
	t->last_step_ms = now_ms;
	return true;
}
