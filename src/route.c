/* route.c - routing helpers: recipient queues, MX ordering, destination keys, address lists. */
#include "route.h"
#include "addr.h"
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX

/* rpool_init - allocate the node pool and thread the free list. */
int rpool_init(struct rpool *p, uint32_t cap)
{
	p->node = malloc((size_t)cap * sizeof *p->node);
	if (!p->node)
		return -1;
	for (uint32_t i = 0; i < cap; i++)
		p->node[i].next = i + 1 < cap ? i + 1 : NIL;
	p->free = cap ? 0 : NIL;
	p->used = 0;
	return 0;
}

/* rpool_free - release the pool. */
void rpool_free(struct rpool *p)
{
	free(p->node);
	p->node = NULL;
}

/* rpool_room - whether nodes remain. */
uint32_t rpool_room(const struct rpool *p)
{
	return p->free != NIL;
}

/* rq_push - append a copy of r to q. */
bool rq_push(struct rpool *p, struct rqueue *q, const struct rcpt *r)
{
	uint32_t i = p->free;
	if (i == NIL)
		return false;
	p->free = p->node[i].next;
	p->used++;
	p->node[i].r = *r;
	p->node[i].next = NIL;
	if (q->n == 0)
		q->head = i;
	else
		p->node[q->tail].next = i;
	q->tail = i;
	q->n++;
	return true;
}

/* rq_pop - take the head of q. */
bool rq_pop(struct rpool *p, struct rqueue *q, struct rcpt *out)
{
	if (q->n == 0)
		return false;
	uint32_t i = q->head;
	*out = p->node[i].r;
	q->head = p->node[i].next;
	q->n--;
	p->node[i].next = p->free;
	p->free = i;
	p->used--;
	return true;
}

/* rq_move - splice from onto the end of to. */
void rq_move(struct rpool *p, struct rqueue *to, struct rqueue *from)
{
	if (from->n == 0)
		return;
	if (to->n == 0)
		to->head = from->head;
	else
		p->node[to->tail].next = from->head;
	to->tail = from->tail;
	to->n += from->n;
	from->n = 0;
}

/* dest_pop - alternate retried and fresh recipients. */
bool dest_pop(struct rpool *p, struct dest *d, struct rcpt *out)
{
	bool retry = d->rq.n > 0 && (d->retry_turn || d->q.n == 0);
	d->retry_turn = !retry;
	return rq_pop(p, retry ? &d->rq : &d->q, out);
}

/* mx_cmp - order by preference, then name. */
static int mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;
	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return strcmp(x->host, y->host);
}

/* route_key - canonical key of an MX set. */
size_t route_key(const struct dns_mx *mx, unsigned n, char *out, size_t cap)
{
	struct dns_mx sorted[DNS_MAX_MX];
	size_t len = 0;
	if (n > DNS_MAX_MX)
		n = DNS_MAX_MX;
	memcpy(sorted, mx, n * sizeof *mx);
	qsort(sorted, n, sizeof *sorted, mx_cmp);
	out[0] = '\0';
	for (unsigned i = 0; i < n && len < cap; i++) {
		int w = snprintf(out + len, cap - len, "%s%u %s", i ? "," : "", sorted[i].pref,
		                 sorted[i].host);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	return len < cap ? len : cap - 1;
}

/* route_order - sort by preference; random order among equal preferences. */
void route_order(struct dhost *h, unsigned n)
{
	for (unsigned i = 1; i < n; i++) {
		struct dhost t = h[i];
		unsigned j = i;
		while (j > 0 && h[j - 1].pref > t.pref) {
			h[j] = h[j - 1];
			j--;
		}
		h[j] = t;
	}
	for (unsigned i = 0; i < n;) {
		unsigned k = i;
		while (k < n && h[k].pref == h[i].pref)
			k++;
		for (unsigned m = k - 1; m > i; m--) {
			unsigned r = i + arc4random_uniform(m - i + 1);
			struct dhost t = h[m];
			h[m] = h[r];
			h[r] = t;
		}
		i = k;
	}
}

/* add_addr - append one address to d's list. */
static void add_addr(struct dest *d, unsigned host, const struct dns_addr *a, unsigned port)
{
	if (d->naddr >= ROUTE_MAX_ADDRS)
		return;
	struct daddr *x = &d->addr[d->naddr++];
	char ip[48];
	memset(x, 0, sizeof *x);
	x->host = (uint16_t)host;
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&x->sa;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		s6->sin6_addr = a->a.v6;
		x->len = sizeof *s6;
		inet_ntop(AF_INET6, &a->a.v6, ip, sizeof ip);
		snprintf(x->server, sizeof x->server, "[%s]:%u", ip, port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&x->sa;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		s4->sin_addr = a->a.v4;
		x->len = sizeof *s4;
		inet_ntop(AF_INET, &a->a.v4, ip, sizeof ip);
		snprintf(x->server, sizeof x->server, "%s:%u", ip, port);
	}
	memcpy(x->ip, ip, sizeof x->ip);
}

/* route_addrs - the order in which a destination's addresses are tried. */
unsigned route_addrs(struct dest *d, bool want4, bool want6, unsigned port)
{
	d->naddr = 0;
	for (unsigned h = 0; h < d->nhost; h++) {
		for (unsigned i = 0; want6 && i < d->host[h].n6; i++)
			add_addr(d, h, &d->host[h].a6[i], port);
		for (unsigned i = 0; want4 && i < d->host[h].n4; i++)
			add_addr(d, h, &d->host[h].a4[i], port);
	}
	return d->naddr;
}

/* route_domain_of - the domain of addr, lower case; false for none or an address literal. */
bool route_domain_of(const char *addr, size_t len, char *out, size_t cap)
{
	const char *d = addr_domain(addr, len);
	if (!d)
		return false;
	size_t n = len - (size_t)(d - addr);
	if (n == 0 || n >= cap || d[0] == '[')
		return false;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)(d[i] >= 'A' && d[i] <= 'Z' ? d[i] + 32 : d[i]);
	out[n] = '\0';
	return true;
}

/* route_set_fail - record an outcome for everything routed to a failed domain or destination. */
void route_set_fail(struct route_fail *f, enum result_status st, int code, const char *enh,
                    const char *fmt, ...)
{
	va_list ap;
	f->ai = -1;
	f->untried = false;
	f->t0 = 0;
	f->status = st;
	f->code = code;
	snprintf(f->enhanced, sizeof f->enhanced, "%s", enh ? enh : "");
	va_start(ap, fmt);
	vsnprintf(f->reason, sizeof f->reason, fmt, ap);
	va_end(ap);
}
