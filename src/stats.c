/* stats.c - progress line on stderr (terminals only) and the end-of-run summary. */
#include "stats.h"
#include "retry.h"
#include "clock.h"

/* stats_sum - add up every thread's counters. */
void stats_sum(const struct progress *p, struct totals *t)
{
	*t = (struct totals){0};
	for (unsigned i = 0; i < p->threads; i++) {
		const struct engine_stats *s = &p->st[i];
		t->delivered += atomic_load_explicit(&s->delivered, memory_order_relaxed);
		t->bounced += atomic_load_explicit(&s->bounced, memory_order_relaxed);
		t->deferred += atomic_load_explicit(&s->deferred, memory_order_relaxed);
		t->failed += atomic_load_explicit(&s->failed, memory_order_relaxed);
		t->inflight += atomic_load_explicit(&s->inflight, memory_order_relaxed);
		t->connections += atomic_load_explicit(&s->connections, memory_order_relaxed);
		t->sync_writes += atomic_load_explicit(&s->sync_writes, memory_order_relaxed);
		t->dns_queries += atomic_load_explicit(&s->dns_queries, memory_order_relaxed);
		t->dns_tcp += atomic_load_explicit(&s->dns_tcp, memory_order_relaxed);
		t->retries += atomic_load_explicit(&s->retries, memory_order_relaxed);
		t->retrying += atomic_load_explicit(&s->retrying, memory_order_relaxed);
		t->retry_full += atomic_load_explicit(&s->retry_full, memory_order_relaxed);
		t->untried += atomic_load_explicit(&s->untried, memory_order_relaxed);
	}
}

/* done_of - recipients with a result. */
static uint64_t done_of(const struct totals *t)
{
	return t->delivered + t->bounced + t->deferred + t->failed;
}

/* stats_tick - one live line per second on stderr; one plain line when asked (SIGUSR1). */
void stats_tick(void *arg)
{
	struct progress *p = arg;
	int64_t now = clock_ms_precise();
	bool asked = p->report && *p->report;
	if (!asked && (!p->live || now - p->last < 1000))
		return;
	if (asked)
		*p->report = 0;
	else
		p->last = now;
	struct totals t;
	stats_sum(p, &t);
	uint64_t done = done_of(&t);
	double secs = (double)(now - p->t0) / 1000.0;
	double rate = secs > 0 ? (double)done / secs : 0;
	char left[32] = "?";
	if (p->total > done && rate > 0)
		snprintf(left, sizeof left, "%.0fs", (double)(p->total - done) / rate);
	else if (p->total && done >= p->total)
		snprintf(left, sizeof left, "0s");
	fprintf(stderr, "%ssent %llu  delivered %llu  bounced %llu  deferred %llu  "
	        "failed %llu  in flight %llu (retry pending %llu)  %.0f msgs/s  left ~%s%s",
	        asked ? (p->live ? "\r\033[Kvolley: " : "volley: ") : "\r\033[K",
	        (unsigned long long)done, (unsigned long long)t.delivered,
	        (unsigned long long)t.bounced, (unsigned long long)t.deferred,
	        (unsigned long long)t.failed, (unsigned long long)t.inflight,
	        (unsigned long long)t.retrying, rate, left, asked ? "\n" : "");
	fflush(stderr);
}

/* stats_summary - the final counts, time and rate (of the recipients attempted: those
 * never attempted, bad lines or left when the run stopped, took no time). */
void stats_summary(const struct progress *p, FILE *f, const char *results_path)
{
	struct totals t;
	stats_sum(p, &t);
	uint64_t done = done_of(&t);
	uint64_t tried = done > t.untried ? done - t.untried : 0;
	double secs = (double)(clock_ms_precise() - p->t0) / 1000.0;
	if (p->live)
		fputs("\r\033[K", stderr);
	fprintf(f, "volley: %llu recipients in %.2f s, %.0f msgs/s: delivered %llu, bounced %llu, "
	        "deferred %llu, failed %llu\n", (unsigned long long)done, secs,
	        secs > 0 ? (double)tried / secs : 0.0, (unsigned long long)t.delivered,
	        (unsigned long long)t.bounced, (unsigned long long)t.deferred,
	        (unsigned long long)t.failed);
	if (t.untried)
		fprintf(f, "volley: %llu of them not attempted (bad job lines, or the run stopped "
		        "first); msgs/s counts the others\n", (unsigned long long)t.untried);
	fprintf(f, "volley: %llu connections, %u threads (%s)\n",
	        (unsigned long long)t.connections, p->threads, p->st[0].ring_mode);
	if (t.dns_queries)
		fprintf(f, "volley: DNS: %llu queries sent (%llu over TCP)\n",
		        (unsigned long long)t.dns_queries, (unsigned long long)t.dns_tcp);
	if (t.retries)
		fprintf(f, "volley: %llu retries of deferred recipients\n", (unsigned long long)t.retries);
	if (t.retry_full)
		fprintf(f, "volley: %llu deferred recipients were not retried: the retry table (%u per "
		        "thread) was full; --resume tries them again\n",
		        (unsigned long long)t.retry_full, RETRY_CAP);
	fprintf(f, "volley: results in %s\n", results_path);
}
