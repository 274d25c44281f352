/* test_dnscache.c - the shared DNS cache: one query per name, waiters handed over
 * when the answer is stored, and when the asking thread abandons its query. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "dnscache.h"

#define NOW 1000000 /* ms: any time */

static struct dns_answer scratch;

/* setup - a fresh cache for two threads, before every test. */
static void setup(void)
{
	dnscache_free();
	dnscache_init(2);
}

/* teardown - release the cache after every test. */
static void teardown(void)
{
	dnscache_free();
}

/* one_mx - an answer with one MX record and a TTL of ttl seconds. */
static struct dns_answer *one_mx(uint32_t ttl)
{
	static struct dns_answer a;
	memset(&a, 0, sizeof a);
	a.status = DNS_OK;
	a.ttl = ttl;
	a.nmx = 1;
	a.mx[0].pref = 10;
	strcpy(a.mx[0].host, "mx.example.org");
	strcpy(a.canon, "example.org");
	return &a;
}

/* ready_one - thread tid's single ready waiter, or NULL when there is none. */
static void *ready_one(unsigned tid)
{
	void *out[4];
	unsigned n = dnscache_ready(tid, out, 4);
	cr_assert_leq(n, 1);
	return n ? out[0] : NULL;
}

TestSuite(dnscache, .init = setup, .fini = teardown);

Test(dnscache, second_asker_waits_and_gets_the_answer)
{
	int tag;
	cr_assert_eq(dnscache_get("example.org", DNS_MX, 0, NOW, &scratch, NULL), DC_QUERY);
	cr_assert_eq(dnscache_get("EXAMPLE.org", DNS_MX, 1, NOW, &scratch, &tag), DC_WAIT);
	cr_assert_null(ready_one(1), "nothing is ready before the answer");
	dnscache_put("example.org", DNS_MX, one_mx(300), NOW);
	cr_assert_eq(ready_one(1), &tag);
	cr_assert_eq(dnscache_get("example.org", DNS_MX, 1, NOW + 1000, &scratch, &tag), DC_HIT);
	cr_assert_eq(scratch.nmx, 1);
	cr_assert_str_eq(scratch.mx[0].host, "mx.example.org");
	cr_assert_eq(dnscache_queries(), 1);
}

Test(dnscache, expired_answer_is_asked_again)
{
	cr_assert_eq(dnscache_get("example.org", DNS_MX, 0, NOW, &scratch, NULL), DC_QUERY);
	dnscache_put("example.org", DNS_MX, one_mx(60), NOW);
	cr_assert_eq(dnscache_get("example.org", DNS_MX, 1, NOW + 59999, &scratch, NULL), DC_HIT);
	cr_assert_eq(dnscache_get("example.org", DNS_MX, 1, NOW + 60000, &scratch, NULL), DC_QUERY);
}

Test(dnscache, abandoned_query_hands_its_waiters_back)
{
	int tag;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	cr_assert_geq(efd, 0);
	dnscache_set_wake(1, efd);
	cr_assert_eq(dnscache_get("example.org", DNS_MX, 0, NOW, &scratch, NULL), DC_QUERY);
	cr_assert_eq(dnscache_get("example.org", DNS_MX, 1, NOW, &scratch, &tag), DC_WAIT);
	dnscache_abandon("example.org", DNS_MX); /* thread 0 ends before its answer */
	uint64_t v = 0;
	cr_assert_eq(read(efd, &v, sizeof v), (ssize_t)sizeof v, "the waiting thread was woken");
	cr_assert_eq(ready_one(1), &tag);
	/* The woken thread asks again and now owns the query; thread 0 would wait on it. */
	cr_assert_eq(dnscache_get("example.org", DNS_MX, 1, NOW, &scratch, &tag), DC_QUERY);
	cr_assert_eq(dnscache_get("example.org", DNS_MX, 0, NOW, &scratch, NULL), DC_WAIT);
	dnscache_set_wake(1, -1);
	close(efd);
}

Test(dnscache, abandon_leaves_a_stored_answer_alone)
{
	cr_assert_eq(dnscache_get("example.org", DNS_MX, 0, NOW, &scratch, NULL), DC_QUERY);
	dnscache_put("example.org", DNS_MX, one_mx(300), NOW);
	dnscache_abandon("example.org", DNS_MX);
	dnscache_abandon("unknown.example", DNS_MX);
	cr_assert_eq(dnscache_get("example.org", DNS_MX, 1, NOW, &scratch, NULL), DC_HIT);
}
