/* shaping.h - delivery shaping (pure): rules per destination and provider, GCRA rate limiters, AIMD throttling. */
#ifndef VOLLEY_SHAPING_H
#define VOLLEY_SHAPING_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Rules files (docs/shaping.md). */
#define SHAPING_MAX_RULES        1024u          /* rules in one file */
#define SHAPING_MAX_LINE         512u           /* octets in one line, line ending excluded */
#define SHAPING_MAX_NAME         253u           /* octets in a domain, an MX suffix or a name= label */
#define SHAPING_MAX_FILE_NAME    255u           /* octets of a file name kept in a rule (longer: cut) */
#define SHAPING_MAX_FILE_SIZE    (4u << 20)     /* octets in a rules file */
#define SHAPING_MAX_CONNECTIONS  65536u         /* connections=N */
#define SHAPING_MAX_MSGS_PER_CONN 1000000000u   /* messages-per-connection=N */
#define SHAPING_MIN_RATE         (1.0 / 86400.0) /* per second (one a day): lowest rate= / connect-rate= */
#define SHAPING_MAX_RATE         1000000.0      /* per second: highest rate= / connect-rate= */
#define SHAPING_NO_PROVIDER      (~0u)          /* shaping_rule.provider of a non-mx rule */

/* Rate limiters (GCRA). */
#define RATE_MAX_INTERVAL_US     1000000000000LL /* emission interval cap (~11.6 days): slower rates are clamped */
#define RATE_MAX_BURST           1000000.0       /* burst cap */

/* Adaptive throttling (AIMD). */
#define THROTTLE_DEDUP_MS        5000           /* throttling replies within this of the last halving count once */
#define THROTTLE_CALM_MS         60000          /* recovery starts this long after the last throttling reply */
#define THROTTLE_STEP_MS         30000          /* ... and then takes one step this often */
#define THROTTLE_STEP_CONN       1u             /* connections given back per step */
#define THROTTLE_STEP_RATE       0.10           /* fraction of the ceiling rate given back per step */
#define THROTTLE_MIN_RATE        (1.0 / 60.0)   /* per second: a halving never goes below one a minute */

/* What a rule selects. */
enum shaping_kind {
	SHAPING_DEFAULT,             /* "default": every destination without a domain: rule */
	SHAPING_DOMAIN,              /* "domain:NAME": one recipient domain, its own destination */
	SHAPING_MX,                  /* "mx:SUFFIX": a provider, by its MX host names */
};

/* Limits of one rule; 0 = no limit from this rule. Per destination for default/domain
 * rules, totals over every destination of the provider (all threads) for mx rules
 * (messages-per-connection is always per connection). */
struct shaping_limits {
	unsigned connections;        /* concurrent connections */
	unsigned msgs_per_conn;      /* transactions per connection before QUIT */
	double rate;                 /* transactions per second */
	double connect_rate;         /* new connections per second */
};

/* One rule, as parsed. */
struct shaping_rule {
	enum shaping_kind kind;
	char match[SHAPING_MAX_NAME + 1];  /* lower-cased domain, ".suffix" or exact host; "" for default */
	char name[SHAPING_MAX_NAME + 1];   /* label for the summary */
	struct shaping_limits lim;
	unsigned provider;           /* mx rules: provider index (rules with the same name share one
	                              * budget), < shaping.nprovider; else SHAPING_NO_PROVIDER */
	char file[SHAPING_MAX_FILE_NAME + 1]; /* where it was defined */
	unsigned line;
};

/* A rule set: the built-ins, then each file parsed over them. Read-only once loaded. */
struct shaping {
	struct shaping_rule *rule;   /* in definition order; a replaced rule keeps its slot */
	unsigned n;
	unsigned nprovider;          /* distinct mx rule names */
	const struct shaping_rule *def;  /* the default rule, NULL if none */
	const struct shaping_rule **dom; /* domain rules sorted by match */
	unsigned ndom;
	const struct shaping_rule **mx;  /* mx rules sorted by match */
	unsigned nmx;
};

/* The built-in rules (parsed with the file name "<built-in>"). */
extern const char shaping_builtin[];

/* shaping_init - load the built-ins, then user_path over them (NULL: none). 0, or -1 with
 * "FILE:LINE: reason" (or "FILE: reason" when it cannot be read) in err and s empty. */
int shaping_init(struct shaping *s, const char *user_path, char *err, size_t errlen);

/* shaping_parse - parse one file's text over s: a rule whose selector is already in s
 * (from an earlier file) replaces it; an mx rule's limits apply to every earlier mx rule of
 * the same name. 0, or -1 with "FNAME:LINE: reason" in err and s unchanged. Lookups made
 * before a parse are invalid after it. */
int shaping_parse(struct shaping *s, const char *fname, const char *text, size_t len,
                  char *err, size_t errlen);

/* shaping_free - release s and leave it empty. */
void shaping_free(struct shaping *s);

/* shaping_default - the default rule; NULL if no file defined one. */
const struct shaping_rule *shaping_default(const struct shaping *s);

/* shaping_domain - the rule of a recipient domain (any case, one trailing dot allowed); NULL if none. */
const struct shaping_rule *shaping_domain(const struct shaping *s, const char *domain);

/* shaping_provider - the mx rule with the longest match over all n hosts (a tie goes to the
 * rule defined first); NULL if none matches. */
const struct shaping_rule *shaping_provider(const struct shaping *s, const char *const *mx_hosts,
                                            unsigned n);

/* shaping_tighter - the stricter of two limits, field by field (0 = no limit). */
struct shaping_limits shaping_tighter(struct shaping_limits a, struct shaping_limits b);

/* A GCRA limiter: one "theoretical arrival time", shareable by threads (or, in a shared
 * store, by processes). Zero-initialised (or rate_init) it is full: a whole burst is free. */
struct rate_limiter {
	_Atomic int64_t tat_us;
};

/* rate_init - reset r to full. */
void rate_init(struct rate_limiter *r);

/* rate_take - take one token at now_us: true, or false with *retry_at_us (may be NULL) set
 * to the first time a take can succeed. per_second <= 0 means unlimited (always true);
 * burst < 1 counts as 1. Over any window of W seconds at most per_second*W + burst succeed. */
bool rate_take(struct rate_limiter *r, double per_second, double burst, int64_t now_us,
               int64_t *retry_at_us);

/* rate_ready - would rate_take succeed at now_us? (a peek: takes nothing; *retry_at_us, if
 * not NULL, gets the first time it would when it would not) */
bool rate_ready(const struct rate_limiter *r, double per_second, double burst, int64_t now_us,
                int64_t *retry_at_us);

/* Adaptive limits of one destination or provider (the caller locks it). 0 = no limit. */
struct throttle {
	unsigned conn_max, conn;     /* configured and current connection limit */
	double rate_max, rate;       /* configured and current rate (per second) */
	unsigned conn_top;           /* what recovery climbs back to: conn_max, or when that is 0
	                              * the level observed at the first slowdown */
	double rate_top;             /* the same for the rate */
	int64_t last_event_ms;       /* last throttling reply */
	int64_t last_halve_ms;       /* last halving */
	int64_t last_step_ms;        /* last recovery step (or halving) */
	unsigned events;             /* throttling replies seen */
	unsigned halvings;           /* halvings applied */
};

/* throttle_init - start at the configured maxima, not slowed. */
void throttle_init(struct throttle *t, unsigned conn_max, double rate_max);

/* shaping_is_throttling - does this reply ask us to slow down? 4xx only: 421, an enhanced
 * 4.7.x (taken from the text when enhanced is NULL or ""), or text such as "rate limit",
 * "too many connections", "try again later", "throttl", "temporarily deferred" (any case).
 * Greylisting, one mailbox (450 mailbox busy) or one transaction (452 too many recipients) are not. */
bool shaping_is_throttling(int code, const char *enhanced, const char *text, size_t len);

/* throttle_slow - a throttling reply at now_ms: count it and, unless the last halving is
 * under THROTTLE_DEDUP_MS old, halve the connection limit (min 1) and the rate (not below
 * THROTTLE_MIN_RATE). An unlimited current value is halved from conn_seen / rate_seen (what
 * the caller observes now; 0: leave it unlimited). True when it halved. */
bool throttle_slow(struct throttle *t, int64_t now_ms, unsigned conn_seen, double rate_seen);

/* throttle_tick - recovery: once THROTTLE_CALM_MS have passed since the last throttling
 * reply, one step every THROTTLE_STEP_MS (+THROTTLE_STEP_CONN connections, +THROTTLE_STEP_RATE
 * of the ceiling rate) up to the ceilings; reaching one restores the maximum. True on a step. */
bool throttle_tick(struct throttle *t, int64_t now_ms);

/* throttle_slowed - is either limit below its ceiling? */
bool throttle_slowed(const struct throttle *t);

#endif
