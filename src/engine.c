/* engine.c - the sending engine: per-thread ring, sessions, and the event loop.
 *
 * Each worker thread owns one io_uring ring, a slice of the job mapping, its
 * sessions and its results buffers; threads share nothing writable but their
 * stats counters, so the per-message path takes no lock. Every operation's
 * user_data names the session and the operation; completions are processed in
 * one loop, all SQEs prepared while handling a batch are submitted together
 * when the loop goes back to wait. Sessions hold at most one receive and one
 * send in flight (two sends on one socket could reorder bytes). */
#include "engine.h"
#include "budget.h"
#include "clock.h"
#include "dnscache.h"
#include "jobguard.h"
#include "worker.h"
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_stop;

/* Test hook: VOLLEY_FAULT_RING=T:N makes engine thread T's Nth wait fail as if its
 * ring broke (an io_uring_enter error), to test that every recipient still gets
 * its line. Read once per run; off when unset. */
static struct { unsigned tid; uint64_t enter; } g_fault;

/* fault_hook - parse VOLLEY_FAULT_RING. */
static void fault_hook(void)
{
	const char *v = getenv("VOLLEY_FAULT_RING");
	unsigned t;
	unsigned long long n;
	g_fault.enter = 0;
	if (v && sscanf(v, "%u:%llu", &t, &n) == 2) {
		g_fault.tid = t;
		g_fault.enter = n;
	}
}

#define TICK_MS        100          /* timer period: deadlines and stop checks */
#define DONTNEED_STEP  (8u << 20)   /* drop consumed job pages from RSS every 8 MiB */
#define FEED_BATCH     4096u        /* recipients routed per feeding */
#define TLS_RECORD_MAX 16384u       /* plaintext gathered into one TLS record */
#define RETRY_PAUSE_MS 1000         /* after a failed connection, before the next to that destination */

/* ---- results ---- */

/* emit - format one result line into the thread's buffer. */
static void emit(struct worker *w, const struct result *r)
{
	char *dst = resfile_space(&w->rf, RESULT_MAX_LINE);
	resfile_commit(&w->rf, result_format(dst, RESULT_MAX_LINE, r), w->now);
	_Atomic uint64_t *c = r->status == RS_DELIVERED ? &w->st->delivered :
	                      r->status == RS_BOUNCED ? &w->st->bounced :
	                      r->status == RS_DEFERRED ? &w->st->deferred : &w->st->failed;
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
	if (r->attempts == 0)
		atomic_fetch_add_explicit(&w->st->untried, 1, memory_order_relaxed);
}

/* stopping - a stop was requested. */
static bool stopping(void)
{
	return atomic_load_explicit(&g_stop, memory_order_relaxed) != 0;
}

/* defer - a temporary failure of an attempt: keep the recipient for another
 * attempt after an exponential backoff with jitter, unless retries are off, the
 * run is stopping, the recipient's retry time is used up or the table is full.
 * Returns true when the recipient will be retried (no result now). */
static bool defer(struct worker *w, const struct rcpt *rc, int code, const char *enh,
                  const char *text, size_t len, const struct dest *d, int ai)
{
	const struct engine_config *c = w->cfg;
	if (c->max_retry <= 0 || stopping() || w->rc != 0) /* w->rc: the thread is failing */
		return false;
	uint32_t id = rc->retry;
	if (!id && !(id = retry_new(&w->rt, rc, w->now))) {
		atomic_fetch_add_explicit(&w->st->retry_full, 1, memory_order_relaxed);
		return false;
	}
	struct retry_entry *e = retry_get(&w->rt, id);
	int64_t end = e->first_ms + c->max_retry;
	if (w->now >= end)
		return false;
	e->attempts++;
	retry_note(e, code, enh, text, len, d, ai, d ? d->addr_gen : 0);
	int64_t due = w->now + retry_backoff(c->retry_initial, e->attempts, arc4random());
	retry_wait(&w->rt, id, due < end ? due : end);
	atomic_fetch_add_explicit(&w->st->retries, 1, memory_order_relaxed);
	return true;
}

/* emit_at - the outcome of one attempt for a recipient, made at address ai of d (or
 * nowhere). Temporary failures go to defer(); the final result is written here.
 * tried is false when the run stopped before the recipient was attempted again: its
 * result then carries the last real outcome. */
static void emit_at(struct worker *w, const struct rcpt *rc, enum result_status st, int code,
                    const char *enh, const char *text, size_t len, int64_t t0,
                    const struct dest *d, int ai, const char *tls, bool tried)
{
	if (st == RS_DEFERRED && tried && defer(w, rc, code, enh, text, len, d, ai))
		return;
	struct retry_entry *e = rc->retry ? retry_get(&w->rt, rc->retry) : NULL;
	if (e && !tried && st == RS_DEFERRED) {
		code = e->code;
		enh = e->enh[0] ? e->enh : NULL;
		text = e->text;
		len = e->text_len;
		d = e->dest;
		ai = d && d->addr_gen == e->gen ? e->ai : -1; /* re-resolved since: not that server */
		t0 = -1;
	}
	char addr[ADDR_MAX_MAILBOX + 1];
	const struct daddr *a = d && ai >= 0 && (unsigned)ai < d->naddr ? &d->addr[ai] : NULL;
	const char *mx = NULL;
	if (a)
		mx = d == w->relay ? w->cfg->relay_host : d->host[a->host].name;
	struct result r = {
		.rcpt = addr, .rcpt_len = rcpt_addr(rc, addr), .line = rc->line, .status = st,
		.code = code, .enhanced = enh, .reply = text, .reply_len = len,
		.server = a ? a->server : NULL, .mx = mx, .ip = a ? a->ip : NULL,
		.attempts = (e ? e->attempts : 0u) + (tried ? 1u : 0u), .ms = t0 > 0 ? w->now - t0 : -1,
		.tls = tls && tls[0] ? tls : NULL,
	};
	emit(w, &r);
	if (e)
		retry_release(&w->rt, rc->retry);
	atomic_fetch_sub_explicit(&w->st->inflight, 1, memory_order_relaxed);
}

/* emit_rcpt - result for a recipient of session s's transaction. */
void emit_rcpt(struct worker *w, const struct rcpt *rc, enum result_status st, int code,
               const char *enh, const char *text, size_t len, int64_t t0,
               const struct session *s)
{
	emit_at(w, rc, st, code, enh, text, len, t0, s ? s->dest : NULL, s ? (int)s->ai : -1,
	        s ? s->tls_desc : NULL, true);
}

/* emit_fail - result from a routing failure (DNS, or every address of d failed). */
void emit_fail(struct worker *w, const struct rcpt *rc, const struct route_fail *f,
               const struct dest *d)
{
	emit_at(w, rc, f->status, f->code, f->enhanced[0] ? f->enhanced : NULL, f->reason,
	        strlen(f->reason), f->t0 > 0 ? f->t0 : -1, d, f->ai, NULL, !f->untried);
}

/* bad_result - the result of a job line that failed to parse: its raw text, failed. */
static struct result bad_result(const struct rcpt *rc, const char *why)
{
	return (struct result){
		.rcpt = rc->raw, .rcpt_len = rc->raw_len, .line = rc->line, .status = RS_FAILED,
		.reply = why, .reply_len = strlen(why), .attempts = 0, .ms = -1,
	};
}

/* emit_bad - result for a job line that failed to parse. */
static void emit_bad(struct worker *w, const struct rcpt *rc, const char *why)
{
	struct result r = bad_result(rc, why);
	emit(w, &r);
}

/* ---- the recipient source ---- */

/* drop_consumed - let the kernel drop job pages we have read past from our RSS. */
static void drop_consumed(struct worker *w)
{
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)w->dontneed_from + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1);
	uintptr_t b = (uintptr_t)w->cur.p & ~(uintptr_t)(pg - 1);
	if (b > a + DONTNEED_STEP) {
		madvise((void *)a, b - a, MADV_DONTNEED);
		w->dontneed_from = (const char *)b;
	}
}

/* take - next good recipient of the slice; bad lines get their result here. */
bool take(struct worker *w, struct rcpt *out)
{
	if ((uintptr_t)(w->cur.p - w->dontneed_from) > DONTNEED_STEP)
		drop_consumed(w);
	while (!w->exhausted) {
		const char *why = NULL;
		int rc = job_next(w->cfg->job, &w->cur, out, &why);
		if (rc != 0 && w->cfg->resume && resume_final(w->cfg->resume, out->line))
			continue; /* --resume: it has its final result from an earlier run */
		if (rc > 0) {
			atomic_fetch_add_explicit(&w->st->inflight, 1, memory_order_relaxed);
			return true;
		}
		if (rc == 0) {
			w->exhausted = true;
			break;
		}
		if (out->rec && memchr(out->rec, '\0', out->rec_len))
			jobguard_check(); /* zeros past a truncation: it stops the run there */
		emit_bad(w, out, why ? why : "bad line");
	}
	return false;
}

/* work_left - whether there are recipients still to read from the slice. */
bool work_left(const struct worker *w)
{
	return !w->exhausted && !stopping();
}

/* ---- smtp callbacks ---- */

/* cb_next_txn - fill a transaction from the destination's queue, within max and budget. */
static unsigned cb_next_txn(void *ctx, struct rcpt *out, unsigned max, size_t budget)
{
	struct session *s = ctx;
	struct worker *w = s->w;
	struct dest *d = s->dest;
	unsigned n = 0;
	size_t used = 0;
	if (stopping() || !d)
		return 0;
	if (d->q.n == 0 && work_left(w))
		route_feed(w, FEED_BATCH);
	if (dest_waiting(d) == 0 || budget_over(d->own, d->prov))
		return 0; /* nothing to do, or slowed down below the sessions open: finish */
	int64_t wake;
	if (!budget_message(d->own, d->prov, w->now, &wake)) {
		/* The rate says wait: stay connected and idle, unless the wait is long (then
		 * QUIT rather than sit on the server's connection). */
		if (wake - w->now < w->cfg->to.command / 2)
			s->hold_until = wake > w->now ? wake : w->now + 1;
		else if (d->retry_at < wake)
			d->retry_at = wake; /* and no new session before then either */
		return 0;
	}
	/* Take a recipient only while the longest possible RCPT still fits. */
	while (n < max && used + 12u + ADDR_MAX_MAILBOX <= budget && dest_pop(&w->pool, d, &out[n])) {
		if (out[n].raw_len && out[n].raw[out[n].raw_len - 1] == '\0')
			jobguard_check(); /* zeros to the end of the page where its line was: the file
			                   * was cut under us (a real address never ends in NUL) */
		used += smtp_rcpt_cost(&out[n]);
		n++;
	}
	s->taken += n;
	return n;
}

/* cb_result - a recipient's outcome from the protocol machine. */
static void cb_result(void *ctx, const struct rcpt *r, enum result_status st, int code,
                      const char *enh, const char *text, size_t len, int64_t t0)
{
	struct session *s = ctx;
	if (st == RS_DELIVERED && s->dest)
		s->dest->n421 = 0;
	/* A reply that throttles one recipient or transaction; a session-ending one (421) is
	 * counted once, when the session ends (session_pushback). */
	if (st == RS_DEFERRED && s->dest && s->smtp.fail_code == 0)
		budget_reply(s->dest->own, s->dest->prov, s->w->now, code, enh, text, len);
	emit_rcpt(s->w, r, st, code, enh, text, len, t0, s);
}

/* cb_now - the loop's cached clock. */
static int64_t cb_now(void *ctx)
{
	struct session *s = ctx;
	return s->w->now;
}

static const struct smtp_ops session_ops = { cb_next_txn, cb_result, cb_now };

/* ---- session I/O ---- */

static void session_close(struct session *s);
static void session_connect(struct session *s);
static void session_fail(struct session *s, const char *fmt, const char *detail);
static void settle(struct session *s);

/* step_timeout - deadline for the reply the session waits for. */
static int64_t step_timeout(const struct session *s)
{
	const struct engine_timeouts *to = &s->w->cfg->to;
	switch (smtp_expecting(&s->smtp)) {
	case CMD_GREETING: return to->greeting;
	case CMD_DATA: return to->data;
	case CMD_DOT: case CMD_DOT_EMPTY:
		/* while the content is still going out, each block gets its own deadline */
		return s->send_armed ? to->block : to->dot;
	default: return to->command;
	}
}

/* arm_recv - keep one receive in flight. */
static void arm_recv(struct session *s)
{
	if (s->recv_armed || s->phase != PH_OPEN)
		return;
	struct io_uring_sqe *sqe = ring_sqe(&s->w->ring);
	if (s->tls)
		io_uring_prep_recv(sqe, s->fd, s->cin, TLS_CIPHER_BUF, 0);
	else
		io_uring_prep_recv(sqe, s->fd, s->rbuf + s->rlen, sizeof s->rbuf - s->rlen, 0);
	io_uring_sqe_set_data64(sqe, ud(s->idx, OP_RECV));
	s->recv_armed = true;
	s->inflight++;
}

/* tls_encrypt - move queued plaintext through TLS into cout; false on a TLS error. */
static bool tls_encrypt(struct session *s)
{
	struct smtp_out *o = &s->smtp.out;
	while (tls_handshake_done(s->tls) && o->pending > 0) {
		/* Gather the queued pieces (end of content, dot, next commands) into one
		 * record: separate records make the server answer in separate writes, and
		 * Nagle plus delayed ACKs then stall every pipelined transaction ~40 ms. */
		char stage[TLS_RECORD_MAX];
		struct iovec iov[SMTP_OUT_SEGS];
		unsigned k = smtp_out_iov(o, iov, SMTP_OUT_SEGS);
		size_t len = 0;
		for (unsigned i = 0; i < k && len < sizeof stage; i++) {
			size_t take = iov[i].iov_len < sizeof stage - len ? iov[i].iov_len : sizeof stage - len;
			memcpy(stage + len, iov[i].iov_base, take);
			len += take;
		}
		long n = tls_write(s->tls, stage, len);
		if (n < 0)
			return false;
		if (n == 0)
			break;
		smtp_out_consume(o, (size_t)n);
		if (s->coutlen < TLS_CIPHER_BUF)
			s->coutlen += tls_get_cipher(s->tls, s->cout + s->coutlen,
			                             TLS_CIPHER_BUF - s->coutlen);
	}
	if (s->coutlen < TLS_CIPHER_BUF)
		s->coutlen += tls_get_cipher(s->tls, s->cout + s->coutlen, TLS_CIPHER_BUF - s->coutlen);
	return true;
}

/* arm_send_tls - send ciphertext (handshake records or encrypted commands and content). */
static void arm_send_tls(struct session *s)
{
	if (!tls_encrypt(s)) {
		session_fail(s, "TLS: %s", tls_error(s->tls));
		return;
	}
	if (s->coutlen == 0)
		return;
	struct io_uring_sqe *sqe = ring_sqe(&s->w->ring);
	io_uring_prep_send(sqe, s->fd, s->cout, s->coutlen, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud(s->idx, OP_SEND));
	s->w->sends_queued++;
	s->send_armed = true;
	s->inflight++;
}

/* arm_send - send queued output when no send is in flight. */
static void arm_send(struct session *s)
{
	if (s->send_armed || s->phase != PH_OPEN)
		return;
	if (s->tls) {
		arm_send_tls(s);
		return;
	}
	if (s->smtp.out.pending == 0)
		return;
	memset(&s->mh, 0, sizeof s->mh);
	s->mh.msg_iov = s->iov;
	s->mh.msg_iovlen = smtp_out_iov(&s->smtp.out, s->iov, SMTP_OUT_SEGS);
	struct io_uring_sqe *sqe = ring_sqe(&s->w->ring);
	io_uring_prep_sendmsg(sqe, s->fd, &s->mh, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud(s->idx, OP_SEND));
	s->w->sends_queued++;
	s->send_armed = true;
	s->inflight++;
}

/* session_fail - local failure (I/O error, timeout): report and close. */
static void session_fail(struct session *s, const char *fmt, const char *detail)
{
	char why[256];
	snprintf(why, sizeof why, fmt, detail);
	smtp_abort(&s->smtp, RS_DEFERRED, why);
	session_close(s);
}

/* tls_host - the name the certificate must carry: the MX host, or the relay as given. */
static const char *tls_host(const struct session *s)
{
	const struct dest *d = s->dest;
	return d == s->w->relay ? s->w->cfg->relay_host : d->host[d->addr[s->ai].host].name;
}

/* tls_fail - the handshake failed: under the opportunistic policy retry this address
 * once in plaintext (RFC 7435), otherwise fail over with the reason. */
static void tls_fail(struct session *s, const char *reason)
{
	char why[320];
	snprintf(why, sizeof why, "TLS with %.80s failed: %.200s", s->dest->addr[s->ai].server,
	         reason ? reason : tls_error(s->tls));
	s->tls_broken = true;
	if (s->w->cfg->smtp.tls == TLSM_OPPORTUNISTIC && !s->w->cfg->tls_wrapper)
		s->plain_retry = true;
	smtp_abort(&s->smtp, RS_DEFERRED, why);
	session_close(s);
}

/* tls_up - the handshake finished: note the cipher; after STARTTLS, EHLO again. */
static void tls_up(struct session *s)
{
	tls_describe(s->tls, s->tls_desc, sizeof s->tls_desc);
	if (s->smtp.state == SS_TLS)
		smtp_tls_up(&s->smtp);
}

/* tls_start - begin TLS on the connection (after 220 to STARTTLS, or at once when implicit). */
static void tls_start(struct session *s)
{
	const struct engine_config *c = s->w->cfg;
	if (!s->cin)
		s->cin = malloc(TLS_CIPHER_BUF);
	if (!s->cout)
		s->cout = malloc(TLS_CIPHER_BUF);
	s->rlen = 0; /* RFC 3207 5: nothing received before TLS is kept */
	s->coutlen = 0;
	s->tls = s->cin && s->cout && c->tls ?
	         tls_conn_new(c->tls, tls_host(s), c->smtp.tls == TLSM_VERIFY ? TLS_VERIFY : TLS_NOVERIFY,
	                      s->dest->tls_session) : NULL;
	if (!s->tls) {
		session_fail(s, "TLS: %s", c->tls ? "out of memory" : "TLS is not configured");
		return;
	}
	if (tls_handshake(s->tls) == TLS_ERROR)
		tls_fail(s, NULL);
}

/* tls_in - ciphertext arrived: feed it, advance the handshake, and hand the
 * plaintext to the protocol machine. */
static void tls_in(struct session *s, size_t n)
{
	size_t off = 0;
	while (off < n || tls_handshake_done(s->tls)) {
		size_t took = off < n ? tls_put_cipher(s->tls, s->cin + off, n - off) : 0;
		off += took;
		if (!tls_handshake_done(s->tls)) {
			if (tls_handshake(s->tls) == TLS_ERROR) {
				tls_fail(s, NULL);
				return;
			}
			if (tls_handshake_done(s->tls))
				tls_up(s);
		}
		long got = 0;
		while (tls_handshake_done(s->tls) && s->smtp.state != SS_FAILED &&
		       s->rlen < sizeof s->rbuf &&
		       (got = tls_read(s->tls, s->rbuf + s->rlen, sizeof s->rbuf - s->rlen)) > 0) {
			s->rlen += (size_t)got;
			size_t used = smtp_input(&s->smtp, s->rbuf, s->rlen);
			memmove(s->rbuf, s->rbuf + used, s->rlen - used);
			s->rlen -= used;
		}
		if (got < 0 && (smtp_open_rcpts(&s->smtp) > 0 ||
		                (s->smtp.state != SS_DONE && s->smtp.state != SS_QUIT))) {
			session_fail(s, "TLS: %s", tls_error(s->tls));
			return;
		}
		if (took == 0)
			break;
	}
}

/* tls_end - drop the connection's TLS state, keeping its session for resumption. */
static void tls_end(struct session *s)
{
	if (!s->tls)
		return;
	if (!s->tls_broken && tls_handshake_done(s->tls)) {
		void *sess = tls_session_get(s->tls);
		if (sess) {
			tls_session_free(s->dest->tls_session);
			s->dest->tls_session = sess;
		}
	}
	tls_conn_free(s->tls);
	s->tls = NULL;
}

/* set_deadline - the session's deadline (0: none), armed on the timer wheel
 * together with its rate-limit hold, whichever comes first. */
static void set_deadline(struct session *s, int64_t at)
{
	int64_t t = at;
	s->deadline = at;
	if (s->hold_until && (t == 0 || s->hold_until < t))
		t = s->hold_until;
	wheel_set(&s->w->wheel, s->idx, t);
}

/* pump_ex - send what is queued, finish idle sessions; after progress (bytes moved)
 * restart the step's deadline. The timer tick pumps without progress, so that a
 * server which says nothing still runs into its deadline. */
static void pump_ex(struct session *s, bool progress)
{
	struct smtp *m = &s->smtp;
	if (s->phase != PH_OPEN)
		return;
	if (m->state == SS_TLS && !s->tls) {
		tls_start(s);
		if (s->phase != PH_OPEN)
			return;
	}
	if (!s->greeted && m->state == SS_READY) {
		s->greeted = true;
		s->dest->nopen++;
		s->dest->good = (int)s->ai;
		if (m->auth_done && !s->dest->auth_ok) {
			s->dest->auth_ok = true;
			route_want(s->w, s->dest);
		}
	}
	if (m->state == SS_READY && m->idle) {
		if (!stopping() && (dest_waiting(s->dest) > 0 || work_left(s->w)))
			smtp_kick(m);
		if (m->idle && !(s->hold_until > s->w->now && !stopping()))
			smtp_finish(m);
	}
	if (m->state == SS_DONE || m->state == SS_FAILED) {
		session_close(s);
		return;
	}
	arm_send(s);
	arm_recv(s);
	set_deadline(s, progress || s->deadline == 0 ? s->w->now + step_timeout(s) : s->deadline);
}

/* pump - after an event that moved bytes. */
static void pump(struct session *s)
{
	pump_ex(s, true);
}

/* session_bind - give a free session to destination d (its slot already reserved) and connect. */
void session_bind(struct session *s, struct dest *d)
{
	s->dest = d;
	d->nconn++;
	s->ai = d->cursor < d->naddr ? d->cursor : (unsigned)(d->good >= 0 ? d->good : 0);
	session_connect(s);
}

/* session_release - the session is closed for good: free it and its destination slot. */
static void session_release(struct session *s)
{
	struct dest *d = s->dest;
	struct worker *w = s->w;
	s->phase = PH_IDLE;
	if (!d)
		return;
	d->nconn--;
	/* A slot of a full destination came free: other threads may be waiting for it. */
	if (budget_release(d->own, d->prov) && w->cfg->mx)
		dnscache_wake_others(w->id);
	s->dest = NULL;
	w->idle[w->nidle++] = s->idx;
	if (dest_waiting(d) > 0)
		route_want(w, d);
}

/* failover - a connection that never carried a transaction failed: try the next
 * address (then the next MX); when every address has failed and no session of
 * the destination is up, the destination's recipients get this failure. */
static bool failover(struct session *s)
{
	struct dest *d = s->dest;
	const struct smtp *m = &s->smtp;
	if (!d || s->taken > 0 || m->state != SS_FAILED || stopping())
		return false; /* stopping: the queue is "not attempted" (interrupted_rest) */
	route_set_fail(&d->fail, m->fail_status, m->fail_code, m->fail_enh, "%s", m->err);
	d->fail.ai = (int)s->ai;
	d->fail.t0 = s->conn_start;
	if (m->auth_failed) { /* RFC 4954: wrong credentials will not get better; stop now */
		route_dest_failed(s->w, d);
		return false;
	}
	if (s->plain_retry && !stopping())
		return true; /* the same address once more, in plaintext */
	if (d->cursor < s->ai + 1)
		d->cursor = s->ai + 1;
	if (d->cursor < d->naddr && !stopping()) {
		s->ai = d->cursor;
		return true;
	}
	if (d->nconn == 1) /* no other session of this thread is up or still trying */
		route_dest_failed(s->w, d);
	else /* others are up or trying: no new attempt for a while (no reconnect storm) */
		d->retry_at = s->w->now + RETRY_PAUSE_MS;
	return false;
}

/* session_connect - open a connection to the session's current address. */
static void session_connect(struct session *s)
{
	struct worker *w = s->w;
	const struct daddr *a = &s->dest->addr[s->ai];
	s->fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	bool plain = s->plain_retry;
	s->conn_start = w->now;
	s->taken = 0;
	s->rlen = 0;
	s->greeted = false;
	s->plain_retry = false;
	s->tls_broken = false;
	s->tls_desc[0] = '\0';
	atomic_fetch_add_explicit(&w->st->connections, 1, memory_order_relaxed);
	smtp_start(&s->smtp);
	s->smtp.no_tls = plain;
	s->smtp.max_msgs = s->dest->max_msgs;
	if (s->fd < 0) {
		s->phase = PH_OPEN; /* so that the close path runs */
		session_fail(s, "socket: %s", strerror(errno));
		return;
	}
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct io_uring_sqe *sqe = ring_sqe(&w->ring);
	io_uring_prep_connect(sqe, s->fd, (const struct sockaddr *)&a->sa, a->len);
	io_uring_sqe_set_data64(sqe, ud(s->idx, OP_CONNECT));
	s->inflight++;
	s->phase = PH_CONNECTING;
	s->hold_until = 0;
	set_deadline(s, w->now + w->cfg->to.connect);
}

/* session_close - cancel what is in flight, then close the socket. */
static void session_close(struct session *s)
{
	struct worker *w = s->w;
	if (s->phase == PH_CLOSING || s->phase == PH_IDLE)
		return;
	s->phase = PH_CLOSING;
	s->hold_until = 0;
	set_deadline(s, 0);
	if (s->fd < 0) { /* socket() failed: nothing in flight will call settle */
		settle(s);
		return;
	}
	struct io_uring_sqe *sqe = ring_sqe(&w->ring);
	if (s->inflight > 0) {
		io_uring_prep_cancel_fd(sqe, s->fd, IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, ud(s->idx, OP_CANCEL));
		return;
	}
	io_uring_prep_close(sqe, s->fd);
	io_uring_sqe_set_data64(sqe, ud(s->idx, OP_CLOSE));
	s->fd = -1;
	s->inflight++;
}

/* session_pushback - the session ended on a 4xx: when it throttles, slow the
 * destination down (budget.c); on a 421 (RFC 5321 3.8: the server is closing the
 * channel) also no new session to it for a while, over all threads, doubling with each
 * 421 in a row. */
static void session_pushback(struct session *s)
{
	struct dest *d = s->dest;
	const struct smtp *m = &s->smtp;
	if (!d || m->state != SS_FAILED || m->fail_code < 400 || m->fail_code >= 500)
		return;
	budget_reply(d->own, d->prov, s->w->now, m->fail_code, m->fail_enh, m->err, strlen(m->err));
	if (m->fail_code != 421)
		return;
	if (d->n421 < 30)
		d->n421++;
	int64_t pause = retry_backoff(s->w->cfg->retry_initial, d->n421, arc4random());
	int64_t cap = s->w->cfg->max_retry > 0 ? s->w->cfg->max_retry : s->w->cfg->retry_initial;
	if (pause > cap) /* without retries, a 421 pauses at most --retry-initial */
		pause = cap;
	budget_pause(d->own, s->w->now + pause);
}

/* connection_gone - the session's connection is closed: it no longer counts as open
 * on its destination, and its TLS state goes (its session kept for resumption). */
static void connection_gone(struct session *s)
{
	if (s->greeted) {
		s->dest->nopen--;
		s->greeted = false;
	}
	tls_end(s);
}

/* settle - once a closing session has nothing in flight: close the socket,
 * then fail over, reconnect for more work, or release the session. */
static void settle(struct session *s)
{
	if (s->phase != PH_CLOSING || s->inflight > 0)
		return;
	if (s->fd >= 0) {
		struct io_uring_sqe *sqe = ring_sqe(&s->w->ring);
		io_uring_prep_close(sqe, s->fd);
		io_uring_sqe_set_data64(sqe, ud(s->idx, OP_CLOSE));
		s->fd = -1;
		s->inflight++;
		return;
	}
	bool was_greeted = s->greeted;
	session_pushback(s);
	connection_gone(s);
	if (!was_greeted && failover(s)) {
		session_connect(s);
		return;
	}
	session_release(s);
}

/* on_connect - the TCP connection is up, or failed. */
static void on_connect(struct session *s, int res)
{
	if (s->phase != PH_CONNECTING)
		return;
	s->phase = PH_OPEN;
	if (res < 0) {
		char what[160];
		snprintf(what, sizeof what, "connect to %s: %%s", s->dest->addr[s->ai].server);
		session_fail(s, what, strerror(-res));
		return;
	}
	if (s->w->cfg->tls_wrapper) {
		tls_start(s);
		s->smtp.tls_active = true;
		if (s->phase != PH_OPEN)
			return;
	}
	pump(s);
}

/* on_recv - bytes arrived (or the peer closed). */
static void on_recv(struct session *s, int res)
{
	s->recv_armed = false;
	if (s->phase != PH_OPEN)
		return;
	if (res <= 0 && s->tls && !tls_handshake_done(s->tls)) {
		tls_fail(s, res == 0 ? "connection closed during TLS handshake" : strerror(-res));
		return;
	}
	if (res <= 0) {
		if ((s->smtp.state == SS_QUIT || s->smtp.state == SS_DONE) &&
		    smtp_open_rcpts(&s->smtp) == 0) {
			s->smtp.state = SS_DONE;
			session_close(s);
		} else if (res == 0) {
			session_fail(s, "connection closed by %s", s->dest->addr[s->ai].server);
		} else {
			session_fail(s, "receive failed: %s", strerror(-res));
		}
		return;
	}
	if (s->tls) {
		unsigned replies = s->smtp.replies;
		bool shaken = tls_handshake_done(s->tls);
		tls_in(s, (size_t)res);
		pump_ex(s, s->smtp.replies != replies || (s->tls && tls_handshake_done(s->tls) != shaken));
		return;
	}
	unsigned replies = s->smtp.replies;
	s->rlen += (size_t)res;
	size_t used = smtp_input(&s->smtp, s->rbuf, s->rlen);
	memmove(s->rbuf, s->rbuf + used, s->rlen - used);
	s->rlen -= used;
	pump_ex(s, s->smtp.replies != replies); /* a drip of bytes does not extend a deadline */
}

/* on_send - a send finished (possibly short). */
static void on_send(struct session *s, int res)
{
	s->send_armed = false;
	if (s->phase != PH_OPEN)
		return;
	if (res < 0) {
		session_fail(s, "send failed: %s", strerror(-res));
		return;
	}
	if (s->tls) {
		memmove(s->cout, s->cout + res, s->coutlen - (size_t)res);
		s->coutlen -= (size_t)res;
	} else {
		smtp_out_consume(&s->smtp.out, (size_t)res);
	}
	pump(s);
}

/* ---- the loop ---- */

/* arm_timer - the periodic tick for deadlines and stop requests. */
static void arm_timer(struct worker *w)
{
	static struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = TICK_MS * 1000000L };
	struct io_uring_sqe *sqe = ring_sqe(&w->ring);
	io_uring_prep_timeout(sqe, &ts, 0, 0);
	io_uring_sqe_set_data64(sqe, ud(0, OP_TIMER));
}

/* grace - after a stop: sessions finish what is in flight; once the grace period is
 * over, whatever is still open is closed and its recipients get deferred. */
static void grace(struct worker *w)
{
	if (w->stop_ms == 0) { /* idle and held sessions say QUIT now */
		w->stop_ms = w->now;
		for (unsigned i = 0; i < w->nsess; i++) {
			w->sess[i].hold_until = 0;
			pump_ex(&w->sess[i], false);
			settle(&w->sess[i]);
		}
	}
	if (w->now - w->stop_ms < w->cfg->grace)
		return;
	for (unsigned i = 0; i < w->nsess; i++) {
		struct session *s = &w->sess[i];
		if (s->phase == PH_CONNECTING)
			s->phase = PH_OPEN;
		if (s->phase == PH_OPEN)
			session_fail(s, "the run was interrupted before the server answered (%s); the "
			             "message may have been accepted", s->dest->addr[s->ai].server);
	}
}

/* abandon_sessions - the ring failed and the thread must end: every open session's
 * recipients get why (deferred; a message in flight may have been accepted), its
 * socket is closed here and its destination slot given back, so that other threads
 * sharing the destination's limits are not left waiting for it. */
static void abandon_sessions(struct worker *w, const char *why)
{
	for (unsigned i = 0; i < w->nsess; i++) {
		struct session *s = &w->sess[i];
		if (s->phase == PH_IDLE)
			continue;
		char msg[400];
		snprintf(msg, sizeof msg, "%s, while talking to %s; the message may have been accepted",
		         why, s->dest ? s->dest->addr[s->ai].server : "the server");
		smtp_abort(&s->smtp, RS_DEFERRED, msg);
		if (s->fd >= 0)
			close(s->fd); /* the ring keeps its own reference until ring_exit */
		s->fd = -1;
		connection_gone(s);
		session_release(s);
	}
}

/* settle_results_write - the ring failed with a results write in flight: wait up to
 * RES_SETTLE_MS for its completion (other completions are dropped: their sessions are
 * gone). If it does not come, whether the lines were written is unknown, so the
 * buffer goes back to the queue for the synchronous drain (resfile_requeue_inflight). */
static void settle_results_write(struct worker *w)
{
	int64_t until = clock_ms() + RES_SETTLE_MS;
	struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 100 * 1000000L };
	while (w->res_inflight && clock_ms() < until) {
		struct io_uring_cqe *cqe;
		int rc = io_uring_wait_cqe_timeout(&w->ring.u, &cqe, &ts);
		if (rc == -ETIME || rc == -EINTR)
			continue;
		if (rc < 0)
			break;
		uint64_t data = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&w->ring.u, cqe);
		if ((data & 0xff) == OP_RESWRITE) {
			w->res_inflight = false;
			resfile_done(&w->rf, res);
		}
	}
	if (w->res_inflight) {
		resfile_requeue_inflight(&w->rf);
		w->res_inflight = false;
	}
}

/* timer_fired - the wheel says the session's deadline or its hold is due. */
static void timer_fired(struct session *s)
{
	if (s->phase == PH_IDLE || s->phase == PH_CLOSING)
		return;
	if (s->deadline != 0 && s->deadline <= s->w->now) {
		if (s->phase == PH_CONNECTING) {
			s->phase = PH_OPEN;
			session_fail(s, "connect to %s: timed out", s->dest->addr[s->ai].server);
		} else {
			session_fail(s, "timed out waiting for the server (%s)", s->dest->addr[s->ai].server);
		}
		settle(s);
		return;
	}
	if (s->hold_until != 0 && s->hold_until <= s->w->now)
		s->hold_until = 0;
	pump_ex(s, false); /* a hold is over: take work again (or finish) */
	settle(s);
}

/* expire - fire every timer that is due, a batch at a time. */
static void expire(struct worker *w)
{
	uint32_t due[256], k;
	do {
		k = wheel_expire(&w->wheel, w->now, due, 256);
		for (uint32_t j = 0; j < k; j++)
			timer_fired(&w->sess[due[j]]);
	} while (k == 256);
}

/* sync_results - thread 0, once a second: an fdatasync of the results file through the
 * ring (io-wq), so that a power loss costs at most about a second of results and the
 * final fsync finds little left to write. */
static void sync_results(struct worker *w)
{
	if (w->id != 0 || w->sync_inflight || w->now - w->synced_ms < RES_SYNC_MS)
		return;
	struct io_uring_sqe *sqe = ring_sqe(&w->ring);
	io_uring_prep_fsync(sqe, w->rf.fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(sqe, ud(0, OP_RESSYNC));
	w->sync_inflight = true;
	w->synced_ms = w->now;
}

/* on_tick - expire deadlines, retransmit DNS, sync results, publish counters. */
static void on_tick(struct worker *w)
{
	if (stopping())
		grace(w);
	expire(w);
	if (w->cfg->mx)
		resolver_tick(&w->res, w->now);
	sync_results(w);
	atomic_store_explicit(&w->st->sync_writes, w->rf.sync_writes, memory_order_relaxed);
	atomic_store_explicit(&w->st->dns_queries, w->res.queries, memory_order_relaxed);
	atomic_store_explicit(&w->st->dns_tcp, w->res.tcp_queries, memory_order_relaxed);
	atomic_store_explicit(&w->st->retrying, w->rt.nheap, memory_order_relaxed);
	arm_timer(w);
}

/* flush_results - start a results write when none is in flight: full buffers
 * at once, the partial one when it is big or old enough, or when finishing.
 * Writing every loop turn would cost an io-wq wake-up per turn (appending
 * buffered writes are punted); the bound keeps a crash's loss window at
 * RES_FLUSH_MS. */
static void flush_results(struct worker *w, bool finishing)
{
	const char *p;
	size_t len;
	bool partial = finishing || resfile_due(&w->rf, w->now);
	if (w->res_inflight || !resfile_next(&w->rf, partial, &p, &len))
		return;
	struct io_uring_sqe *sqe = ring_sqe(&w->ring);
	io_uring_prep_write(sqe, w->rf.fd, p, (unsigned)len, (uint64_t)-1);
	io_uring_sqe_set_data64(sqe, ud(0, OP_RESWRITE));
	w->res_inflight = true;
}

/* dispatch - route one completion. */
static void dispatch(struct worker *w, uint64_t data, int res)
{
	enum op op = (enum op)(data & 0xff);
	unsigned idx = (unsigned)(data >> 8);
	switch (op) {
	case OP_TIMER:
		on_tick(w);
		return;
	case OP_RESWRITE:
		w->res_inflight = false;
		resfile_done(&w->rf, res);
		return;
	case OP_DNS:
		resolver_cqe(&w->res, idx, res, w->now);
		return;
	case OP_RESSYNC: /* EINVAL: not a file that can be synced (a pipe): fine */
		w->sync_inflight = false;
		if (res < 0 && res != -EINVAL && !w->rf.error)
			w->rf.error = -res;
		return;
	case OP_CANCEL:
		return;
	default:
		break;
	}
	if (idx >= w->nsess)
		return;
	struct session *s = &w->sess[idx];
	s->inflight--;
	switch (op) {
	case OP_CONNECT: on_connect(s, res); break;
	case OP_RECV: on_recv(s, res); break;
	case OP_SEND: on_send(s, res); break;
	default: break;
	}
	settle(s);
}

/* finished - nothing left to read, route, resolve or send. */
static bool finished(const struct worker *w)
{
	if (w->nidle != w->nsess)
		return false;
	if (stopping())
		return true;
	return w->exhausted && w->pool.used == 0 && w->rt.used == 0 && !route_busy(w);
}

/* requeue_due - recipients whose retry is due go back to routing, as long as the
 * queues have room (half of the pool is kept for them: feeding stops at half). */
static void requeue_due(struct worker *w)
{
	uint32_t id;
	if (stopping())
		return;
	while (w->pool.used < ROUTE_QUEUE_CAP - 1 && (id = retry_due(&w->rt, w->now)) != 0)
		route_rcpt(w, &retry_get(&w->rt, id)->r);
}

/* interrupted_rest - after a stop (or a failed start: why), every recipient not sent
 * gets its line. */
static void interrupted_rest(struct worker *w, const char *why)
{
	struct route_fail f = { .ai = -1, .status = RS_DEFERRED, .untried = true };
	snprintf(f.reason, sizeof f.reason, "not attempted: %.230s", why);
	struct rcpt r;
	uint32_t id;
	/* Waiting for a retry: the last outcome, which names its destination; so before
	 * route_teardown frees the destinations. */
	while ((id = retry_due(&w->rt, INT64_MAX)) != 0) {
		r = retry_get(&w->rt, id)->r;
		emit_fail(w, &r, &f, NULL);
	}
	route_teardown(w, &f);
	while (take(w, &r))
		emit_fail(w, &r, &f, NULL);
}

/* loop - run until the slice is done and every session is closed. */
static void loop(struct worker *w)
{
	arm_timer(w);
	w->now = clock_ms();
	batch_init(&w->batch, w->ring.lazy_wake ? w->cfg->batch_window_us : 0, clock_us());
	w->synced_ms = w->now;
	route_feed(w, FEED_BATCH);
	route_schedule(w);
	for (;;) {
		bool done = finished(w);
		flush_results(w, done);
		if (done && !w->res_inflight && !w->sync_inflight)
			break;
		/* Sends complete during the enter (the socket has room), so they are
		 * added to the replies to wait for. While DNS answers are awaited, no
		 * batching: an answer holds back its domain's recipients. */
		unsigned want = route_busy(w) ? 1 : batch_want(&w->batch, w->nsess - w->nidle);
		int rc = ring_submit_wait(&w->ring, want > 1 ? w->sends_queued + want : 1,
		                          w->batch.window_us);
		w->sends_queued = 0;
		if (g_fault.enter && w->id == g_fault.tid && ++w->enters == g_fault.enter)
			rc = -EIO; /* test hook (fault_hook) */
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			snprintf(w->err, sizeof w->err, "io_uring_enter: %s", strerror(-rc));
			w->rc = -1;
			char why[320];
			snprintf(why, sizeof why, "engine thread %u failed (%s)", w->id, w->err);
			abandon_sessions(w, why);
			settle_results_write(w);
			break;
		}
		w->now = clock_ms();
		struct io_uring_cqe *cqe;
		unsigned head, n = 0, replies = 0;
		io_uring_for_each_cqe(&w->ring.u, head, cqe) {
			uint64_t data = io_uring_cqe_get_data64(cqe);
			replies += (data & 0xff) == OP_RECV && cqe->res > 0;
			dispatch(w, data, cqe->res);
			n++;
		}
		io_uring_cq_advance(&w->ring.u, n);
		if (w->batch.window_us)
			batch_note(&w->batch, replies, clock_us());
		if (w->rf.error && !stopping())
			engine_stop(); /* results cannot be written: start nothing more (docs/delivery.md) */
		requeue_due(w);
		if (work_left(w) && w->pool.used < ROUTE_QUEUE_CAP / 2)
			route_feed(w, FEED_BATCH);
		route_schedule(w);
		flush_results(w, false);
	}
}

/* ---- threads ---- */

/* worker_setup - allocate sessions and buffers, create the ring (on this thread). */
static int worker_setup(struct worker *w)
{
	const struct engine_config *cfg = w->cfg;
	size_t per = smtp_mem(&cfg->smtp);
	per = (per + 63) & ~(size_t)63;
	w->sess = calloc(w->nsess ? w->nsess : 1, sizeof *w->sess);
	w->idle = calloc(w->nsess ? w->nsess : 1, sizeof *w->idle);
	w->smtp_mem = calloc(w->nsess ? w->nsess : 1, per);
	w->tnode = calloc(w->nsess ? w->nsess : 1, sizeof *w->tnode);
	if (!w->sess || !w->idle || !w->smtp_mem || !w->tnode || resfile_init(&w->rf, cfg->results_fd) < 0 ||
	    rpool_init(&w->pool, ROUTE_QUEUE_CAP) < 0) {
		snprintf(w->err, sizeof w->err, "out of memory for %u sessions", w->nsess);
		return -1;
	}
	for (unsigned i = 0; i < w->nsess; i++) {
		struct session *s = &w->sess[i];
		s->w = w;
		s->idx = i;
		s->fd = -1;
		smtp_init(&s->smtp, &cfg->smtp, &session_ops, s, (char *)w->smtp_mem + i * per);
		w->idle[w->nidle++] = w->nsess - 1 - i;
	}
	wheel_init(&w->wheel, w->tnode, w->nsess, TICK_MS, clock_ms());
	unsigned sq = 256;
	while (sq < 2 * w->nsess + 16 && sq < 4096)
		sq <<= 1;
	unsigned cq = 4 * (w->nsess + 16) + 4 * RESOLVER_SLOTS;
	if (cq < 2 * sq)
		cq = 2 * sq;
	if (cq > RING_MAX_CQ) /* the kernel's limit; past it, NODROP keeps the overflow */
		cq = RING_MAX_CQ;
	if (ring_init(&w->ring, sq, cq, w->err, sizeof w->err) < 0)
		return -1;
	snprintf(w->st->ring_mode, sizeof w->st->ring_mode, "%s", ring_mode(&w->ring));
	if (route_setup(w) < 0) {
		snprintf(w->err, sizeof w->err, "cannot set up routing (out of memory or eventfd)");
		return -1;
	}
	return 0;
}

/* worker_main - thread body. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, SIGBUS); /* a fault in the job mapping must reach jobguard's handler */
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	bool ok = worker_setup(w) == 0;
	if (ok)
		loop(w);
	else
		w->rc = -1;
	if (!w->rf.buf[RES_NBUF - 1] || !w->pool.node)
		return NULL; /* no buffers: engine_run writes this slice's lines */
	char why[300];
	if (!ok)
		snprintf(why, sizeof why, "engine thread %u could not start: %s", w->id, w->err);
	else if (w->rc != 0)
		snprintf(why, sizeof why, "engine thread %u failed: %s", w->id, w->err);
	else
		snprintf(why, sizeof why, "the run was interrupted");
	interrupted_rest(w, why);
	if (ok)
		ring_exit(&w->ring);
	if (resfile_drain(&w->rf) < 0 && w->rc == 0) {
		snprintf(w->err, sizeof w->err, "writing results: %s (sending stopped at the first "
		         "failed write; --resume sends again what has no line)", strerror(w->rf.error));
		w->rc = -1;
	}
	atomic_store_explicit(&w->st->sync_writes, w->rf.sync_writes, memory_order_relaxed);
	atomic_store_explicit(&w->st->dns_queries, w->res.queries, memory_order_relaxed);
	atomic_store_explicit(&w->st->dns_tcp, w->res.tcp_queries, memory_order_relaxed);
	w->covered = true;
	return NULL;
}

/* worker_free - release a worker's memory. */
static void worker_free(struct worker *w)
{
	for (unsigned i = 0; w->sess && i < w->nsess; i++) {
		tls_conn_free(w->sess[i].tls);
		free(w->sess[i].cin);
		free(w->sess[i].cout);
	}
	resfile_free(&w->rf);
	rpool_free(&w->pool);
	retry_free(&w->rt);
	free(w->sess);
	free(w->idle);
	free(w->smtp_mem);
	free(w->tnode);
}

/* join_for - wait up to ms for a thread to end; ETIMEDOUT if it is still running. */
static int join_for(pthread_t th, long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	return pthread_timedjoin_np(th, NULL, &ts);
}

/* orphan_slice - the lines of a slice no thread could take (its thread did not
 * start, or had no memory for its buffers): written here, so that every recipient
 * still gets exactly one line. Good lines are deferred "not attempted: why", bad
 * ones failed as usual. Returns 0, or the errno of a failed write. */
static int orphan_slice(const struct engine_config *cfg, struct job_cursor cur,
                        struct engine_stats *st, const char *why)
{
	char buf[4 * RESULT_MAX_LINE], addr[ADDR_MAX_MAILBOX + 1], reason[320];
	size_t used = 0;
	struct rcpt r;
	const char *bad = NULL;
	int rc;
	snprintf(reason, sizeof reason, "not attempted: %.300s", why);
	while ((rc = job_next(cfg->job, &cur, &r, &bad)) != 0) {
		if (cfg->resume && resume_final(cfg->resume, r.line))
			continue;
		struct result res;
		if (rc > 0)
			res = (struct result){ .rcpt = addr, .rcpt_len = rcpt_addr(&r, addr),
			                       .line = r.line, .status = RS_DEFERRED, .reply = reason,
			                       .reply_len = strlen(reason), .attempts = 0, .ms = -1 };
		else
			res = bad_result(&r, bad ? bad : "bad line");
		if (sizeof buf - used < RESULT_MAX_LINE) {
			int e = resfile_write_fd(cfg->results_fd, buf, used);
			if (e)
				return e;
			used = 0;
		}
		used += result_format(buf + used, sizeof buf - used, &res);
		atomic_fetch_add_explicit(rc > 0 ? &st->deferred : &st->failed, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&st->untried, 1, memory_order_relaxed);
	}
	return resfile_write_fd(cfg->results_fd, buf, used);
}

/* engine_run - split the job, run the threads, wait for them, calling tick meanwhile. */
int engine_run(const struct engine_config *cfg, struct engine_stats *stats,
               void (*tick)(void *), void *arg, char *err, size_t errlen)
{
	unsigned n = cfg->threads;
	struct worker *w = calloc(n, sizeof *w);
	struct job_cursor *cur = calloc(n, sizeof *cur);
	int rc = 0;
	if (!w || !cur || dnscache_init(n) < 0 || budget_init(cfg->shaping->nprovider) < 0) {
		snprintf(err, errlen, "out of memory");
		free(w);
		free(cur);
		return -1;
	}
	fault_hook();
	job_slices(cfg->job, n, cur);
	for (unsigned i = 0; i < n; i++) {
		w[i].cfg = cfg;
		w[i].st = &stats[i];
		w[i].id = i;
		w[i].cur = cur[i];
		w[i].dontneed_from = cur[i].p;
		w[i].nsess = cfg->connections / n + (i < cfg->connections % n ? 1 : 0);
		w[i].rf.inflight = -1;
		int e = pthread_create(&w[i].th, NULL, worker_main, &w[i]);
		if (e != 0) {
			snprintf(err, errlen, "cannot start thread %u: %s", i, strerror(e));
			snprintf(w[i].err, sizeof w[i].err, "pthread_create: %s", strerror(e));
			engine_stop();
			n = i;
			rc = -1;
			break;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		while (join_for(w[i].th, 100) == ETIMEDOUT) {
			budget_tick(clock_ms()); /* rate estimates and recovery after throttling */
			if (tick)
				tick(arg);
		}
		if (w[i].rc != 0 && rc == 0) {
			snprintf(err, errlen, "thread %u: %s", i, w[i].err);
			rc = -1;
		}
	}
	for (unsigned i = 0; i < cfg->threads; i++) {
		char why[320];
		if (w[i].err[0])
			snprintf(why, sizeof why, "engine thread %u could not start: %s", i, w[i].err);
		else /* never created: an earlier thread could not be */
			snprintf(why, sizeof why, "engine thread %u was not started: the run was stopped", i);
		int e = w[i].covered ? 0 : orphan_slice(cfg, cur[i], &stats[i], why);
		if (e && rc == 0) {
			snprintf(err, errlen, "writing results: %s", strerror(e));
			rc = -1;
		}
	}
	for (unsigned i = 0; i < cfg->threads; i++) { /* eventfds last: another thread may still write one */
		if (w[i].res.efd > 0)
			close(w[i].res.efd);
		worker_free(&w[i]);
	}
	dnscache_free();
	free(w);
	free(cur);
	return rc;
}

/* engine_stop - request a stop (async-signal-safe). */
void engine_stop(void)
{
	atomic_store(&g_stop, 1);
}

/* engine_stopping - whether a stop was requested. */
bool engine_stopping(void)
{
	return atomic_load(&g_stop) != 0;
}
