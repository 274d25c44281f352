/* category.c - bounce classification: volley's own reasons, enhanced codes, reply text, reply codes (pure). */
#include "category.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/*
 * The order of the rules (docs/results-format.md, "category", says the same):
 *
 *  1. delivered: no category.
 *  2. code 0, a local decision: volley's own reasons, whose wording is known
 *     exactly (connect to ..., timed out waiting ..., TLS with ... failed,
 *     DNS lookup of ... failed, not attempted: ..., a bad job line, ...).
 *  3. A server reply that volley wrapped: "authentication failed: ..." (auth)
 *     and "STARTTLS refused: ..." (tls).
 *  4. The enhanced status code (RFC 3463 and the IANA registry), refined by
 *     the text where servers use one code for several things (x.7.1 spam or
 *     policy, 4.2.1 disabled or rate limited, 5.4.1 and 5.1.10 as Microsoft
 *     uses them). Some codes (x.0.0, x.2.0, x.3.0, x.5.0, most of x.7.x) only
 *     set a default and let the text decide.
 *  5. The reply text, lower-cased, against ordered lists of phrases.
 *  6. The default of step 4, then the reply code alone, then "other".
 */

#define CAT_SCAN_MAX 1024u   /* octets of the text looked at (the reply is cut there too) */
#define CAT_ENH_MAX  32u     /* octets of the enhanced code looked at */

#define C_BAD_MAILBOX "bad-mailbox"
#define C_BAD_DOMAIN  "bad-domain"
#define C_NO_MX       "no-mx"
#define C_POLICY      "policy"
#define C_SPAM        "spam"
#define C_QUOTA       "quota"
#define C_THROTTLED   "throttled"
#define C_TLS         "tls"
#define C_DNS         "dns"
#define C_PROTOCOL    "protocol"
#define C_TIMEOUT     "timeout"
#define C_CONNECTION  "connection"
#define C_LOCAL       "local"
#define C_AUTH        "auth"
#define C_CONTENT     "content"
#define C_INTERRUPTED "interrupted"
#define C_OTHER       "other"

/* The text being classified, lower-cased, cut at CAT_SCAN_MAX octets. */
struct ltext {
	size_t n;
	bool scanned;       /* found is valid */
	uint32_t found;     /* bit l: a phrase of list l occurs (see scan) */
	char s[CAT_SCAN_MAX];
};

/* ---- phrase lists (lower case; each ends with NULL) ---- */

static const char *const grey_words[] = {
	"greylist", "graylist", "grey-list", "gray-list", "grey list", "gray list", NULL };

static const char *const tls_words[] = {
	"starttls", "tls required", "requires tls", "require tls", "tls is required",
	"tls not available", "tls negotiation", "must use tls", "encryption required",
	"encryption needed", "requiretls", NULL };

static const char *const auth_words[] = {
	"authentication required", "authentication is required", "authentication failed",
	"authentication failure", "authentication credentials", "not authenticated",
	"invalid credentials", "username and password", "auth required", "smtp auth", NULL };

/* Refusals of the sender or the sending host, and relaying: checked before the
 * recipient phrases, so "Sender address rejected: Domain not found" is policy. */
static const char *const policy_early_words[] = {
	"sender address rejected", "sender verify failed", "sender rejected", "sender denied",
	"reverse dns", "ptr record", "rdns", "reverse hostname", "cannot find your hostname",
	"relay access denied", "relaying denied", "relay denied", "relay not permitted",
	"unable to relay", "not permitted to relay", "relaying not allowed", "relay not allowed",
	"dmarc", "spf", "dkim", NULL };

static const char *const bad_domain_words[] = {
	"domain does not exist", "domain doesn't exist", "domain not found", "no such domain",
	"unknown domain", "host not found", "host or domain name not found",
	"domain name not found", "nxdomain", "unrouteable domain", "domain is not valid", NULL };

static const char *const quota_words[] = {
	"mailbox full", "mailbox is full", "mailbox has exceeded", "over quota", "overquota",
	"quota exceeded", "exceeded quota", "exceeds quota", "quota exceed", "exceeded storage",
	"storage allocation", "insufficient storage", "insufficient system storage",
	"out of storage", "storage space", "mailbox size limit", "inbox is full", "full mailbox",
	"disk full", "no space left", NULL };

static const char *const bad_mailbox_words[] = {
	"user unknown", "unknown user", "no such user", "no such mailbox", "no such recipient",
	"no such address", "no such person", "recipient unknown", "unknown recipient",
	"addressee unknown", "address unknown", "unknown address", "unknown local part",
	"invalid recipient", "invalid mailbox", "not a valid mailbox", "recipient not found",
	"recipientnotfound", "user not found", "mailbox not found", "address not found",
	"mailbox unavailable", "mailbox is unavailable", "mailbox not available",
	"mailbox does not exist", "does not exist", "doesn't exist", "no mailbox here",
	"unrouteable address", "undeliverable address", "mailbox disabled",
	"mailbox has been disabled", "mailbox is disabled", "account disabled",
	"account is disabled", "account has been disabled", "no longer active",
	"no longer available", "no longer valid", "no longer in use", "inactive",
	"doesn't have a", "not our customer", NULL };

static const char *const content_words[] = {
	"message size", "message too big", "message too large", "message is too large",
	"too big", "too large", "exceeds the maximum size", "maximum message size", "size exceeds",
	"exceeds size", "size limit", "message length", "8bitmime", "8-bit", "smtputf8",
	"non-ascii", "virus", "malware", "infected", "attachment", "content rejected",
	"message content", "content filter", NULL };

static const char *const spam_words[] = {
	"spam", "blocked using", "blacklist", "blocklist", "block list", "black list", "dnsbl",
	"rbl", "reputation", "spamhaus", "spamcop", "sorbs", "barracuda", "unsolicited", "junk",
	"phish", "bulk mail", "banned sending ip", "not accepted from this ip", "is listed",
	"listed at", "listed on", "listed by", "found on one or more", NULL };

static const char *const rate_words[] = {
	"greylist", "graylist", "grey-list", "gray-list", "rate limit", "ratelimit",
	"rate-limit", "rate exceeded", "at a rate", "throttl", "too many", "too fast",
	"slow down", "try again later", "try later", "please try again", "retry later",
	"temporarily deferred", "deferred due to", "server busy", "system busy", "busy",
	"congest", "overload", "volume", "sending limit", "limit exceeded", "sending quota",
	"connection limit", "maximum number of", NULL };

static const char *const timeout_words[] = {
	"timed out", "timeout", "time out", "delivery time expired", NULL };

static const char *const connection_words[] = {
	"connection refused", "connection reset", "connection closed", "lost connection",
	"connection dropped", "no route to host", "network is unreachable", "host unreachable",
	"unable to connect", "could not connect", "can't connect", "cannot connect",
	"connection failed", NULL };

static const char *const dns_words[] = {
	"dns", "name service", "name server", "nameserver", "servfail", "lookup failed", NULL };

static const char *const protocol_words[] = {
	"syntax error", "command not recognized", "unrecognized command", "command unrecognized",
	"unknown command", "bad command", "invalid command", "bad sequence", "out of sequence",
	"not implemented", "line too long", NULL };

static const char *const policy_words[] = {
	"access denied", "not authorized", "unauthorized", "not allowed", "not permitted",
	"prohibit", "policy", "denied", "refused", "forbidden", "rejected by", "administrative",
	"helo", NULL };

static const char *const spam_weak_words[] = { "blocked", NULL };

/* Phrases that only refine one enhanced code. */
static const char *const sender_words[] = { "sender", NULL };
static const char *const rcpt_not_found_words[] = {
	"recipientnotfound", "recipient not found", NULL };
static const char *const rcpt_rejected_words[] = {
	"recipient address rejected", "access denied", NULL };
static const char *const auth_any_words[] = { "authenticat", "password", "credential", NULL };

/* The phrase lists. The text phase tries L_GREY .. L_SPAM_WEAK in this order:
 * the first list with a phrase in the text decides. */
enum list {
	L_GREY, L_TLS, L_AUTH, L_POLICY_EARLY, L_BAD_DOMAIN, L_QUOTA, L_BAD_MAILBOX, L_CONTENT,
	L_SPAM, L_RATE, L_TIMEOUT, L_CONNECTION, L_DNS, L_PROTOCOL, L_POLICY, L_SPAM_WEAK,
	L_TEXT_RULES,   /* the lists from here on only refine enhanced codes */
	L_SENDER = L_TEXT_RULES, L_RCPT_NOT_FOUND, L_RCPT_REJECTED, L_AUTH_ANY,
	L_COUNT
};

static const struct {
	const char *const *words;
	const char *cat;   /* what the text phase gives (lists before L_TEXT_RULES) */
} lists[L_COUNT] = {
	[L_GREY] = { grey_words, C_THROTTLED },
	[L_TLS] = { tls_words, C_TLS },
	[L_AUTH] = { auth_words, C_AUTH },
	[L_POLICY_EARLY] = { policy_early_words, C_POLICY },
	[L_BAD_DOMAIN] = { bad_domain_words, C_BAD_DOMAIN },
	[L_QUOTA] = { quota_words, C_QUOTA },
	[L_BAD_MAILBOX] = { bad_mailbox_words, C_BAD_MAILBOX },
	[L_CONTENT] = { content_words, C_CONTENT },
	[L_SPAM] = { spam_words, C_SPAM },
	[L_RATE] = { rate_words, C_THROTTLED },
	[L_TIMEOUT] = { timeout_words, C_TIMEOUT },
	[L_CONNECTION] = { connection_words, C_CONNECTION },
	[L_DNS] = { dns_words, C_DNS },
	[L_PROTOCOL] = { protocol_words, C_PROTOCOL },
	[L_POLICY] = { policy_words, C_POLICY },
	[L_SPAM_WEAK] = { spam_weak_words, C_SPAM },
	[L_SENDER] = { sender_words, NULL },
	[L_RCPT_NOT_FOUND] = { rcpt_not_found_words, NULL },
	[L_RCPT_REJECTED] = { rcpt_rejected_words, NULL },
	[L_AUTH_ANY] = { auth_any_words, NULL },
};

_Static_assert(L_COUNT <= 32, "the lists found in a text are one 32-bit set");

/* ---- matching ---- */

/*
 * Looking for some 250 phrases one memmem at a time costs several microseconds
 * per reply, on the engine's hot path. Instead the text is scanned once: at
 * each octet a bitmap of (a hash of) the phrases' first three octets rules out
 * almost every position, and at the few left the phrases starting with that
 * octet are compared. The scan gives the set of lists with a phrase in the
 * text; it runs only when a rule needs it. The index is built once, on first
 * use (pthread_once: the engine's threads share it).
 */

#define CAT_MAX_PHRASES 512u   /* room for the phrases of every list */

/* One phrase of the index. */
struct phrase {
	const char *s;
	unsigned char len;
	unsigned char list;   /* enum list */
};

static struct phrase phrases[CAT_MAX_PHRASES];   /* grouped by first octet */
static unsigned short first_at[257];              /* phrases[first_at[c] .. first_at[c + 1]) */
static uint64_t tri_seen[65536u / 64u];           /* bit tri(a, b, c): some phrase may start "abc" */
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

/* tri - a 16-bit hash of the three octets at u. */
static inline unsigned tri(const unsigned char *u)
{
	return ((unsigned)u[0] << 11 ^ (unsigned)u[1] << 5 ^ u[2] ^ (unsigned)u[0] >> 5) & 0xffffu;
}

/* build_index - group the phrases of every list by first octet; note their first three octets. */
static void build_index(void)
{
	unsigned count[256] = { 0 }, at[256], n = 0;
	for (unsigned l = 0; l < L_COUNT; l++)
		for (const char *const *w = lists[l].words; *w; w++) {
			assert(strlen(*w) >= 3 && strlen(*w) < 256);
			count[(unsigned char)(*w)[0]]++;
			n++;
		}
	assert(n <= CAT_MAX_PHRASES);
	first_at[0] = 0;
	for (unsigned c = 0; c < 256; c++) {
		at[c] = first_at[c];
		first_at[c + 1] = (unsigned short)(first_at[c] + count[c]);
	}
	for (unsigned l = 0; l < L_COUNT; l++)
		for (const char *const *w = lists[l].words; *w; w++) {
			const unsigned char *u = (const unsigned char *)*w;
			phrases[at[u[0]]++] = (struct phrase){ *w, (unsigned char)strlen(*w), (unsigned char)l };
			unsigned h = tri(u);
			tri_seen[h / 64u] |= (uint64_t)1 << (h % 64u);
		}
}

/* lower - fill t with text[0..len) in ASCII lower case, cut at CAT_SCAN_MAX octets. */
static void lower(struct ltext *t, const char *text, size_t len)
{
	t->n = text ? (len < CAT_SCAN_MAX ? len : CAT_SCAN_MAX) : 0;
	t->scanned = false;
	t->found = 0;
	for (size_t i = 0; i < t->n; i++) {
		unsigned char c = (unsigned char)text[i];
		t->s[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
}

/* scan - the set of lists with a phrase in t (computed on the first call). */
static uint32_t scan(struct ltext *t)
{
	if (t->scanned)
		return t->found;
	pthread_once(&index_once, build_index);
	const unsigned char *s = (const unsigned char *)t->s;
	uint32_t found = 0;
	for (size_t i = 0; i + 2 < t->n; i++) {
		unsigned h = tri(s + i);
		if (!(tri_seen[h / 64u] >> (h % 64u) & 1u))
			continue;
		for (unsigned k = first_at[s[i]]; k < first_at[s[i] + 1]; k++) {
			const struct phrase *p = &phrases[k];
			if (p->s[1] == (char)s[i + 1] && p->s[2] == (char)s[i + 2] &&
			    !(found >> p->list & 1u) && p->len <= t->n - i &&
			    memcmp(s + i, p->s, p->len) == 0)
				found |= (uint32_t)1 << p->list;
		}
	}
	t->scanned = true;
	t->found = found;
	return found;
}

/* in - whether a phrase of list l occurs in t. */
static bool in(struct ltext *t, enum list l)
{
	return scan(t) >> l & 1u;
}

/* by_text - the category of the first text-phase list with a phrase in t, or NULL. */
static const char *by_text(struct ltext *t)
{
	uint32_t f = scan(t) & (((uint32_t)1 << L_TEXT_RULES) - 1u);
	for (unsigned l = 0; l < L_TEXT_RULES; l++)
		if (f >> l & 1u)
			return lists[l].cat;
	return NULL;
}

/* has - whether the phrase p occurs in t (for volley's own reasons, outside the index). */
static bool has(const struct ltext *t, const char *p)
{
	return memmem(t->s, t->n, p, strlen(p)) != NULL;
}

/* starts - whether t begins with the phrase p. */
static bool starts(const struct ltext *t, const char *p)
{
	size_t n = strlen(p);
	return t->n >= n && memcmp(t->s, p, n) == 0;
}

/* ---- enhanced codes ---- */

/* parse_num - 1..3 decimal digits at *pp (before end) into *v; advances *pp. */
static bool parse_num(const char **pp, const char *end, int *v)
{
	const char *p = *pp;
	int n = 0, k = 0;
	while (p < end && *p >= '0' && *p <= '9' && k < 4) {
		n = n * 10 + (*p++ - '0');
		k++;
	}
	if (k == 0 || k > 3)
		return false;
	*v = n;
	*pp = p;
	return true;
}

/* parse_enh - "c.s.d" at p (before end) into v; returns one past it, or NULL. */
static const char *parse_enh(const char *p, const char *end, int v[3])
{
	if (p >= end || (*p != '2' && *p != '4' && *p != '5'))
		return NULL;
	v[0] = *p++ - '0';
	if (p >= end || *p++ != '.' || !parse_num(&p, end, &v[1]))
		return NULL;
	if (p >= end || *p++ != '.' || !parse_num(&p, end, &v[2]))
		return NULL;
	return p;
}

/* enh_of - the enhanced code of the result, or one qmail writes as "(#5.1.1)" in the text. */
static bool enh_of(const char *enhanced, const struct ltext *t, int v[3])
{
	if (enhanced) {
		const char *end = enhanced + strnlen(enhanced, CAT_ENH_MAX);
		if (parse_enh(enhanced, end, v) == end)
			return true;
	}
	const char *p = t->s, *end = t->s + t->n;
	while ((p = memmem(p, (size_t)(end - p), "(#", 2)) != NULL) {
		p += 2;
		const char *q = parse_enh(p, end, v);
		if (q && q < end && *q == ')')
			return true;
	}
	return false;
}

/* by_x7 - security or policy status (x.7.d): auth, tls, spam, throttled or policy. */
static const char *by_x7(int d, int code, struct ltext *t, const char **def)
{
	if (code == 530 || code == 534 || code == 535)   /* RFC 4954 replies to a missing or bad AUTH */
		return in(t, L_TLS) ? C_TLS : C_AUTH;
	if (code == 538)
		return C_TLS;
	switch (d) {
	case 1:
		/* "Delivery not authorized": the usual code of blocklists and spam filters too. */
		return in(t, L_SPAM) ? C_SPAM : in(t, L_RATE) ? C_THROTTLED : C_POLICY;
	case 8: case 9: case 12: case 13:
		/* Credentials, weak mechanism, password transition, disabled account (RFC 4954,
		 * RFC 5248); some providers use 5.7.9 for policy refusals. */
		if (in(t, L_AUTH_ANY))
			return C_AUTH;
		*def = C_POLICY;
		return NULL;
	case 10: case 11: case 30:   /* encryption needed / required (RFC 4954), REQUIRETLS (RFC 8689) */
		return C_TLS;
	case 2: case 15: case 20: case 21: case 22: case 23: case 24: case 25: case 26: case 27:
	case 29:
		/* list expansion, priority, DKIM, SPF, reverse DNS, multiple checks (RFC 7372),
		 * sender null MX (RFC 7505), ARC (RFC 8617) */
		return C_POLICY;
	case 3: case 16:   /* security conversion impossible, too big for the priority */
		return C_CONTENT;
	case 17:           /* mailbox owner has changed (RFC 7293) */
		return C_BAD_MAILBOX;
	case 18:           /* domain owner has changed (RFC 7293) */
		return C_BAD_DOMAIN;
	case 28:           /* mail flood detected; Gmail's 4.7.28 "rate limited" */
		return C_THROTTLED;
	default:           /* x.7.0 and the rest: the text decides (TSS04, STARTTLS first, ...) */
		*def = C_POLICY;
		return NULL;
	}
}

/* by_enhanced - the category an enhanced code c.s.d decides, or NULL (then *def may
 * hold the category to use when the text decides nothing either). */
static const char *by_enhanced(const int v[3], int code, struct ltext *t, const char **def)
{
	int c = v[0], s = v[1], d = v[2];
	switch (s) {
	case 1:   /* addressing */
		switch (d) {
		case 0:
			return in(t, L_SENDER) ? C_POLICY : C_BAD_MAILBOX;
		case 1: case 3: case 4: case 6:   /* bad mailbox, syntax, ambiguous, moved */
			return C_BAD_MAILBOX;
		case 2:
			return C_BAD_DOMAIN;
		case 10:
			/* RFC 7505 null MX; Exchange sends "5.1.10 RESOLVER.ADR.RecipientNotFound". */
			return in(t, L_RCPT_NOT_FOUND) ?
			       C_BAD_MAILBOX : C_NO_MX;
		case 7: case 8: case 11:          /* the sender's address, domain, null MX */
			return C_POLICY;
		default:
			return NULL;
		}
	case 2:   /* mailbox */
		switch (d) {
		case 1:   /* disabled; Gmail's 4.2.1 "receiving mail at a rate ..." */
			return in(t, L_RATE) ? C_THROTTLED : C_BAD_MAILBOX;
		case 2:
			return C_QUOTA;
		case 3:
			return C_CONTENT;
		case 4:
			return C_OTHER;
		default:
			return NULL;
		}
	case 3:   /* mail system */
		switch (d) {
		case 1: return C_QUOTA;
		case 2: return C_THROTTLED;
		case 3: return C_PROTOCOL;
		case 4: return C_CONTENT;
		default: return NULL;
		}
	case 4:   /* network and routing */
		switch (d) {
		case 1:
			/* Exchange Online: "550 5.4.1 Recipient address rejected: Access denied". */
			if (c == 5 && in(t, L_RCPT_REJECTED))
				return C_BAD_MAILBOX;
			return C_CONNECTION;
		case 2: return C_CONNECTION;
		case 3: return C_DNS;
		case 4: return c == 5 ? C_BAD_DOMAIN : C_DNS;
		case 5: return C_THROTTLED;
		case 6: return C_OTHER;
		case 7: return C_TIMEOUT;
		default: return NULL;
		}
	case 5:   /* protocol */
		switch (d) {
		case 0:   /* outlook.com: "5.5.0 Requested action not taken: mailbox unavailable" */
			*def = C_PROTOCOL;
			return NULL;
		case 3: return C_THROTTLED;   /* too many recipients: fewer per transaction */
		case 6: return C_AUTH;        /* authentication exchange line too long */
		default: return C_PROTOCOL;
		}
	case 6:   /* media */
		return C_CONTENT;
	case 7:   /* security or policy */
		return by_x7(d, code, t, def);
	default:
		return NULL;
	}
}

/* ---- reply codes ---- */

/* by_code - the category the reply code alone suggests, or NULL. */
static const char *by_code(int code)
{
	switch (code) {
	case 421: return C_THROTTLED;   /* service not available, closing: busy or limiting */
	case 452: return C_QUOTA;       /* insufficient system storage */
	case 432: case 530: case 534: case 535: return C_AUTH;
	case 538: return C_TLS;
	case 455: case 500: case 501: case 502: case 503: case 504: case 555: return C_PROTOCOL;
	case 521: case 556: return C_NO_MX;   /* host / domain does not accept mail (RFC 7504) */
	case 551: case 553: return C_BAD_MAILBOX;
	case 552: return C_QUOTA;       /* exceeded storage allocation */
	case 554: return C_POLICY;      /* transaction failed; at the greeting, "go away" */
	default: return NULL;
	}
}

/* ---- volley's own reasons ---- */

/* by_local - a local decision (code 0): volley's reason, then its enhanced code. */
static const char *by_local(enum result_status st, const char *enhanced, struct ltext *t)
{
	if (starts(t, "not attempted: engine thread") || starts(t, "engine thread"))
		return C_LOCAL; /* a thread could not start (memory, io_uring), or its ring failed */
	if (starts(t, "not attempted") || starts(t, "the run was interrupted"))
		return C_INTERRUPTED;
	if (starts(t, "protocol error: internal"))
		return C_LOCAL;
	if (starts(t, "protocol error"))
		return C_PROTOCOL;
	if (starts(t, "connect to ") || starts(t, "connection closed") ||
	    starts(t, "receive failed") || starts(t, "send failed"))
		return C_CONNECTION;
	if (starts(t, "timed out"))
		return C_TIMEOUT;
	if (starts(t, "socket:"))
		return C_LOCAL;
	if (starts(t, "tls") || starts(t, "starttls"))
		return C_TLS;
	if (starts(t, "authentication failed") || starts(t, "the server does not offer auth") ||
	    starts(t, "refusing to send credentials"))
		return C_AUTH;
	if (has(t, "8bitmime") || has(t, "smtputf8") || has(t, "size limit"))
		return C_CONTENT;
	if (has(t, "(nxdomain)"))
		return C_BAD_DOMAIN;
	if (has(t, "(null mx"))
		return C_NO_MX;
	if (starts(t, "dns lookup") || has(t, "address found for the mail exchangers"))
		return C_DNS;
	if (starts(t, "cannot route"))
		return C_LOCAL;
	int v[3];
	if (enhanced && enh_of(enhanced, t, v)) {
		if (v[1] == 3 && v[2] == 0)   /* volley's 4.3.0: out of memory, queue full, too many domains */
			return C_LOCAL;
		const char *def = NULL;
		const char *c = by_enhanced(v, 0, t, &def);
		if (c || def)
			return c ? c : def;
	}
	return st == RS_FAILED ? C_LOCAL : C_OTHER;   /* a bad job line, or a reason new to this table */
}

/* category_of - the category of one outcome (see category.h). */
const char *category_of(enum result_status st, int code, const char *enhanced,
                        const char *text, size_t len)
{
	if (st == RS_DELIVERED)
		return NULL;
	struct ltext t;
	lower(&t, text, len);
	if (code == 0)
		return by_local(st, enhanced, &t);
	if (starts(&t, "authentication failed"))
		return C_AUTH;
	if (starts(&t, "starttls refused"))
		return C_TLS;
	const char *def = NULL;
	int v[3];
	if (enh_of(enhanced, &t, v)) {
		const char *c = by_enhanced(v, code, &t, &def);
		if (c)
			return c;
	}
	const char *c = by_text(&t);
	if (c)
		return c;
	if (def)
		return def;
	c = by_code(code);
	return c ? c : C_OTHER;
}
