/* worker.h - what one engine thread owns: ring, sessions, routing tables, results buffers.
 * Shared by engine.c (the loop and sessions) and mxroute.c (feeding and routing). */
#ifndef VOLLEY_WORKER_H
#define VOLLEY_WORKER_H
#include <pthread.h>
#include <sys/socket.h>
#include "engine.h"
#include "resfile.h"
#include "resolver.h"
#include "retry.h"
#include "batch.h"
#include "wheel.h"
#include "ring.h"
#include "route.h"

enum op { OP_CONNECT = 1, OP_RECV, OP_SEND, OP_CLOSE, OP_CANCEL, OP_TIMER, OP_RESWRITE, OP_DNS, OP_RESSYNC };
enum phase { PH_IDLE, PH_CONNECTING, PH_OPEN, PH_CLOSING };

#define DOMAIN_BUCKETS 65536u
#define DEST_BUCKETS   4096u

struct worker;

/* One SMTP session: the protocol machine plus its socket and buffers. */
struct session {
	struct smtp smtp;            /* protocol state (includes the output queue) */
	struct worker *w;            /* owner */
	unsigned idx;                /* index in w->sess */
	int fd;                      /* socket, -1 when none */
	enum phase phase;
	unsigned inflight;           /* ring operations not yet completed */
	bool recv_armed, send_armed;
	bool greeted;                /* got past the greeting on this connection */
	struct dest *dest;           /* destination it is bound to, NULL when free */
	unsigned ai;                 /* index of the address in dest->addr */
	unsigned taken;              /* recipients taken on this connection */
	int64_t deadline;            /* ms; 0 = none */
	int64_t hold_until;          /* ms: idle by a rate limit until then, 0 = not held */
	int64_t conn_start;          /* ms when the connection attempt began */
	size_t rlen;                 /* octets in rbuf */
	struct tls_conn *tls;        /* TLS state while encrypted, else NULL */
	char *cin, *cout;            /* ciphertext buffers (TLS_CIPHER_BUF each), made on first use */
	size_t coutlen;              /* ciphertext in cout, being sent */
	bool tls_broken;             /* the handshake failed on this connection */
	bool plain_retry;            /* next connection to this address: plaintext (RFC 7435) */
	char tls_desc[64];           /* "TLSv1.3 TLS_..." once encrypted, else "" */
	struct msghdr mh;            /* for the one in-flight send */
	struct iovec iov[SMTP_OUT_SEGS];
	char rbuf[SESSION_RECV_BUF]; /* received bytes not yet parsed */
};

/* One engine thread. */
struct worker {
	const struct engine_config *cfg;
	struct engine_stats *st;
	unsigned id;
	pthread_t th;
	struct ring ring;
	struct job_cursor cur;       /* this thread's slice of the recipients */
	const char *dontneed_from;   /* job pages before this may be dropped */
	bool exhausted;              /* the slice is fully read */
	struct session *sess;
	unsigned nsess;
	unsigned *idle;              /* stack of free session indexes */
	unsigned nidle;
	void *smtp_mem;              /* recipient slots and expectation rings */
	struct resfile rf;
	bool res_inflight;
	bool sync_inflight;          /* thread 0: a results fdatasync is in flight */
	int64_t synced_ms;           /* thread 0: when the last one started */
	struct rpool pool;           /* recipients waiting in queues */
	struct retry rt;             /* deferred recipients waiting for their next attempt */
	struct wheel wheel;          /* session deadlines and wake-ups */
	struct wheel_node *tnode;    /* one per session */
	int64_t stop_ms;             /* when this thread saw the stop request, 0 before */
	struct resolver res;         /* DNS client (MX mode) */
	struct domain **dom;         /* domain hash table (MX mode) */
	unsigned ndom;
	struct dest **dst;           /* destination hash table */
	struct dest *relay;          /* the one destination in relay mode */
	struct dest *want;           /* destinations with queued recipients wanting sessions */
	struct batch batch;          /* how many replies to wait for per wake-up */
	unsigned sends_queued;       /* sends prepared since the last enter: they complete in it */
	int64_t now;
	uint64_t enters;             /* waits so far (for the VOLLEY_FAULT_RING test hook) */
	bool covered;                /* every recipient of the slice has its line */
	char err[256];
	int rc;
};

/* ud - pack an index and an operation into user_data. */
static inline uint64_t ud(unsigned idx, enum op op)
{
	return ((uint64_t)idx << 8) | (uint64_t)op;
}

/* engine.c */
void emit_rcpt(struct worker *w, const struct rcpt *rc, enum result_status st, int code,
               const char *enh, const char *text, size_t len, int64_t t0,
               const struct session *s);
void emit_fail(struct worker *w, const struct rcpt *rc, const struct route_fail *f,
               const struct dest *d);
bool take(struct worker *w, struct rcpt *out);
bool work_left(const struct worker *w);
void session_bind(struct session *s, struct dest *d);

/* mxroute.c */
int route_setup(struct worker *w);
void route_teardown(struct worker *w, const struct route_fail *why);
void route_feed(struct worker *w, unsigned max);
void route_rcpt(struct worker *w, const struct rcpt *r);
void route_schedule(struct worker *w);
void route_want(struct worker *w, struct dest *d);
void route_dest_failed(struct worker *w, struct dest *d);
void route_dns_done(void *ctx, struct lookup *lk, const struct dns_answer *a);
bool route_busy(const struct worker *w);

#endif
