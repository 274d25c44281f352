/* resolver.h - a thread's DNS client: queries over UDP (TCP on truncation) on the thread's ring. */
#ifndef VOLLEY_RESOLVER_H
#define VOLLEY_RESOLVER_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "dns.h"
#include "ring.h"

#define RESOLVER_SLOTS      128u    /* queries on the wire per thread */
#define RESOLVER_TRIES      3u      /* attempts per query, rotating servers */
#define RESOLVER_TIMEOUT_MS 2000    /* per attempt */
#define RESOLVER_MAX_SERVERS 8u
#define RESOLVER_MX_SLOTS   32u     /* MX queries on the wire at once: address lookups
                                     * must not queue behind a burst of new domains */

/* A name to resolve, embedded in whatever needs the answer. */
struct lookup {
	struct lookup *next;          /* in the resolver's queue of lookups waiting for a slot */
	const char *name;             /* owner's storage */
	enum dns_type type;
	uint8_t state;                /* LK_* */
	void *owner;                  /* for the done callback */
};

enum { LK_IDLE, LK_QUEUED, LK_WIRE, LK_WAITING, LK_DONE };

/* One query on the wire. */
struct dnsq {
	struct lookup *lk;            /* NULL when the slot is free */
	int fd;
	bool tcp;
	uint8_t gen;                  /* bumped per socket: completions of old sockets are ignored */
	uint8_t pend;                 /* bit per sub-operation in flight on the current socket */
	uint16_t id;
	bool refused;                 /* an attempt failed with a socket error, not silence */
	unsigned server, tries;
	int64_t deadline;
	size_t qlen, got;
	uint8_t q[2 + 512];           /* TCP length prefix + query */
	uint8_t *buf;                 /* answer buffer: ubuf, or a malloc'd 64 KiB for TCP */
	size_t cap;
	uint8_t ubuf[2][DNS_UDP_PAYLOAD + 512]; /* alternate per socket, so a late datagram
	                               * for an old socket never lands in the live buffer */
};

/* The servers, shared read-only by all threads. */
struct dns_servers {
	struct sockaddr_storage addr[RESOLVER_MAX_SERVERS];
	socklen_t len[RESOLVER_MAX_SERVERS];
	unsigned n;
};

/* A thread's resolver. */
struct resolver {
	struct ring *ring;
	unsigned tid;                 /* thread id for the shared cache */
	const struct dns_servers *servers;
	unsigned next_server;
	struct dnsq q[RESOLVER_SLOTS];
	struct lookup *queued, *queued_tail;  /* waiting for a free slot */
	unsigned nwaiting;            /* lookups waiting for another thread's answer */
	unsigned mx_wire;             /* MX queries on the wire */
	int efd;                      /* eventfd other threads write to */
	uint64_t efd_val;
	uint64_t queries, tcp_queries, timeouts;
	struct dns_answer scratch;    /* parse target (large; one at a time) */
	void (*done)(void *ctx, struct lookup *lk, const struct dns_answer *a);
	void *ctx;
	uint8_t op;                   /* the engine's operation code for DNS completions */
};

/* resolver_init - set up (eventfd armed on the ring). Returns 0 or -1. */
int resolver_init(struct resolver *r, struct ring *ring, unsigned tid,
                  const struct dns_servers *servers, uint8_t op,
                  void (*done)(void *, struct lookup *, const struct dns_answer *), void *ctx);

/* resolver_lookup - resolve lk (may call done at once, from the cache). */
void resolver_lookup(struct resolver *r, struct lookup *lk, int64_t now);

/* resolver_cqe - a completion of ours: idx is user_data >> 8 (user_data & 0xff == op). */
void resolver_cqe(struct resolver *r, unsigned idx, int res, int64_t now);

/* resolver_tick - retransmit or give up on late queries. */
void resolver_tick(struct resolver *r, int64_t now);

/* resolver_busy - queries on the wire, queued or waiting. */
bool resolver_busy(const struct resolver *r);

/* resolver_abandon - tell waiting threads that this thread's queries will not be
 * answered (it is ending); call while the lookups' names are still allocated. */
void resolver_abandon(struct resolver *r);

/* resolver_free - close sockets and release buffers (ring already gone). */
void resolver_free(struct resolver *r);

#endif
