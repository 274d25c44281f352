/* budget.c - shared connection and rate budgets of destinations and providers. */
#include "budget.h"
#include "strhash.h"
#include <stdlib.h>
#include <string.h>

#define BUCKETS 65536u

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct budget *g_dest[BUCKETS];
static struct budget **g_prov;     /* by provider index */
static unsigned g_nprov;
static unsigned g_ndest;
static struct budget *g_slowed;    /* budgets slowed down at least once */

/* budget_init - tables. */
int budget_init(unsigned nprovider)
{
	g_prov = calloc(nprovider ? nprovider : 1, sizeof *g_prov);
	g_nprov = nprovider;
	return g_prov ? 0 : -1;
}

/* make - a new budget at full limits. */
static struct budget *make(const char *key, const struct shaping_limits *lim, bool provider)
{
	struct budget *b = calloc(1, sizeof *b);
	if (!b || !(b->key = strdup(key))) {
		free(b);
		return NULL;
	}
	b->provider = provider;
	b->lim = *lim;
	atomic_init(&b->conn_limit, lim->connections);
	atomic_init(&b->rate, lim->rate);
	pthread_mutex_init(&b->mu, NULL);
	throttle_init(&b->th, lim->connections, lim->rate);
	b->min_conn = lim->connections;
	b->min_rate = lim->rate;
	return b;
}

/* budget_dest - find or create. */
struct budget *budget_dest(const char *key, const struct shaping_limits *lim)
{
	uint32_t h = strhash(key) % BUCKETS;
	struct budget *b;
	pthread_mutex_lock(&g_mu);
	for (b = g_dest[h]; b; b = b->next)
		if (strcmp(b->key, key) == 0)
			break;
	if (!b && g_ndest < BUDGET_MAX && (b = make(key, lim, false)) != NULL) {
		b->next = g_dest[h];
		g_dest[h] = b;
		g_ndest++;
	}
	pthread_mutex_unlock(&g_mu);
	return b;
}

/* budget_provider - find or create by index. */
struct budget *budget_provider(const struct shaping_rule *r)
{
	if (!r || r->provider >= g_nprov)
		return NULL;
	pthread_mutex_lock(&g_mu);
	struct budget *b = g_prov[r->provider];
	if (!b)
		b = g_prov[r->provider] = make(r->name, &r->lim, true);
	pthread_mutex_unlock(&g_mu);
	return b;
}

/* take_slot - CAS the connection count up while under the current limit. */
static bool take_slot(struct budget *b)
{
	int v = atomic_load_explicit(&b->conns, memory_order_relaxed);
	for (;;) {
		unsigned lim = atomic_load_explicit(&b->conn_limit, memory_order_relaxed);
		if (lim && v >= (int)lim)
			return false;
		if (atomic_compare_exchange_weak_explicit(&b->conns, &v, v + 1, memory_order_acq_rel,
		                                          memory_order_relaxed))
			return true;
	}
}

/* open_ready - not paused, and the connection rate would allow one now (takes nothing). */
static bool open_ready(const struct budget *b, int64_t now_ms)
{
	if (atomic_load_explicit(&b->pause_until, memory_order_relaxed) > now_ms)
		return false;
	double r = b->lim.connect_rate;
	return r <= 0 || rate_ready(&b->connects, r, 1 + r * BUDGET_BURST_S, now_ms * 1000, NULL);
}

/* open_take - take a connection-rate token (after open_ready said yes; another thread
 * may have taken it since: then false). */
static bool open_take(struct budget *b, int64_t now_ms)
{
	double r = b->lim.connect_rate;
	return r <= 0 || rate_take(&b->connects, r, 1 + r * BUDGET_BURST_S, now_ms * 1000, NULL);
}

/* budget_reserve - a slot in both, or in neither. */
bool budget_reserve(struct budget *b, struct budget *p, int64_t now_ms)
{
	if (!take_slot(b))
		return false;
	if (p && !take_slot(p)) {
		atomic_fetch_sub_explicit(&b->conns, 1, memory_order_relaxed);
		return false;
	}
	/* Look at both before taking from either, so that a refusal by one does not
	 * waste the other's token. */
	if (open_ready(b, now_ms) && (!p || open_ready(p, now_ms)) && open_take(b, now_ms) &&
	    (!p || open_take(p, now_ms)))
		return true;
	budget_release(b, p);
	return false;
}

/* budget_release - slot back; whether b or p had been full. */
bool budget_release(struct budget *b, struct budget *p)
{
	unsigned lb = atomic_load_explicit(&b->conn_limit, memory_order_relaxed);
	int vb = atomic_fetch_sub_explicit(&b->conns, 1, memory_order_relaxed);
	bool full = lb && vb >= (int)lb;
	if (p) {
		unsigned lp = atomic_load_explicit(&p->conn_limit, memory_order_relaxed);
		int vp = atomic_fetch_sub_explicit(&p->conns, 1, memory_order_relaxed);
		full = full || (lp && vp >= (int)lp);
	}
	return full;
}

/* over - one budget above its current limit. */
static bool over(const struct budget *b)
{
	unsigned lim = atomic_load_explicit(&b->conn_limit, memory_order_relaxed);
	return lim && atomic_load_explicit(&b->conns, memory_order_relaxed) > (int)lim;
}

/* budget_over - either is above its limit. */
bool budget_over(const struct budget *b, const struct budget *p)
{
	return over(b) || (p && over(p));
}

/* msg_ready - one budget's message rate would allow one now; if not, push *wake_ms. */
static bool msg_ready(const struct budget *b, int64_t now_ms, int64_t *wake_ms)
{
	double r = atomic_load_explicit(&b->rate, memory_order_relaxed);
	int64_t at_us;
	if (r <= 0 || rate_ready(&b->msgs, r, 1 + r * BUDGET_BURST_S, now_ms * 1000, &at_us))
		return true;
	int64_t at = (at_us + 999) / 1000;
	if (at > *wake_ms)
		*wake_ms = at;
	return false;
}

/* msg_take - take a message token; false if another thread took it first. */
static bool msg_take(struct budget *b, int64_t now_ms, int64_t *wake_ms)
{
	double r = atomic_load_explicit(&b->rate, memory_order_relaxed);
	if (r <= 0 || rate_take(&b->msgs, r, 1 + r * BUDGET_BURST_S, now_ms * 1000, NULL))
		return true;
	if (*wake_ms <= now_ms)
		*wake_ms = now_ms + 1;
	return false;
}

/* count - one transaction started; once a second, the rate of the last second (what a
 * slow-down halves when the rate had no limit). One compare per transaction, one CAS a
 * second. */
static void count(struct budget *b, int64_t now_ms)
{
	uint64_t n = atomic_fetch_add_explicit(&b->txns, 1, memory_order_relaxed) + 1;
	int64_t w0 = atomic_load_explicit(&b->win_ms, memory_order_relaxed);
	if (now_ms - w0 < 1000 || !atomic_compare_exchange_strong_explicit(&b->win_ms, &w0, now_ms,
	    memory_order_relaxed, memory_order_relaxed))
		return;
	uint64_t n0 = atomic_exchange_explicit(&b->win_txns, n, memory_order_relaxed);
	if (w0)
		atomic_store_explicit(&b->seen_rate, (double)(n - n0) * 1000.0 / (double)(now_ms - w0),
		                      memory_order_relaxed);
}

/* budget_message - both rates allow a transaction: look at both, then take from both
 * (when another thread wins the race for the second, the first token is spent: the rate
 * errs on the slow side). */
bool budget_message(struct budget *b, struct budget *p, int64_t now_ms, int64_t *wake_ms)
{
	*wake_ms = now_ms;
	if (!msg_ready(b, now_ms, wake_ms) || (p && !msg_ready(p, now_ms, wake_ms)) ||
	    !msg_take(b, now_ms, wake_ms) || (p && !msg_take(p, now_ms, wake_ms)))
		return false;
	count(b, now_ms);
	if (p)
		count(p, now_ms);
	return true;
}

/* budget_pause - push pause_until forward (never back). */
void budget_pause(struct budget *b, int64_t until_ms)
{
	int64_t v = atomic_load_explicit(&b->pause_until, memory_order_relaxed);
	while (v < until_ms && !atomic_compare_exchange_weak_explicit(&b->pause_until, &v, until_ms,
	       memory_order_relaxed, memory_order_relaxed))
		;
}

/* slow - halve one budget (at most once per THROTTLE_DEDUP_MS), publish its limits, and
 * put it on the list of slowed budgets (after its own lock: the list's lock comes first
 * where both are held). */
static void slow(struct budget *b, int64_t now_ms, const char *text, size_t len)
{
	pthread_mutex_lock(&b->mu);
	unsigned open = (unsigned)atomic_load_explicit(&b->conns, memory_order_relaxed);
	double seen = atomic_load_explicit(&b->seen_rate, memory_order_relaxed);
	if (throttle_slow(&b->th, now_ms, open ? open : 1, seen)) {
		atomic_store_explicit(&b->conn_limit, b->th.conn, memory_order_relaxed);
		atomic_store_explicit(&b->rate, b->th.rate, memory_order_relaxed);
		if (!b->ever_slowed || (b->th.conn && b->th.conn < b->min_conn))
			b->min_conn = b->th.conn;
		if (!b->ever_slowed || (b->th.rate > 0 && b->th.rate < b->min_rate))
			b->min_rate = b->th.rate;
		b->ever_slowed = true;
	}
	if (len >= sizeof b->last)
		len = sizeof b->last - 1;
	for (size_t i = 0; i < len; i++) /* keep it printable on one line */
		b->last[i] = text[i] == '\n' || text[i] == '\r' ? ' ' : text[i];
	b->last[len] = '\0';
	bool slowed = b->ever_slowed;
	pthread_mutex_unlock(&b->mu);
	pthread_mutex_lock(&g_mu);
	if (slowed && !b->listed) {
		b->listed = true;
		b->slow_next = g_slowed;
		g_slowed = b;
	}
	pthread_mutex_unlock(&g_mu);
}

/* budget_reply - slow the destination and its provider down on a throttling reply. */
void budget_reply(struct budget *b, struct budget *p, int64_t now_ms, int code,
                  const char *enhanced, const char *text, size_t len)
{
	if (!shaping_is_throttling(code, enhanced, text, len))
		return;
	slow(b, now_ms, text, len);
	if (p)
		slow(p, now_ms, text, len);
}

/* budget_tick - recovery of the slowed budgets (only those: a run with a million
 * destinations does not visit them all ten times a second). */
void budget_tick(int64_t now_ms)
{
	pthread_mutex_lock(&g_mu);
	for (struct budget *b = g_slowed; b; b = b->slow_next) {
		pthread_mutex_lock(&b->mu);
		if (throttle_tick(&b->th, now_ms)) {
			atomic_store_explicit(&b->conn_limit, b->th.conn, memory_order_relaxed);
			atomic_store_explicit(&b->rate, b->th.rate, memory_order_relaxed);
		}
		pthread_mutex_unlock(&b->mu);
	}
	pthread_mutex_unlock(&g_mu);
}

/* report_one - the summary line of one slowed budget. */
static void report_one(FILE *f, struct budget *b)
{
	char lim[64], now[64];
	pthread_mutex_lock(&b->mu);
	snprintf(lim, sizeof lim, "%s%u", b->lim.connections ? "" : "unlimited->", b->min_conn);
	if (b->min_rate > 0)
		snprintf(now, sizeof now, ", rate down to %.2f/s", b->min_rate);
	else
		now[0] = '\0';
	fprintf(f, "volley: slowed down: %s %s: %u throttling replies, connections down to %s%s%s; "
	        "last: %s\n", b->provider ? "provider" : "destination", b->key, b->th.events, lim, now,
	        throttle_slowed(&b->th) ? "" : " (recovered)", b->last);
	pthread_mutex_unlock(&b->mu);
}

/* budget_report - the slowed budgets. */
unsigned budget_report(FILE *f)
{
	unsigned n = 0;
	pthread_mutex_lock(&g_mu);
	for (struct budget *b = g_slowed; b; b = b->slow_next, n++)
		report_one(f, b);
	pthread_mutex_unlock(&g_mu);
	return n;
}

/* destroy - free one. */
static void destroy(struct budget *b)
{
	pthread_mutex_destroy(&b->mu);
	free(b->key);
	free(b);
}

/* budget_free - everything. */
void budget_free(void)
{
	for (unsigned i = 0; i < g_nprov; i++)
		if (g_prov[i])
			destroy(g_prov[i]);
	free(g_prov);
	g_prov = NULL;
	g_nprov = 0;
	for (unsigned h = 0; h < BUCKETS; h++) {
		for (struct budget *b = g_dest[h], *n; b; b = n) {
			n = b->next;
			destroy(b);
		}
		g_dest[h] = NULL;
	}
	g_ndest = 0;
	g_slowed = NULL;
}
