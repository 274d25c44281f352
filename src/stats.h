/* stats.h - operator output: the live progress line and the final summary. */
#ifndef VOLLEY_STATS_H
#define VOLLEY_STATS_H
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include "engine.h"

/* Totals over all threads. */
struct totals {
	uint64_t delivered, bounced, deferred, failed, inflight, connections, sync_writes;
	uint64_t dns_queries, dns_tcp;
	uint64_t retries, retrying, retry_full; /* retries scheduled, waiting now, not retried (table full) */
	uint64_t untried;            /* results without an attempt (not in msgs/s) */
};

/* Progress state kept by the main thread. */
struct progress {
	struct engine_stats *st;     /* one per thread */
	unsigned threads;
	uint64_t total;              /* recipients expected (estimate from the job size), 0 if unknown */
	int64_t t0;                  /* ms at start */
	int64_t last;                /* ms of the last progress line */
	bool live;                   /* print the live line (stderr is a terminal, not --quiet) */
	volatile sig_atomic_t *report; /* set (by SIGUSR1): print one progress line now, as a line */
};

/* stats_sum - add up every thread's counters. */
void stats_sum(const struct progress *p, struct totals *t);

/* stats_tick - print the live progress line when due (engine tick callback). */
void stats_tick(void *arg);

/* stats_summary - print the final summary to f. */
void stats_summary(const struct progress *p, FILE *f, const char *results_path);

#endif
