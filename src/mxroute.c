/* mxroute.c - feeding and routing a thread's recipients: domain -> MX set -> destination.
 *
 * Recipients are read from the thread's slice in batches (route_feed) into a
 * bounded node pool; each is queued on its destination, or parked on its
 * domain while the domain's MX lookup runs. A destination is an MX set: its
 * key is the sorted list of "preference host", so vanity domains served by
 * the same provider share one destination, one queue and one connection
 * limit. The limit is a counter shared by all threads (dnscache.c), so it
 * holds whatever thread a recipient was read by. In relay mode there is one
 * destination, the relay, and no DNS. */
#include "addr.h"
#include "budget.h"
#include "dnscache.h"
#include "strhash.h"
#include "worker.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* shape - attach d's budgets: its own, under key, with the limits of the domain's
 * rule (dom_rule), else the default rule (a --shaping file's, else the command
 * line's), and its provider's, matched by the MX host names. In relay mode only a
 * --shaping file's default applies (the built-in per-destination default is for MX
 * destinations; the relay's concurrency is --connections). */
static void shape(struct worker *w, struct dest *d, const char *key,
                  const struct shaping_rule *dom_rule)
{
	const struct engine_config *c = w->cfg;
	const struct shaping_rule *def = shaping_default(c->shaping);
	struct shaping_limits lim = { 0 };
	if (dom_rule)
		lim = dom_rule->lim;
	else if (def && c->user_default)
		lim = def->lim;
	if (lim.connections == 0) /* unset: --connections (relay), --max-connections-per-destination */
		lim.connections = c->mx ? c->dest_limit : c->connections;
	const char *hosts[ROUTE_MAX_HOSTS];
	unsigned n = d->nhost < ROUTE_MAX_HOSTS ? d->nhost : ROUTE_MAX_HOSTS;
	for (unsigned i = 0; i < n; i++)
		hosts[i] = d->host[i].name;
	const struct shaping_rule *p = shaping_provider(c->shaping, hosts, n);
	d->own = budget_dest(key, &lim);
	d->prov = budget_provider(p);
	d->max_msgs = lim.msgs_per_conn;
	if (p && p->lim.msgs_per_conn && (!d->max_msgs || p->lim.msgs_per_conn < d->max_msgs))
		d->max_msgs = p->lim.msgs_per_conn;
}

/* dest_alloc - an empty destination with n hosts and its key, or NULL. */
static struct dest *dest_alloc(const char *key, unsigned n)
{
	struct dest *d = calloc(1, sizeof *d);
	if (d && (d->host = calloc(n, sizeof *d->host)) && (d->key = strdup(key))) {
		d->nhost = n;
		return d;
	}
	if (d)
		free(d->host);
	free(d);
	return NULL;
}

/* relay_dest - the single destination of relay mode. */
static struct dest *relay_dest(struct worker *w)
{
	const struct engine_config *c = w->cfg;
	struct dest *d = dest_alloc("relay", 1);
	if (!d)
		return NULL;
	snprintf(d->host[0].name, sizeof d->host[0].name, "%s", c->relay_host);
	shape(w, d, "relay", NULL);
	d->good = -1;
	d->naddr = 1;
	d->addr[0].sa = c->addr;
	d->addr[0].len = c->addr_len;
	d->ready = true;
	snprintf(d->addr[0].server, sizeof d->addr[0].server, "%s", c->relay_server);
	snprintf(d->addr[0].ip, sizeof d->addr[0].ip, "%s", c->relay_ip);
	return d;
}

/* route_setup - tables, and the relay destination or the resolver. */
int route_setup(struct worker *w)
{
	w->dst = calloc(DEST_BUCKETS, sizeof *w->dst);
	if (!w->dst)
		return -1;
	if (!w->cfg->mx) {
		w->relay = relay_dest(w);
		return w->relay && w->relay->own ? 0 : -1;
	}
	w->dom = calloc(DOMAIN_BUCKETS, sizeof *w->dom);
	if (!w->dom)
		return -1;
	return resolver_init(&w->res, &w->ring, w->id, &w->cfg->dns, OP_DNS, route_dns_done, w);
}

/* flush_queue - give every recipient of q the outcome f (tried at d's address f->ai, if any). */
static void flush_queue(struct worker *w, struct rqueue *q, const struct route_fail *f,
                        const struct dest *d)
{
	struct rcpt r;
	while (rq_pop(&w->pool, q, &r))
		emit_fail(w, &r, f, d);
}

/* dest_free - give d's queued recipients why (if any), then free d. */
static void dest_free(struct worker *w, struct dest *d, const struct route_fail *why)
{
	if (why) {
		flush_queue(w, &d->q, why, NULL);
		flush_queue(w, &d->rq, why, NULL);
	}
	tls_session_free(d->tls_session);
	free(d->host);
	free(d->key);
	free(d);
}

/* route_teardown - every queued recipient gets why; free the tables. */
void route_teardown(struct worker *w, const struct route_fail *why)
{
	if (w->cfg->mx)
		resolver_abandon(&w->res); /* before the names go: other threads must not wait on us */
	for (unsigned b = 0; w->dom && b < DOMAIN_BUCKETS; b++) {
		for (struct domain *d = w->dom[b], *n; d; d = n) {
			n = d->hnext;
			flush_queue(w, &d->q, why, NULL);
			free(d->alias);
			free(d->fail);
			free(d);
		}
	}
	for (unsigned b = 0; w->dst && b < DEST_BUCKETS; b++) {
		for (struct dest *d = w->dst[b], *n; d; d = n) {
			n = d->hnext;
			dest_free(w, d, why);
		}
	}
	if (w->relay)
		dest_free(w, w->relay, why);
	if (w->cfg->mx)
		resolver_free(&w->res);
	free(w->dom);
	free(w->dst);
	w->dom = NULL;
	w->dst = NULL;
	w->relay = NULL;
	w->want = NULL;
}

/* route_want - d has recipients waiting: consider it for sessions. */
void route_want(struct worker *w, struct dest *d)
{
	if (d->wanting || !d->ready || d->down)
		return;
	d->wanting = true;
	d->wnext = w->want;
	w->want = d;
}

static void dest_lookups(struct worker *w, struct dest *d);

/* revive - a destination down for a temporary reason gets another chance. Every
 * address it had failed (or it had none), so its hosts are looked up again first:
 * through the shared cache, which asks the DNS again once the answers' TTL is over
 * (an MX host that moved during a long run is found at its new address). */
static void revive(struct worker *w, struct dest *d)
{
	d->down = false;
	d->cursor = 0;
	d->retry_at = 0;
	if (w->relay == d || d->nconn > 0 || d->pending_lookups > 0)
		return; /* sessions still bound to it use its address list */
	d->ready = false;
	d->naddr = 0;
	d->addr_gen++;
	d->good = -1;
	for (unsigned i = 0; i < d->nhost; i++) {
		d->host[i].n4 = d->host[i].n6 = 0;
		d->host[i].nx = false;
	}
	dest_lookups(w, d);
}

/* revive_due - revive d if it is down for a temporary reason whose pause is over. */
static void revive_due(struct worker *w, struct dest *d)
{
	if (d->down && d->fail.status == RS_DEFERRED && w->now >= d->down_until)
		revive(w, d);
}

/* enqueue - queue r on destination d (or give it d's failure). */
static void enqueue(struct worker *w, struct dest *d, const struct rcpt *r)
{
	revive_due(w, d);
	if (d->down) {
		emit_fail(w, r, &d->fail, d);
		return;
	}
	if (!rq_push(&w->pool, r->retry ? &d->rq : &d->q, r)) { /* callers keep room: a guard */
		struct route_fail f;
		route_set_fail(&f, RS_DEFERRED, 0, "4.3.0", "internal queue full");
		emit_fail(w, r, &f, d);
		return;
	}
	route_want(w, d);
}

/* route_dest_failed - every address of d failed: its recipients get d->fail. */
void route_dest_failed(struct worker *w, struct dest *d)
{
	d->down = true;
	d->down_until = w->now + w->cfg->retry_initial / 2; /* before the first retry is due */
	flush_queue(w, &d->q, &d->fail, d);
	flush_queue(w, &d->rq, &d->fail, d);
}

/* domain_find - this thread's entry for a domain name, or NULL. */
static struct domain *domain_find(struct worker *w, const char *name, uint32_t h)
{
	for (struct domain *d = w->dom[h % DOMAIN_BUCKETS]; d; d = d->hnext)
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

/* domain_new - remember a domain and start its MX lookup. */
static struct domain *domain_new(struct worker *w, const char *name, uint32_t h)
{
	if (w->ndom >= ROUTE_MAX_DOMAINS)
		return NULL;
	size_t len = strlen(name);
	struct domain *d = calloc(1, sizeof *d + len + 1);
	if (!d)
		return NULL;
	memcpy(d->name, name, len + 1);
	d->hnext = w->dom[h % DOMAIN_BUCKETS];
	w->dom[h % DOMAIN_BUCKETS] = d;
	w->ndom++;
	d->lk.name = d->name;
	d->lk.type = DNS_MX;
	d->lk.owner = d;
	return d;
}

/* rcpt_domain - the recipient's domain, lower-cased into out; false for none or a literal.
 * Unquoted fields are the address itself, so the common case needs no decoding. */
static bool rcpt_domain(const struct rcpt *r, char *out, size_t cap)
{
	char addr[ADDR_MAX_MAILBOX + 1];
	const char *a = r->raw;
	size_t n = r->raw_len;
	if (r->quoted) {
		n = rcpt_addr(r, addr);
		a = addr;
	}
	return route_domain_of(a, n, out, cap);
}

/* no_route - the outcome for a recipient whose domain cannot be looked up. */
static void no_route(struct worker *w, const struct rcpt *r)
{
	struct route_fail f;
	route_set_fail(&f, RS_FAILED, 0, NULL, "cannot route: the domain is an address "
	               "literal or not an ASCII host name (IDN is not supported yet)");
	emit_fail(w, r, &f, NULL);
}

/* domain_ask_again - a new MX lookup of the domain from its own name, with r parked
 * on it meanwhile. */
static void domain_ask_again(struct worker *w, struct domain *d, const struct rcpt *r)
{
	d->cnames = 0;
	d->lk.name = d->name;
	rq_push(&w->pool, &d->q, r);
	resolver_lookup(&w->res, &d->lk, w->now);
}

/* route_one - queue or park one recipient by its domain (MX mode). */
static void route_one(struct worker *w, const struct rcpt *r)
{
	char dom[DNS_MAX_NAME + 1];
	if (!rcpt_domain(r, dom, sizeof dom)) {
		no_route(w, r);
		return;
	}
	uint32_t h = strhash(dom);
	struct domain *d = domain_find(w, dom, h);
	bool fresh = false;
	if (!d) {
		if (!dns_name_ok(dom)) {
			no_route(w, r);
			return;
		}
		d = domain_new(w, dom, h);
		fresh = d != NULL;
	}
	if (!d) {
		struct route_fail f;
		route_set_fail(&f, RS_DEFERRED, 0, "4.3.0", "too many domains in one thread (%u)",
		               ROUTE_MAX_DOMAINS);
		emit_fail(w, r, &f, NULL);
	} else if (d->failed && (d->fail->status != RS_DEFERRED || w->now < d->fail_until)) {
		emit_fail(w, r, d->fail, NULL);
	} else if (d->failed) { /* a temporary failure: look the domain up again */
		d->failed = false;
		domain_ask_again(w, d, r);
	} else if (d->dest && d->dest->down && w->now >= d->mx_expires &&
	           w->now >= d->dest->down_until) {
		/* Its MX set is down and its MX answer is old: ask again (the domain may
		 * have moved). */
		d->dest = NULL;
		domain_ask_again(w, d, r);
	} else if (d->dest) {
		enqueue(w, d->dest, r);
	} else {
		rq_push(&w->pool, &d->q, r);
		if (fresh)
			resolver_lookup(&w->res, &d->lk, w->now);
	}
}

/* route_rcpt - queue one recipient (fresh or retried) on its way to a destination. */
void route_rcpt(struct worker *w, const struct rcpt *r)
{
	if (w->relay)
		enqueue(w, w->relay, r);
	else
		route_one(w, r);
}

/* route_feed - read up to max recipients from the slice into queues. */
void route_feed(struct worker *w, unsigned max)
{
	struct rcpt r;
	for (unsigned i = 0; i < max && rpool_room(&w->pool) && work_left(w); i++) {
		if (!take(w, &r))
			break;
		route_rcpt(w, &r);
	}
}

/* wanted_sessions - sessions worth opening for d now. */
static unsigned wanted_sessions(const struct worker *w, const struct dest *d)
{
	unsigned per = w->cfg->smtp.max_rcpts;
	unsigned want = (dest_waiting(d) + per - 1) / per;
	if (w->cfg->smtp.auth_user && !d->auth_ok)
		want = want > 0 ? 1 : 0; /* one session proves the credentials before the others try */
	return want;
}

/* route_schedule - bind free sessions to destinations with waiting recipients,
 * within each destination's limit (counted across all threads). */
void route_schedule(struct worker *w)
{
	struct dest **pp = &w->want;
	if (engine_stopping())
		return;
	while (*pp) {
		struct dest *d = *pp;
		/* The budgets (budget.c) hold the limits over all threads: connections
		 * (compare-and-swap, so two threads cannot both take the last slot), the
		 * connection rate, and the pause after a 421. */
		while (w->nidle > 0 && dest_waiting(d) > 0 && !d->down && d->naddr > 0 && d->retry_at <= w->now &&
		       d->nconn < wanted_sessions(w, d) && budget_reserve(d->own, d->prov, w->now))
			session_bind(&w->sess[w->idle[--w->nidle]], d);
		if (dest_waiting(d) == 0 || d->down) {
			d->wanting = false;
			*pp = d->wnext;
		} else {
			pp = &d->wnext;
		}
	}
}

/* route_busy - DNS outstanding (then queues may still fill). */
bool route_busy(const struct worker *w)
{
	return w->cfg->mx && resolver_busy(&w->res);
}

/* ---- DNS answers ---- */

/* dest_find - this thread's destination for key, or NULL. */
static struct dest *dest_find(struct worker *w, const char *key, uint32_t h)
{
	for (struct dest *d = w->dst[h % DEST_BUCKETS]; d; d = d->hnext)
		if (strcmp(d->key, key) == 0)
			return d;
	return NULL;
}

/* dest_lookups - start the address lookups of every host of d. */
static void dest_lookups(struct worker *w, struct dest *d)
{
	for (unsigned i = 0; i < d->nhost; i++) {
		struct dhost *h = &d->host[i];
		h->lk4 = (struct lookup){ .name = h->name, .type = DNS_A, .owner = d };
		h->lk6 = (struct lookup){ .name = h->name, .type = DNS_AAAA, .owner = d };
		d->pending_lookups += (w->cfg->want4 ? 1u : 0u) + (w->cfg->want6 ? 1u : 0u);
	}
	for (unsigned i = 0; i < d->nhost; i++) {
		if (w->cfg->want6)
			resolver_lookup(&w->res, &d->host[i].lk6, w->now);
		if (w->cfg->want4)
			resolver_lookup(&w->res, &d->host[i].lk4, w->now);
	}
}

/* dest_new - a destination for an MX list (hosts in preference order, equal ones shuffled). */
static struct dest *dest_new(struct worker *w, const char *key, uint32_t h,
                             const struct dns_mx *mx, unsigned n, const struct shaping_rule *dr)
{
	struct dest *d = dest_alloc(key, n);
	if (!d)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		snprintf(d->host[i].name, sizeof d->host[i].name, "%s", mx[i].host);
		d->host[i].pref = mx[i].pref;
	}
	route_order(d->host, n);
	shape(w, d, key, dr);
	if (!d->own) {
		dest_free(w, d, NULL);
		return NULL;
	}
	d->good = -1;
	d->hnext = w->dst[h % DEST_BUCKETS];
	w->dst[h % DEST_BUCKETS] = d;
	dest_lookups(w, d);
	return d;
}

/* domain_fail - the domain cannot be delivered to: its parked recipients get f. */
static void domain_fail(struct worker *w, struct domain *dm, const struct route_fail *f)
{
	if (!dm->fail)
		dm->fail = malloc(sizeof *dm->fail);
	if (dm->fail) { /* without memory to remember it, the next recipient asks again */
		*dm->fail = *f;
		dm->failed = true;
		dm->fail_until = w->now + w->cfg->retry_initial / 2;
	}
	flush_queue(w, &dm->q, f, NULL);
}

/* on_mx - the MX answer of a domain: fail it, or attach it to its destination. */
static void on_mx(struct worker *w, struct domain *dm, const struct dns_answer *a)
{
	struct route_fail f;
	struct dns_mx implicit[1];
	const struct dns_mx *mx = a->mx;
	unsigned n = a->nmx;
	if (a->status == DNS_NXDOMAIN) {
		route_set_fail(&f, RS_BOUNCED, 0, "5.1.2", "domain %s does not exist (NXDOMAIN)", dm->name);
		domain_fail(w, dm, &f);
		return;
	}
	if (a->status != DNS_OK && a->status != DNS_NODATA) {
		route_set_fail(&f, RS_DEFERRED, 0, "4.4.3", "DNS lookup of %s MX failed: %s", dm->name,
		               a->why ? a->why : "server failure");
		domain_fail(w, dm, &f);
		return;
	}
	if (a->status == DNS_NODATA && !a->why && a->canon[0] &&
	    strcasecmp(a->canon, dm->lk.name) != 0) {
		/* The answer was a CNAME alone, without the target's records: ask for the target. */
		if (++dm->cnames > DNS_MAX_CNAME) {
			route_set_fail(&f, RS_DEFERRED, 0, "4.4.3", "DNS lookup of %s MX: CNAME chain "
			               "longer than %u", dm->name, DNS_MAX_CNAME);
			domain_fail(w, dm, &f);
			return;
		}
		char *alias = strdup(a->canon);
		if (!alias) {
			route_set_fail(&f, RS_DEFERRED, 0, "4.3.0", "out of memory routing %s", dm->name);
			domain_fail(w, dm, &f);
			return;
		}
		free(dm->alias);
		dm->alias = alias;
		dm->lk.name = dm->alias;
		resolver_lookup(&w->res, &dm->lk, w->now);
		return;
	}
	if (a->null_mx) {
		route_set_fail(&f, RS_BOUNCED, 0, "5.1.10", "domain %s accepts no mail (null MX, "
		               "RFC 7505)", dm->name);
		domain_fail(w, dm, &f);
		return;
	}
	struct dns_mx named[DNS_MAX_MX];
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++) /* a "0 ." among other MX records names no host */
		if (mx[i].host[0])
			named[k++] = mx[i];
	mx = named;
	n = k;
	if (a->status == DNS_NODATA || n == 0) { /* RFC 5321 5.1: the implicit MX */
		implicit[0].pref = 0;
		snprintf(implicit[0].host, sizeof implicit[0].host, "%s", dm->lk.name);
		mx = implicit;
		n = 1;
	}
	char key[4096];
	const struct shaping_rule *dr = shaping_domain(w->cfg->shaping, dm->name);
	size_t off = dr ? (size_t)snprintf(key, sizeof key, "domain:%s ", dm->name) : 0;
	route_key(mx, n, key + off, sizeof key - off); /* a domain with its own rule: its own destination */
	uint32_t h = strhash(key);
	struct dest *d = dest_find(w, key, h);
	if (!d)
		d = dest_new(w, key, h, mx, n, dr);
	if (!d) {
		route_set_fail(&f, RS_DEFERRED, 0, "4.3.0", "out of memory routing %s", dm->name);
		domain_fail(w, dm, &f);
		return;
	}
	dm->dest = d;
	dm->mx_expires = w->now + (int64_t)a->ttl * 1000;
	revive_due(w, d);
	if (d->down) {
		flush_queue(w, &dm->q, &d->fail, d);
		return;
	}
	rq_move(&w->pool, &d->q, &dm->q);
	route_want(w, d);
}

/* on_addr - an A or AAAA answer for one host of d; when all are in, d is ready. */
static void on_addr(struct worker *w, struct dest *d, struct lookup *lk,
                    const struct dns_answer *a)
{
	struct dhost *h = lk->type == DNS_A ? (struct dhost *)((char *)lk - offsetof(struct dhost, lk4))
	                                    : (struct dhost *)((char *)lk - offsetof(struct dhost, lk6));
	unsigned *n = lk->type == DNS_A ? &h->n4 : &h->n6;
	struct dns_addr *dst = lk->type == DNS_A ? h->a4 : h->a6;
	for (unsigned i = 0; a->status == DNS_OK && i < a->naddr && *n < 8; i++)
		dst[(*n)++] = a->addr[i];
	if (a->status == DNS_NXDOMAIN)
		h->nx = true;
	if (--d->pending_lookups > 0)
		return;
	d->ready = true;
	if (route_addrs(d, w->cfg->want4, w->cfg->want6, w->cfg->port) == 0) {
		route_set_fail(&d->fail, RS_DEFERRED, 0, "4.4.3", "no %saddress found for the mail "
		               "exchangers (%s)", w->cfg->want4 && w->cfg->want6 ? "" :
		               w->cfg->want4 ? "IPv4 " : "IPv6 ", d->key);
		route_dest_failed(w, d);
		return;
	}
	route_want(w, d);
}

/* route_dns_done - a lookup finished (from the wire or the cache). */
void route_dns_done(void *ctx, struct lookup *lk, const struct dns_answer *a)
{
	struct worker *w = ctx;
	if (lk->type == DNS_MX)
		on_mx(w, lk->owner, a);
	else
		on_addr(w, lk->owner, lk, a);
}
