/* test_route.c - routing helpers: recipient queues, MX keys and ordering, address lists. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <string.h>
#include "route.h"

Test(route, queue_fifo_and_bounded_pool)
{
	struct rpool p;
	struct rqueue a = {0}, b = {0};
	struct rcpt r = {0}, out;
	cr_assert_eq(rpool_init(&p, 3), 0);
	for (uint64_t i = 1; i <= 3; i++) {
		r.line = i;
		cr_assert(rq_push(&p, i == 2 ? &b : &a, &r));
	}
	r.line = 4;
	cr_assert_not(rq_push(&p, &a, &r), "pool of 3 is full");
	cr_assert_not(rpool_room(&p));
	rq_move(&p, &a, &b);
	cr_assert_eq(a.n, 3);
	cr_assert_eq(b.n, 0);
	uint64_t want[] = {1, 3, 2};
	for (int i = 0; i < 3; i++) {
		cr_assert(rq_pop(&p, &a, &out));
		cr_assert_eq(out.line, want[i]);
	}
	cr_assert_not(rq_pop(&p, &a, &out));
	cr_assert(rpool_room(&p));
	cr_assert_eq(p.used, 0);
	rpool_free(&p);
}

Test(route, key_is_order_independent)
{
	struct dns_mx a[2] = {{20, "mx2.example.org"}, {10, "mx1.example.org"}};
	struct dns_mx b[2] = {{10, "mx1.example.org"}, {20, "mx2.example.org"}};
	char ka[256], kb[256];
	route_key(a, 2, ka, sizeof ka);
	route_key(b, 2, kb, sizeof kb);
	cr_assert_str_eq(ka, "10 mx1.example.org,20 mx2.example.org");
	cr_assert_str_eq(ka, kb);
	struct dns_mx c[2] = {{10, "mx1.example.org"}, {30, "mx2.example.org"}};
	route_key(c, 2, kb, sizeof kb);
	cr_assert_str_neq(ka, kb, "a different preference is a different destination");
}

Test(route, order_by_preference_shuffles_ties)
{
	struct dhost h[5];
	unsigned prefs[5] = {30, 10, 20, 10, 10};
	bool first_seen[5] = {false};
	for (int round = 0; round < 200; round++) {
		memset(h, 0, sizeof h);
		for (unsigned i = 0; i < 5; i++) {
			h[i].pref = (uint16_t)prefs[i];
			h[i].name[0] = (char)('a' + i);
		}
		route_order(h, 5);
		for (unsigned i = 1; i < 5; i++)
			cr_assert(h[i - 1].pref <= h[i].pref);
		cr_assert_eq(h[3].pref, 20);
		cr_assert_eq(h[4].pref, 30);
		first_seen[h[0].name[0] - 'a'] = true;
	}
	cr_assert(first_seen[1] && first_seen[3] && first_seen[4],
	          "every host of the lowest preference comes first sometimes");
}

Test(route, addresses_v6_first_then_v4_per_host)
{
	static struct dest d;
	struct dhost hosts[2];
	memset(&d, 0, sizeof d);
	memset(hosts, 0, sizeof hosts);
	d.host = hosts;
	d.nhost = 2;
	hosts[0].n4 = 1;
	hosts[0].a4[0].family = AF_INET;
	inet_pton(AF_INET, "127.0.0.2", &hosts[0].a4[0].a.v4);
	hosts[0].n6 = 1;
	hosts[0].a6[0].family = AF_INET6;
	inet_pton(AF_INET6, "::1", &hosts[0].a6[0].a.v6);
	hosts[1].n4 = 1;
	hosts[1].a4[0].family = AF_INET;
	inet_pton(AF_INET, "127.0.0.3", &hosts[1].a4[0].a.v4);
	cr_assert_eq(route_addrs(&d, true, true, 2525), 3);
	cr_assert_str_eq(d.addr[0].server, "[::1]:2525");
	cr_assert_str_eq(d.addr[1].server, "127.0.0.2:2525");
	cr_assert_str_eq(d.addr[2].ip, "127.0.0.3");
	cr_assert_eq(d.addr[2].host, 1);
	cr_assert_eq(route_addrs(&d, true, false, 25), 2);
	cr_assert_str_eq(d.addr[0].server, "127.0.0.2:25");
	cr_assert_eq(route_addrs(&d, false, true, 25), 1);
}

Test(route, domain_of)
{
	char out[256];
	cr_assert(route_domain_of("a@Example.ORG", 13, out, sizeof out));
	cr_assert_str_eq(out, "example.org");
	cr_assert(route_domain_of("\"x@y\"@b.test", 12, out, sizeof out));
	cr_assert_str_eq(out, "b.test");
	cr_assert_not(route_domain_of("a@[127.0.0.1]", 13, out, sizeof out));
	cr_assert_not(route_domain_of("nodomain", 8, out, sizeof out));
}
