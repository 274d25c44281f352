/* dnscache.c - shared DNS cache and shared destination counters (one mutex, never on the per-message path).
 *
 * Threads look a (name, type) up once per destination or domain, not per
 * message, and keep what they learn in their own tables; the lock is taken
 * only then. An entry is PENDING while its owner's query is in flight: other
 * threads asking for it register as waiters and are woken through their
 * eventfd when the answer is stored, so a name is asked once per TTL whatever
 * the number of threads. */
#include "dnscache.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define NBUCKETS 65536u
#define MAX_THREADS 256u

/* A thread waiting for a pending entry, and what it waits with. */
struct waiter {
	struct waiter *next;
	unsigned tid;
	void *ptr;
};

struct centry {
	struct centry *next;
	char *name;
	enum dns_type type;
	bool pending;                  /* a query is in flight */
	int64_t expires;               /* ms */
	struct waiter *waiters;        /* threads waiting for the pending answer */
	enum dns_status status;
	uint32_t ttl;
	bool null_mx;
	unsigned nmx, naddr;
	struct dns_mx *mx;
	struct dns_addr *addr;
	char *canon;
	const char *why;               /* static reason of a failure, or NULL */
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct centry *g_tab[NBUCKETS];
static unsigned g_entries;
static uint64_t g_queries;
static int g_wake[MAX_THREADS];
static struct waiter *g_ready[MAX_THREADS]; /* per thread: waiters whose answer arrived */
static unsigned g_threads;

/* hash - FNV-1a over the lower-cased name and the type. */
static uint32_t hash(const char *s, unsigned type)
{
	uint32_t h = 2166136261u ^ type;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32 : c)) * 16777619u;
	}
	return h;
}

/* dnscache_init - remember the number of threads. */
int dnscache_init(unsigned nthreads)
{
	g_threads = nthreads > MAX_THREADS ? MAX_THREADS : nthreads;
	for (unsigned i = 0; i < MAX_THREADS; i++)
		g_wake[i] = -1;
	return 0;
}

/* dnscache_set_wake - thread tid's eventfd. */
void dnscache_set_wake(unsigned tid, int efd)
{
	if (tid < MAX_THREADS)
		g_wake[tid] = efd;
}

/* find - the entry for (name, type), or NULL (lock held). */
static struct centry *find(const char *name, enum dns_type type, uint32_t h)
{
	for (struct centry *e = g_tab[h % NBUCKETS]; e; e = e->next)
		if (e->type == type && strcasecmp(e->name, name) == 0)
			return e;
	return NULL;
}

/* copy_out - fill a dns_answer from an entry (lock held). */
static void copy_out(const struct centry *e, struct dns_answer *out)
{
	out->status = e->status;
	out->ttl = e->ttl;
	out->null_mx = e->null_mx;
	out->nmx = e->nmx;
	out->naddr = e->naddr;
	if (e->nmx)
		memcpy(out->mx, e->mx, e->nmx * sizeof *e->mx);
	if (e->naddr)
		memcpy(out->addr, e->addr, e->naddr * sizeof *e->addr);
	strcpy(out->canon, e->canon ? e->canon : "");
	out->why = e->why;
}

/* dnscache_get - hit, query, or wait. */
enum dnscache_rc dnscache_get(const char *name, enum dns_type type, unsigned tid, int64_t now_ms,
                              struct dns_answer *out, void *waiter)
{
	uint32_t h = hash(name, type);
	enum dnscache_rc rc = DC_QUERY;
	pthread_mutex_lock(&g_mu);
	struct centry *e = find(name, type, h);
	struct waiter *wt;
	if (e && e->pending && tid < MAX_THREADS && (wt = malloc(sizeof *wt)) != NULL) {
		wt->tid = tid;
		wt->ptr = waiter;
		wt->next = e->waiters;
		e->waiters = wt;
		rc = DC_WAIT;
	} else if (e && e->pending) {
		rc = DC_QUERY; /* cannot wait (out of memory): ask ourselves */
	} else if (e && e->expires > now_ms) {
		copy_out(e, out);
		rc = DC_HIT;
	} else if (e) {
		e->pending = true;
	} else if (g_entries < DNSCACHE_MAX_ENTRIES) {
		e = calloc(1, sizeof *e);
		if (e && (e->name = strdup(name)) != NULL) {
			e->type = type;
			e->pending = true;
			e->next = g_tab[h % NBUCKETS];
			g_tab[h % NBUCKETS] = e;
			g_entries++;
		} else {
			free(e);
		}
	}
	if (rc == DC_QUERY)
		g_queries++;
	pthread_mutex_unlock(&g_mu);
	return rc;
}

/* store - replace an entry's answer with a compact copy of a (lock held). */
static void store(struct centry *e, const struct dns_answer *a, int64_t now_ms)
{
	free(e->mx);
	free(e->addr);
	free(e->canon);
	e->mx = NULL;
	e->addr = NULL;
	e->status = a->status;
	e->null_mx = a->null_mx;
	e->nmx = 0;
	e->naddr = 0;
	e->canon = strdup(a->canon);
	e->why = a->why; /* always a static string (dns.c, resolver.c) */
	if (a->nmx && (e->mx = malloc(a->nmx * sizeof *e->mx)) != NULL) {
		memcpy(e->mx, a->mx, a->nmx * sizeof *e->mx);
		e->nmx = a->nmx;
	}
	if (a->naddr && (e->addr = malloc(a->naddr * sizeof *e->addr)) != NULL) {
		memcpy(e->addr, a->addr, a->naddr * sizeof *e->addr);
		e->naddr = a->naddr;
	}
	bool fail = a->status == DNS_SERVFAIL || a->status == DNS_BAD || a->status == DNS_TRUNCATED;
	e->ttl = fail ? DNSCACHE_FAIL_TTL : a->ttl;
	e->expires = now_ms + (int64_t)e->ttl * 1000;
}

/* hand_over - the entry is no longer pending: move its waiters to their threads'
 * ready lists and mark those threads in wake (lock held). */
static void hand_over(struct centry *e, uint64_t *wake)
{
	e->pending = false;
	for (struct waiter *wt = e->waiters, *n; wt; wt = n) {
		n = wt->next;
		wt->next = g_ready[wt->tid];
		g_ready[wt->tid] = wt;
		wake[wt->tid / 64] |= 1ull << (wt->tid % 64);
	}
	e->waiters = NULL;
}

/* wake_marked - write the eventfd of every thread marked in wake (lock not held). */
static void wake_marked(const uint64_t *wake)
{
	for (unsigned t = 0; t < g_threads; t++) {
		uint64_t one = 1;
		if ((wake[t / 64] >> (t % 64) & 1) && g_wake[t] >= 0 &&
		    write(g_wake[t], &one, sizeof one) < 0) {
			/* eventfd cannot be full at 2^64-2; nothing to do */
		}
	}
}

/* dnscache_put - store, hand each waiter to its thread, and wake those threads. */
void dnscache_put(const char *name, enum dns_type type, const struct dns_answer *a, int64_t now_ms)
{
	uint64_t wake[MAX_THREADS / 64] = {0};
	pthread_mutex_lock(&g_mu);
	struct centry *e = find(name, type, hash(name, type));
	if (e) {
		store(e, a, now_ms);
		hand_over(e, wake);
	}
	pthread_mutex_unlock(&g_mu);
	wake_marked(wake);
}

/* dnscache_abandon - the pending query will not be answered: its waiters ask themselves
 * (the entry keeps its old, expired answer, so the first to ask becomes the owner). */
void dnscache_abandon(const char *name, enum dns_type type)
{
	uint64_t wake[MAX_THREADS / 64] = {0};
	pthread_mutex_lock(&g_mu);
	struct centry *e = find(name, type, hash(name, type));
	if (e && e->pending)
		hand_over(e, wake);
	pthread_mutex_unlock(&g_mu);
	wake_marked(wake);
}

/* dnscache_ready - detach up to max of thread tid's ready waiters. */
unsigned dnscache_ready(unsigned tid, void **out, unsigned max)
{
	unsigned n = 0;
	if (tid >= MAX_THREADS)
		return 0;
	pthread_mutex_lock(&g_mu);
	while (n < max && g_ready[tid]) {
		struct waiter *wt = g_ready[tid];
		g_ready[tid] = wt->next;
		out[n++] = wt->ptr;
		free(wt);
	}
	pthread_mutex_unlock(&g_mu);
	return n;
}

/* dnscache_wake_others - poke every other thread's eventfd. */
void dnscache_wake_others(unsigned tid)
{
	uint64_t one = 1;
	for (unsigned t = 0; t < g_threads; t++)
		if (t != tid && g_wake[t] >= 0 && write(g_wake[t], &one, sizeof one) < 0) {
			/* cannot fill an eventfd counter: nothing to do */
		}
}

/* dnscache_queries - queries started so far. */
uint64_t dnscache_queries(void)
{
	pthread_mutex_lock(&g_mu);
	uint64_t n = g_queries;
	pthread_mutex_unlock(&g_mu);
	return n;
}

/* dnscache_free - release all entries and slots. */
void dnscache_free(void)
{
	pthread_mutex_lock(&g_mu);
	for (unsigned b = 0; b < NBUCKETS; b++) {
		for (struct centry *e = g_tab[b], *n; e; e = n) {
			n = e->next;
			for (struct waiter *wt = e->waiters, *wn; wt; wt = wn) {
				wn = wt->next;
				free(wt);
			}
			free(e->name);
			free(e->mx);
			free(e->addr);
			free(e->canon);
			free(e);
		}
		g_tab[b] = NULL;
	}
	for (unsigned t = 0; t < MAX_THREADS; t++) {
		for (struct waiter *wt = g_ready[t], *wn; wt; wt = wn) {
			wn = wt->next;
			free(wt);
		}
		g_ready[t] = NULL;
	}
	g_entries = 0;
	pthread_mutex_unlock(&g_mu);
}
