/* budget.h - what destinations and providers may use, shared by all threads:
 * open connections, message and connection rates, pauses, and the adaptive
 * slow-down after throttling replies. One budget per destination (MX set, or the
 * relay) and one per provider (an mx: shaping rule's name). The state is a few
 * atomics and a GCRA time per limiter, so that it can later live in a store shared
 * by several processes (Redis) without changing its meaning. */
#ifndef VOLLEY_BUDGET_H
#define VOLLEY_BUDGET_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "shaping.h"

#define BUDGET_MAX           200000u  /* destination budgets in one run */
#define BUDGET_LAST_REPLY    160u     /* octets of the last throttling reply kept */
#define BUDGET_BURST_S       0.1      /* a rate limit allows this many seconds' worth at once */

/* One budget. Limits of 0 mean none. */
struct budget {
	struct budget *next;          /* hash chain */
	struct budget *slow_next;     /* in the list of slowed budgets (guarded by the table lock) */
	bool listed;                  /* ... is in it (guarded by the table lock) */
	char *key;                    /* destination key, or the provider's name */
	bool provider;
	struct shaping_limits lim;    /* configured */
	_Atomic int conns;            /* open (or opening) connections, all threads */
	_Atomic unsigned conn_limit;  /* current connection limit (adaptive) */
	_Atomic double rate;          /* current message rate limit (adaptive) */
	_Atomic int64_t pause_until;  /* ms: no new connection before (after a 421) */
	struct rate_limiter msgs;     /* message (transaction) rate */
	struct rate_limiter connects; /* new-connection rate */
	_Atomic uint64_t txns;        /* transactions started */
	_Atomic int64_t win_ms;       /* start of the current one-second counting window */
	_Atomic uint64_t win_txns;    /* txns at that start */
	_Atomic double seen_rate;     /* transactions per second over the last full window */
	pthread_mutex_t mu;           /* guards what follows */
	struct throttle th;           /* adaptive state */
	bool ever_slowed;             /* for the summary */
	unsigned min_conn;            /* lowest connection limit it was slowed to */
	double min_rate;              /* lowest rate it was slowed to */
	char last[BUDGET_LAST_REPLY]; /* last throttling reply */
};

/* budget_init - empty tables for a run with nprovider providers. 0 or -1. */
int budget_init(unsigned nprovider);

/* budget_free - release every budget (after the threads are gone). */
void budget_free(void);

/* budget_dest - the budget of destination key, created with lim on first use; NULL when
 * out of memory or over BUDGET_MAX. */
struct budget *budget_dest(const char *key, const struct shaping_limits *lim);

/* budget_provider - the budget of provider rule r (created on first use), or NULL. */
struct budget *budget_provider(const struct shaping_rule *r);

/* budget_reserve - take a connection slot of b (and of p, when not NULL); false if
 * either is full or paused at now_ms, or the connection rate says wait. */
bool budget_reserve(struct budget *b, struct budget *p, int64_t now_ms);

/* budget_release - give a connection slot back; true when b was full (others may wait). */
bool budget_release(struct budget *b, struct budget *p);

/* budget_over - more connections open than the current limit (a session should finish). */
bool budget_over(const struct budget *b, const struct budget *p);

/* budget_message - may a transaction start at now_ms? If not, *wake_ms says when to ask again. */
bool budget_message(struct budget *b, struct budget *p, int64_t now_ms, int64_t *wake_ms);

/* budget_pause - no new connection to b before until_ms. */
void budget_pause(struct budget *b, int64_t until_ms);

/* budget_reply - a 4xx reply from b's servers: when it throttles (shaping_is_throttling),
 * slow b and p down. */
void budget_reply(struct budget *b, struct budget *p, int64_t now_ms, int code,
                  const char *enhanced, const char *text, size_t len);

/* budget_tick - the slowed budgets recover after calm (call about every 100 ms). */
void budget_tick(int64_t now_ms);

/* budget_report - one line per budget that was slowed down; returns how many. */
unsigned budget_report(FILE *f);

#endif
