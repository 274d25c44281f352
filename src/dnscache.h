/* dnscache.h - the run's DNS cache, shared by all threads: one query per (name, type) per TTL. */
#ifndef VOLLEY_DNSCACHE_H
#define VOLLEY_DNSCACHE_H
#include <stdbool.h>
#include <stdint.h>
#include "dns.h"

#define DNSCACHE_MAX_ENTRIES 1000000u  /* (name, type) pairs cached at most */
#define DNSCACHE_FAIL_TTL    5u        /* seconds a SERVFAIL/timeout is remembered */

enum dnscache_rc {
	DC_HIT,      /* *out holds the cached answer */
	DC_QUERY,    /* nobody is asking: the caller must query and call dnscache_put */
	DC_WAIT,     /* another thread is asking: the caller is woken through its eventfd */
};

/* dnscache_init - size the cache for nthreads, each with a wake-up eventfd. */
int dnscache_init(unsigned nthreads);

/* dnscache_set_wake - register thread tid's eventfd (written to when an answer it waits for arrives). */
void dnscache_set_wake(unsigned tid, int efd);

/* dnscache_get - look up (name, type) at now_ms for thread tid. On DC_WAIT, waiter
 * is remembered and handed back by dnscache_ready(tid) once the answer is stored. */
enum dnscache_rc dnscache_get(const char *name, enum dns_type type, unsigned tid, int64_t now_ms,
                              struct dns_answer *out, void *waiter);

/* dnscache_ready - take the waiters of thread tid whose answers arrived: fills up to
 * max pointers, returns how many. */
unsigned dnscache_ready(unsigned tid, void **out, unsigned max);

/* dnscache_put - store the answer of the query this thread made; wakes waiting threads.
 * A failure (SERVFAIL, timeout) is kept DNSCACHE_FAIL_TTL seconds. */
void dnscache_put(const char *name, enum dns_type type, const struct dns_answer *a, int64_t now_ms);

/* dnscache_abandon - the query this thread made will not be answered (its thread is
 * ending): the entry is no longer pending, and its waiters are woken to ask themselves. */
void dnscache_abandon(const char *name, enum dns_type type);

/* dnscache_queries - how many queries were started (DC_QUERY answers), for tests and the summary. */
uint64_t dnscache_queries(void);

/* dnscache_free - release everything (end of run). */
void dnscache_free(void);

/* dnscache_wake_others - wake every thread but tid (a shared connection slot came free). */
void dnscache_wake_others(unsigned tid);

#endif
