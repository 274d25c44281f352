/* resolver.c - DNS on the thread's ring: UDP with retransmission and server rotation,
 * TCP when truncated, answers shared through dnscache. The packets are dns.c's. */
#include "resolver.h"
#include "dnscache.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum { SUB_CONNECT, SUB_SEND, SUB_RECV, SUB_CANCEL };
#define WAKE_IDX 0xffffu /* above any slot*4+sub, with generation 0 */

/* ud - user_data for an index (slot*4+sub, tagged with the slot's generation). */
static uint64_t ud(const struct resolver *r, unsigned idx)
{
	return ((uint64_t)idx << 8) | r->op;
}

/* qud - user_data for sub-operation sub of slot i's current socket. */
static uint64_t qud(const struct resolver *r, unsigned i, unsigned sub)
{
	return ud(r, (unsigned)r->q[i].gen << 16 | (i * 4 + sub));
}

/* submit_op - note that sub-operation sub is in flight and tag the SQE. */
static void tag(struct resolver *r, struct io_uring_sqe *sqe, unsigned i, unsigned sub)
{
	io_uring_sqe_set_data64(sqe, qud(r, i, sub));
	r->q[i].pend |= (uint8_t)(1u << sub);
}

/* arm_wake - keep a read on the eventfd in flight. */
static void arm_wake(struct resolver *r)
{
	struct io_uring_sqe *sqe = ring_sqe(r->ring);
	io_uring_prep_read(sqe, r->efd, &r->efd_val, sizeof r->efd_val, 0);
	io_uring_sqe_set_data64(sqe, ud(r, WAKE_IDX));
}

/* resolver_init - bind to the ring and the shared cache. */
int resolver_init(struct resolver *r, struct ring *ring, unsigned tid,
                  const struct dns_servers *servers, uint8_t op,
                  void (*done)(void *, struct lookup *, const struct dns_answer *), void *ctx)
{
	memset(r, 0, offsetof(struct resolver, scratch));
	r->ring = ring;
	r->tid = tid;
	r->servers = servers;
	r->op = op;
	r->done = done;
	r->ctx = ctx;
	r->next_server = tid % (servers->n ? servers->n : 1);
	for (unsigned i = 0; i < RESOLVER_SLOTS; i++)
		r->q[i].fd = -1;
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd < 0)
		return -1;
	dnscache_set_wake(tid, r->efd);
	arm_wake(r);
	return 0;
}

/* push_queued - queue lk for a free slot. Address lookups go first: they are
 * what stands between a known destination and its first connection, while MX
 * lookups of new domains can wait behind them. */
static void push_queued(struct resolver *r, struct lookup *lk)
{
	lk->next = NULL;
	lk->state = LK_QUEUED;
	if (lk->type != DNS_MX && r->queued) {
		lk->next = r->queued;
		r->queued = lk;
		return;
	}
	if (r->queued_tail)
		r->queued_tail->next = lk;
	else
		r->queued = lk;
	r->queued_tail = lk;
}

/* free_slot - an unused query slot, or -1. */
static int free_slot(const struct resolver *r)
{
	for (unsigned i = 0; i < RESOLVER_SLOTS; i++)
		if (!r->q[i].lk)
			return (int)i;
	return -1;
}

/* open_socket - a fresh socket (fresh random source port) to the query's server. */
static int open_socket(struct resolver *r, struct dnsq *q)
{
	const struct dns_servers *sv = r->servers;
	int type = q->tcp ? SOCK_STREAM : SOCK_DGRAM;
	q->fd = socket(sv->addr[q->server].ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (q->fd < 0)
		return -1;
	if (!q->tcp && connect(q->fd, (const struct sockaddr *)&sv->addr[q->server],
	                       sv->len[q->server]) < 0) {
		close(q->fd);
		q->fd = -1;
		return -1;
	}
	return 0;
}

/* send_attempt - build the query with a new random ID and put it on the wire. */
static int send_attempt(struct resolver *r, unsigned i, int64_t now)
{
	struct dnsq *q = &r->q[i];
	q->id = (uint16_t)arc4random_uniform(65536);
	q->qlen = dns_query(q->id, q->lk->name, q->lk->type, q->q + 2, sizeof q->q - 2);
	if (q->qlen == 0 || open_socket(r, q) < 0)
		return -1;
	dns_tcp_frame(q->qlen, q->q);
	q->got = 0;
	q->deadline = now + RESOLVER_TIMEOUT_MS;
	r->queries++;
	if (q->tcp) {
		struct io_uring_sqe *sqe = ring_sqe(r->ring);
		io_uring_prep_connect(sqe, q->fd, (const struct sockaddr *)&r->servers->addr[q->server],
		                      r->servers->len[q->server]);
		tag(r, sqe, i, SUB_CONNECT);
		return 0;
	}
	q->buf = q->ubuf[q->gen & 1];
	q->cap = sizeof q->ubuf[0];
	struct io_uring_sqe *sqe = ring_sqe(r->ring);
	io_uring_prep_send(sqe, q->fd, q->q + 2, q->qlen, 0);
	tag(r, sqe, i, SUB_SEND);
	sqe = ring_sqe(r->ring);
	io_uring_prep_recv(sqe, q->fd, q->buf, q->cap, 0);
	tag(r, sqe, i, SUB_RECV);
	return 0;
}

/* drop_socket - cancel the socket's operations by user_data (not by fd: the
 * number may be reused at once), close it, and move to a new generation. */
static void drop_socket(struct resolver *r, unsigned i)
{
	struct dnsq *q = &r->q[i];
	for (unsigned sub = 0; sub < SUB_CANCEL; sub++) {
		if (!(q->pend & (1u << sub)))
			continue;
		struct io_uring_sqe *sqe = ring_sqe(r->ring);
		io_uring_prep_cancel64(sqe, qud(r, i, sub), 0);
		io_uring_sqe_set_data64(sqe, qud(r, i, SUB_CANCEL));
	}
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	q->pend = 0;
	q->gen++;
}

static void start(struct resolver *r, struct lookup *lk, int64_t now);

/* finish - the query's answer (or failure) is final: cache it, free the slot, tell the owner. */
static void finish(struct resolver *r, unsigned i, const struct dns_answer *a, int64_t now)
{
	struct dnsq *q = &r->q[i];
	struct lookup *lk = q->lk;
	dnscache_put(lk->name, lk->type, a, now);
	q->lk = NULL;
	if (lk->type == DNS_MX)
		r->mx_wire--;
	drop_socket(r, i);
	if (q->tcp) {
		free(q->buf);
		q->buf = NULL;
		q->tcp = false;
	}
	lk->state = LK_DONE;
	r->done(r->ctx, lk, a);
	while (r->queued && free_slot(r) >= 0 &&
	       (r->queued->type != DNS_MX || r->mx_wire < RESOLVER_MX_SLOTS)) {
		struct lookup *n = r->queued;
		r->queued = n->next;
		if (!r->queued)
			r->queued_tail = NULL;
		start(r, n, now);
	}
}

/* fail_query - give up: a temporary failure with a reason. */
static void fail_query(struct resolver *r, unsigned i, const char *why, int64_t now)
{
	struct dns_answer *a = &r->scratch;
	memset(a, 0, offsetof(struct dns_answer, mx));
	a->nmx = a->naddr = 0;
	a->null_mx = false;
	a->status = DNS_SERVFAIL;
	a->why = why;
	a->canon[0] = '\0';
	finish(r, i, a, now);
}

/* start - put lk on the wire, or queue it when every slot is busy. */
static void start(struct resolver *r, struct lookup *lk, int64_t now)
{
	int i = free_slot(r);
	if (i < 0 || (lk->type == DNS_MX && r->mx_wire >= RESOLVER_MX_SLOTS)) {
		push_queued(r, lk);
		return;
	}
	struct dnsq *q = &r->q[i];
	q->lk = lk;
	if (lk->type == DNS_MX)
		r->mx_wire++;
	q->tcp = false;
	q->tries = 0;
	q->refused = false;
	q->server = r->next_server++ % (r->servers->n ? r->servers->n : 1);
	lk->state = LK_WIRE;
	if (r->servers->n == 0 || send_attempt(r, (unsigned)i, now) < 0)
		fail_query(r, (unsigned)i, r->servers->n ? "cannot send DNS query" :
		           "no DNS server configured", now);
}

/* resolver_lookup - cache first, then the wire. */
void resolver_lookup(struct resolver *r, struct lookup *lk, int64_t now)
{
	switch (dnscache_get(lk->name, lk->type, r->tid, now, &r->scratch, lk)) {
	case DC_HIT:
		lk->state = LK_DONE;
		r->done(r->ctx, lk, &r->scratch);
		break;
	case DC_WAIT:
		lk->state = LK_WAITING;
		r->nwaiting++;
		break;
	case DC_QUERY:
		start(r, lk, now);
		break;
	}
}

/* to_tcp - the UDP answer was truncated: ask the same server over TCP. */
static void to_tcp(struct resolver *r, unsigned i, int64_t now)
{
	struct dnsq *q = &r->q[i];
	uint8_t *big = malloc(DNS_MAX_PACKET + 2);
	drop_socket(r, i);
	if (!big) {
		fail_query(r, i, "out of memory for a TCP answer", now);
		return;
	}
	q->tcp = true;
	q->buf = big;
	q->cap = DNS_MAX_PACKET + 2;
	r->tcp_queries++;
	if (send_attempt(r, i, now) < 0)
		fail_query(r, i, "cannot open a TCP connection to the DNS server", now);
}

/* on_answer - bytes of an answer arrived. */
static void on_answer(struct resolver *r, unsigned i, int res, int64_t now)
{
	struct dnsq *q = &r->q[i];
	if (res < 0) {
		q->deadline = now; /* e.g. ECONNREFUSED: retry at the next tick, next server */
		q->refused = true;
		return;
	}
	if (res == 0) {
		if (q->tcp)
			q->deadline = now;
		return;
	}
	const uint8_t *p = q->buf;
	size_t len = (size_t)res;
	if (q->tcp) {
		q->got += (size_t)res;
		size_t want = q->got >= 2 ? 2u + (size_t)(q->buf[0] << 8 | q->buf[1]) : 0;
		if (q->got < 2 || q->got < want) {
			struct io_uring_sqe *sqe = ring_sqe(r->ring);
			io_uring_prep_recv(sqe, q->fd, q->buf + q->got, q->cap - q->got, 0);
			tag(r, sqe, i, SUB_RECV);
			return;
		}
		p = q->buf + 2;
		len = want - 2;
	}
	enum dns_status st = dns_parse(p, len, q->id, q->lk->name, q->lk->type, &r->scratch);
	if (st == DNS_BAD) {
		if (!q->tcp) { /* not ours (spoofed, late): keep listening until the deadline */
			struct io_uring_sqe *sqe = ring_sqe(r->ring);
			io_uring_prep_recv(sqe, q->fd, q->buf, q->cap, 0);
			tag(r, sqe, i, SUB_RECV);
		}
		return;
	}
	if (st == DNS_TRUNCATED && !q->tcp) {
		to_tcp(r, i, now);
		return;
	}
	finish(r, i, &r->scratch, now);
}

/* on_wake - answers this thread waited for arrived: finish those lookups (from the cache). */
static void on_wake(struct resolver *r, int64_t now)
{
	void *ready[64];
	unsigned n;
	while ((n = dnscache_ready(r->tid, ready, 64)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			r->nwaiting--;
			resolver_lookup(r, ready[i], now);
		}
	}
	arm_wake(r);
}

/* resolver_cqe - dispatch one of our completions. */
void resolver_cqe(struct resolver *r, unsigned idx, int res, int64_t now)
{
	if (idx == WAKE_IDX) {
		on_wake(r, now);
		return;
	}
	unsigned gen = idx >> 16, i = (idx & 0xffff) / 4, sub = idx % 4;
	if (i >= RESOLVER_SLOTS || sub == SUB_CANCEL)
		return;
	struct dnsq *q = &r->q[i];
	if (gen != q->gen || !q->lk)
		return; /* a completion of a socket already dropped */
	q->pend &= (uint8_t)~(1u << sub);
	if (sub == SUB_CONNECT && res >= 0) {
		struct io_uring_sqe *sqe = ring_sqe(r->ring);
		io_uring_prep_send(sqe, q->fd, q->q, q->qlen + 2, MSG_NOSIGNAL);
		tag(r, sqe, i, SUB_SEND);
		sqe = ring_sqe(r->ring);
		io_uring_prep_recv(sqe, q->fd, q->buf, q->cap, 0);
		tag(r, sqe, i, SUB_RECV);
	} else if (sub == SUB_RECV) {
		on_answer(r, i, res, now);
	}
}

/* resolver_tick - retransmit (next server, new ID, new port) or give up. */
void resolver_tick(struct resolver *r, int64_t now)
{
	for (unsigned i = 0; i < RESOLVER_SLOTS; i++) {
		struct dnsq *q = &r->q[i];
		if (!q->lk || q->deadline > now)
			continue;
		if (++q->tries >= RESOLVER_TRIES) {
			r->timeouts++;
			fail_query(r, i, q->refused ? "no DNS server answered (port unreachable or "
			           "connection refused)" : "DNS timeout: no answer", now);
			continue;
		}
		drop_socket(r, i);
		if (q->tcp) {
			free(q->buf);
			q->buf = NULL;
			q->tcp = false;
		}
		q->server = (q->server + 1) % r->servers->n;
		if (send_attempt(r, i, now) < 0)
			fail_query(r, i, "cannot send DNS query", now);
	}
}

/* resolver_busy - anything outstanding. */
bool resolver_busy(const struct resolver *r)
{
	if (r->queued || r->nwaiting)
		return true;
	for (unsigned i = 0; i < RESOLVER_SLOTS; i++)
		if (r->q[i].lk)
			return true;
	return false;
}

/* resolver_abandon - the thread is ending: the queries it asked on the wire or has
 * queued will not be answered, so other threads waiting for them must ask themselves. */
void resolver_abandon(struct resolver *r)
{
	if (!r->ring)
		return;
	for (unsigned i = 0; i < RESOLVER_SLOTS; i++)
		if (r->q[i].lk)
			dnscache_abandon(r->q[i].lk->name, r->q[i].lk->type);
	for (const struct lookup *lk = r->queued; lk; lk = lk->next)
		dnscache_abandon(lk->name, lk->type);
}

/* resolver_free - release sockets and buffers (no-op for a resolver never set up). */
void resolver_free(struct resolver *r)
{
	if (!r->ring)
		return;
	for (unsigned i = 0; i < RESOLVER_SLOTS; i++) {
		if (r->q[i].fd >= 0)
			close(r->q[i].fd);
		if (r->q[i].tcp)
			free(r->q[i].buf);
	}
	/* r->efd stays open until every thread has ended (engine_run): another thread may
	 * still be writing to it, and a recycled number could be a socket. */
}
