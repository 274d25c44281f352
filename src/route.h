/* route.h - a thread's routing tables: domains, destinations (MX sets) and recipient queues. */
#ifndef VOLLEY_ROUTE_H
#define VOLLEY_ROUTE_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "dns.h"
#include "job.h"
#include "resolver.h"
#include "results.h"

struct budget;

#define ROUTE_QUEUE_CAP   65536u   /* recipients a thread holds in queues at once */
#define ROUTE_MAX_DOMAINS 1000000u /* domains a thread remembers */
#define ROUTE_MAX_ADDRS   64u      /* addresses tried per destination */
#define ROUTE_MAX_HOSTS   DNS_MAX_MX

/* A FIFO of recipients, threaded through the thread's node pool. */
struct rqueue { uint32_t head, tail, n; };

/* The node pool backing every queue of a thread. */
struct rpool {
	struct rnode { struct rcpt r; uint32_t next; } *node;
	uint32_t free;               /* head of the free list (UINT32_MAX: none) */
	uint32_t used;
};

/* Why a domain or destination cannot be delivered to now. */
struct route_fail {
	int ai;                      /* address tried last (index in the destination), -1 if none */
	enum result_status status;
	int code;
	char enhanced[16];
	char reason[256];
	bool untried;                /* nothing was attempted (the run stopped first) */
	int64_t t0;                  /* ms when the failed connection attempt began, 0 if none */
};

/* An address of a destination, in the order they are tried. */
struct daddr {
	struct sockaddr_storage sa;
	socklen_t len;
	uint16_t host;               /* index in dest->host */
	char ip[48];                 /* numeric */
	char server[80];             /* "ip:port" / "[ip]:port" */
};

/* An MX host of a destination, with its address lookups. */
struct dhost {
	char name[DNS_MAX_NAME + 1];
	uint16_t pref;
	struct lookup lk4, lk6;
	unsigned n4, n6;
	struct dns_addr a4[8], a6[8];
	bool nx;                     /* NXDOMAIN for the host */
};

/* A destination: one MX set (or the relay). Domains with the same MX set share it. */
struct dest {
	struct dest *hnext;          /* hash chain */
	struct dest *wnext;          /* in the thread's list of destinations wanting sessions */
	bool wanting;
	char *key;                   /* "pref host,pref host..." sorted, or "relay" */
	struct budget *own;          /* its shared budget (connections, rate, pause), all threads */
	struct budget *prov;         /* its provider's budget, or NULL */
	unsigned max_msgs;           /* transactions per connection (0: --max-messages-per-connection) */
	unsigned nhost;
	struct dhost *host;
	unsigned pending_lookups;
	bool ready;                  /* addresses known */
	bool down;                   /* every address failed: fail is the outcome */
	struct route_fail fail;
	unsigned naddr;
	uint32_t addr_gen;           /* bumped when addr is rebuilt (revive): older indexes are stale */
	struct daddr addr[ROUTE_MAX_ADDRS];
	unsigned cursor;             /* first address new connections try */
	int good;                    /* last address that worked, -1 if none */
	unsigned nconn;              /* this thread's sessions bound to it */
	unsigned nopen;              /* ... of which got past the greeting */
	bool auth_ok;                /* AUTH succeeded once: open more than one session */
	int64_t retry_at;            /* ms: no new session before this (after a failed one, or 421) */
	int64_t down_until;          /* ms: while down for a temporary reason, revived after this */
	unsigned n421;               /* 421 replies in a row (the pause doubles with each) */
	void *tls_session;           /* TLS session to resume (this thread, this destination) */
	struct rqueue q;             /* fresh recipients waiting for a session */
	struct rqueue rq;            /* retried recipients waiting for a session */
	bool retry_turn;             /* dest_pop: the next recipient comes from rq */
};

/* A recipient domain seen by this thread. */
struct domain {                  /* ~100 octets + the name: a thread may hold a million */
	struct domain *hnext;
	char *alias;                 /* where a CNAME-only answer pointed, asked next (malloc'd) */
	unsigned cnames;             /* CNAME-only answers followed so far */
	struct lookup lk;            /* its MX lookup */
	struct dest *dest;           /* when known */
	bool failed;                 /* then fail is set */
	int64_t fail_until;          /* ms: a temporary failure is retried after this */
	int64_t mx_expires;          /* ms: its MX answer's TTL ends (asked again if dest is down) */
	struct route_fail *fail;     /* the outcome for its recipients once failed (malloc'd) */
	struct rqueue q;             /* recipients parked while the MX lookup runs */
	char name[];                 /* lower case */
};

/* rpool_init - allocate cap nodes. */
int rpool_init(struct rpool *p, uint32_t cap);
void rpool_free(struct rpool *p);
/* rq_push - append a copy of r; false when the pool is empty. */
bool rq_push(struct rpool *p, struct rqueue *q, const struct rcpt *r);
/* rq_pop - remove the head into out; false when q is empty. */
bool rq_pop(struct rpool *p, struct rqueue *q, struct rcpt *out);
/* rq_move - append all of from to to. */
void rq_move(struct rpool *p, struct rqueue *to, struct rqueue *from);
/* dest_waiting - recipients queued on d, fresh and retried. */
static inline uint32_t dest_waiting(const struct dest *d)
{
	return d->q.n + d->rq.n;
}

/* dest_pop - the next recipient of d, alternating between retried and fresh ones while
 * both wait, so that neither starves the other. False when both are empty. */
bool dest_pop(struct rpool *p, struct dest *d, struct rcpt *out);

/* rpool_room - free nodes. */
uint32_t rpool_room(const struct rpool *p);

/* route_key - the destination key of an MX list ("10 a,20 b", sorted); returns length. */
size_t route_key(const struct dns_mx *mx, unsigned n, char *out, size_t cap);

/* route_order - order hosts by preference, shuffling equal preferences (RFC 5321 5.1). */
void route_order(struct dhost *h, unsigned n);

/* route_addrs - build the address list: hosts in order, each host's addresses
 * (v6 first when want6, then v4 when want4) with port. Returns the count. */
unsigned route_addrs(struct dest *d, bool want4, bool want6, unsigned port);

/* route_domain_of - lower-cased domain of a decoded address into out; false if none/literal. */
bool route_domain_of(const char *addr, size_t len, char *out, size_t cap);

/* route_set_fail - fill a route_fail. */
void route_set_fail(struct route_fail *f, enum result_status st, int code, const char *enh,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
