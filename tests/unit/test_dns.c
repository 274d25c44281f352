/* test_dns.c - DNS packets: queries, answers built as real wire packets with ldns, hostile bytes. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <ldns/ldns.h>
#include "dns.h"

#define QID       0x4242u        /* the ID of the query every answer below replies to */
#define FUZZ_RUNS 20000u         /* iterations of each random-input loop */
#define FUZZ_MAX  600u           /* longest random packet */

static uint8_t wire[DNS_MAX_PACKET + 16];
static struct dns_answer ans;

/* pkt_new - an empty response (QR=1, RD, RA, NOERROR) with one question "name. IN TYPE". */
static ldns_pkt *pkt_new(uint16_t id, const char *question)
{
	ldns_pkt *p = ldns_pkt_new();
	ldns_rr *q = NULL;

	cr_assert_not_null(p);
	ldns_pkt_set_id(p, id);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_rd(p, true);
	ldns_pkt_set_ra(p, true);
	cr_assert_eq(ldns_rr_new_question_frm_str(&q, question, NULL, NULL), LDNS_STATUS_OK, "%s", question);
	cr_assert(ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, q));
	return p;
}

/* pkt_add - one record in presentation format into a section. */
static void pkt_add(ldns_pkt *p, ldns_pkt_section sec, const char *text)
{
	ldns_rr *rr = NULL;

	cr_assert_eq(ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL), LDNS_STATUS_OK, "%s", text);
	cr_assert(ldns_pkt_push_rr(p, sec, rr));
}

/* pkt_wire - the packet as wire bytes in the shared buffer; frees the packet. */
static size_t pkt_wire(ldns_pkt *p)
{
	uint8_t *w = NULL;
	size_t n = 0;

	cr_assert_eq(ldns_pkt2wire(&w, p, &n), LDNS_STATUS_OK);
	cr_assert(n > 0 && n <= sizeof wire);
	memcpy(wire, w, n);
	LDNS_FREE(w);
	ldns_pkt_free(p);
	return n;
}

/* answer - a NOERROR response to "example.org IN qtype" with the given answer records. */
static size_t answer(const char *question, const char *const *an)
{
	ldns_pkt *p = pkt_new(QID, question);
	for (; an && *an; an++)
		pkt_add(p, LDNS_SECTION_ANSWER, *an);
	return pkt_wire(p);
}

/* parse - dns_parse on the shared buffer into the shared answer. */
static enum dns_status parse(size_t n, const char *name, enum dns_type type)
{
	return dns_parse(wire, n, QID, name, type, &ans);
}

/* check_sane - invariants every result must keep, whatever the input. */
static void check_sane(enum dns_status st, const struct dns_answer *a)
{
	cr_assert(st >= DNS_OK && st <= DNS_BAD);
	cr_assert_eq(st, a->status);
	cr_assert(a->nmx <= DNS_MAX_MX && a->naddr <= DNS_MAX_ADDRS);
	cr_assert_not_null(memchr(a->canon, '\0', sizeof a->canon));
	for (unsigned i = 0; i < a->nmx; i++)
		cr_assert_not_null(memchr(a->mx[i].host, '\0', sizeof a->mx[i].host));
	if (st == DNS_BAD)
		cr_assert_not_null(a->why);
	if (st == DNS_OK) {
		cr_assert(a->nmx + a->naddr > 0);
		cr_assert(a->ttl <= DNS_TTL_MAX);
	} else if (st == DNS_NODATA || st == DNS_NXDOMAIN) {
		cr_assert(a->ttl <= DNS_NEG_TTL_MAX);
	} else {
		cr_assert_eq(a->ttl, 0);
	}
}

/* rnd - xorshift32 with a caller-held state: fixed seeds make every run the same. */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* ---- dns_query ---- */

Test(dns_query, round_trips_through_ldns)
{
	uint8_t q[512];
	size_t n = dns_query(0xbeef, "Mail.Example.org", DNS_MX, q, sizeof q);
	ldns_pkt *p = NULL;
	const ldns_rr *qr;
	char *owner;

	cr_assert(n > 12);
	cr_assert_eq(ldns_wire2pkt(&p, q, n), LDNS_STATUS_OK);
	cr_assert_eq(ldns_pkt_id(p), 0xbeef);
	cr_assert(ldns_pkt_rd(p));
	cr_assert(!ldns_pkt_qr(p));
	cr_assert_eq(ldns_pkt_get_opcode(p), LDNS_PACKET_QUERY);
	cr_assert_eq(ldns_pkt_qdcount(p), 1);
	cr_assert_eq(ldns_pkt_ancount(p), 0);
	qr = ldns_rr_list_rr(ldns_pkt_question(p), 0);
	owner = ldns_rdf2str(ldns_rr_owner(qr));
	cr_assert_str_eq(owner, "Mail.Example.org.");
	LDNS_FREE(owner);
	cr_assert_eq(ldns_rr_get_type(qr), LDNS_RR_TYPE_MX);
	cr_assert_eq(ldns_rr_get_class(qr), LDNS_RR_CLASS_IN);
	cr_assert(ldns_pkt_edns(p));
	cr_assert_eq(ldns_pkt_edns_udp_size(p), DNS_UDP_PAYLOAD);
	cr_assert(!ldns_pkt_edns_do(p));
	cr_assert_eq(q[10] << 8 | q[11], 1, "the OPT record is the one additional record");
	ldns_pkt_free(p);
}

Test(dns_query, a_and_aaaa_types)
{
	uint8_t q[512];
	size_t n = dns_query(7, "mx1.example.org", DNS_A, q, sizeof q);
	ldns_pkt *p = NULL;

	cr_assert_eq(ldns_wire2pkt(&p, q, n), LDNS_STATUS_OK);
	cr_assert_eq(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_question(p), 0)), LDNS_RR_TYPE_A);
	ldns_pkt_free(p);
	n = dns_query(8, "mx1.example.org", DNS_AAAA, q, sizeof q);
	cr_assert_eq(ldns_wire2pkt(&p, q, n), LDNS_STATUS_OK);
	cr_assert_eq(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_question(p), 0)), LDNS_RR_TYPE_AAAA);
	cr_assert_eq(ldns_pkt_id(p), 8);
	ldns_pkt_free(p);
}

Test(dns_query, invalid_name_or_small_buffer)
{
	uint8_t q[512];
	size_t n = dns_query(1, "example.org", DNS_MX, q, sizeof q);

	cr_assert(n > 0);
	cr_assert_eq(dns_query(1, "example.org", DNS_MX, q, n), n, "an exact fit is enough");
	cr_assert_eq(dns_query(1, "example.org", DNS_MX, q, n - 1), 0);
	cr_assert_eq(dns_query(1, "example.org.", DNS_MX, q, sizeof q), 0);
	cr_assert_eq(dns_query(1, "exa mple.org", DNS_MX, q, sizeof q), 0);
	cr_assert_eq(dns_query(1, "", DNS_MX, q, sizeof q), 0);
	cr_assert_eq(dns_query(1, "example.org", (enum dns_type)16, q, sizeof q), 0);
}

Test(dns_query, answer_to_own_query_matches)
{
	/* What we send and what we accept agree on the question. */
	uint8_t q[512];
	size_t n = dns_query(QID, "Example.ORG", DNS_MX, q, sizeof q);
	ldns_pkt *p = NULL;

	cr_assert_eq(ldns_wire2pkt(&p, q, n), LDNS_STATUS_OK);
	ldns_pkt_set_qr(p, true);
	pkt_add(p, LDNS_SECTION_ANSWER, "example.org. 300 IN MX 10 mx.example.org.");
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "Example.ORG", DNS_MX), DNS_OK);
	cr_assert_str_eq(ans.mx[0].host, "mx.example.org");
}

/* ---- MX answers ---- */

Test(dns_parse, mx_sorted_stable_lowercase)
{
	const char *an[] = {
		"example.org. 300 IN MX 30 c.example.org.",
		"example.org. 300 IN MX 10 A1.Example.ORG.",
		"example.org. 200 IN MX 20 b.example.org.",
		"example.org. 300 IN MX 10 a2.example.org.",
		NULL,
	};
	size_t n = answer("example.org. IN MX", an);

	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_OK);
	cr_assert_eq(ans.nmx, 4);
	cr_assert_eq(ans.mx[0].pref, 10);
	cr_assert_str_eq(ans.mx[0].host, "a1.example.org");
	cr_assert_eq(ans.mx[1].pref, 10);
	cr_assert_str_eq(ans.mx[1].host, "a2.example.org");
	cr_assert_str_eq(ans.mx[2].host, "b.example.org");
	cr_assert_eq(ans.mx[3].pref, 30);
	cr_assert(!ans.null_mx);
	cr_assert_eq(ans.ttl, 200);
	cr_assert_str_eq(ans.canon, "example.org");
	cr_assert_eq(ans.naddr, 0);
	cr_assert_null(ans.why);
}

Test(dns_parse, null_mx)
{
	const char *an[] = { "example.org. 3600 IN MX 0 .", NULL };
	size_t n = answer("example.org. IN MX", an);

	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_OK);
	cr_assert_eq(ans.nmx, 1);
	cr_assert_eq(ans.mx[0].pref, 0);
	cr_assert_str_eq(ans.mx[0].host, "");
	cr_assert(ans.null_mx);
	cr_assert_eq(ans.ttl, 3600);
}

Test(dns_parse, null_mx_mixed_or_nonzero_is_not_null)
{
	const char *mixed[] = { "example.org. 300 IN MX 10 mx.example.org.", "example.org. 300 IN MX 0 .", NULL };
	const char *pref10[] = { "example.org. 300 IN MX 10 .", NULL };
	size_t n = answer("example.org. IN MX", mixed);

	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_OK);
	cr_assert_eq(ans.nmx, 2);
	cr_assert(!ans.null_mx);
	cr_assert_str_eq(ans.mx[0].host, "", "the root target stays in the list, sorted first");
	cr_assert_str_eq(ans.mx[1].host, "mx.example.org");
	n = answer("example.org. IN MX", pref10);
	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_OK);
	cr_assert(!ans.null_mx);
}

Test(dns_parse, more_than_max_mx_keeps_best)
{
	ldns_pkt *p = pkt_new(QID, "example.org. IN MX");
	char rr[128];
	size_t n;

	for (unsigned i = 0; i < DNS_MAX_MX + 8; i++) {
		snprintf(rr, sizeof rr, "example.org. 300 IN MX %u mx%u.example.org.", DNS_MAX_MX + 8 - i, i);
		pkt_add(p, LDNS_SECTION_ANSWER, rr);
	}
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_OK);
	cr_assert_eq(ans.nmx, DNS_MAX_MX);
	for (unsigned i = 0; i < DNS_MAX_MX; i++)
		cr_assert_eq(ans.mx[i].pref, i + 1, "slot %u", i);
	cr_assert_str_eq(ans.mx[0].host, "mx39.example.org");
}

Test(dns_parse, more_than_max_mx_equal_prefs_keeps_first)
{
	ldns_pkt *p = pkt_new(QID, "example.org. IN MX");
	char rr[128], want[64];
	size_t n;

	for (unsigned i = 0; i < DNS_MAX_MX + 8; i++) {
		snprintf(rr, sizeof rr, "example.org. 300 IN MX 5 mx%u.example.org.", i);
		pkt_add(p, LDNS_SECTION_ANSWER, rr);
	}
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_OK);
	cr_assert_eq(ans.nmx, DNS_MAX_MX);
	for (unsigned i = 0; i < DNS_MAX_MX; i++) {
		snprintf(want, sizeof want, "mx%u.example.org", i);
		cr_assert_str_eq(ans.mx[i].host, want);
	}
	cr_assert(!ans.null_mx);
}

/* ---- addresses ---- */

Test(dns_parse, a_records)
{
	const char *an[] = {
		"mx.example.org. 120 IN A 192.0.2.1",
		"mx.example.org. 120 IN AAAA 2001:db8::1",
		"mx.example.org. 60 IN A 192.0.2.2",
		NULL,
	};
	struct in_addr a1, a2;
	size_t n = answer("mx.example.org. IN A", an);

	inet_pton(AF_INET, "192.0.2.1", &a1);
	inet_pton(AF_INET, "192.0.2.2", &a2);
	cr_assert_eq(parse(n, "mx.example.org", DNS_A), DNS_OK);
	cr_assert_eq(ans.naddr, 2);
	cr_assert_eq(ans.addr[0].family, AF_INET);
	cr_assert_eq(ans.addr[0].a.v4.s_addr, a1.s_addr);
	cr_assert_eq(ans.addr[1].a.v4.s_addr, a2.s_addr);
	cr_assert_eq(ans.ttl, 60);
	cr_assert_eq(ans.nmx, 0);
}

Test(dns_parse, aaaa_records)
{
	const char *an[] = {
		"mx.example.org. 120 IN A 192.0.2.1",
		"mx.example.org. 90 IN AAAA 2001:db8::25",
		NULL,
	};
	struct in6_addr a6;
	size_t n = answer("mx.example.org. IN AAAA", an);

	inet_pton(AF_INET6, "2001:db8::25", &a6);
	cr_assert_eq(parse(n, "mx.example.org", DNS_AAAA), DNS_OK);
	cr_assert_eq(ans.naddr, 1);
	cr_assert_eq(ans.addr[0].family, AF_INET6);
	cr_assert_eq(memcmp(&ans.addr[0].a.v6, &a6, sizeof a6), 0);
	cr_assert_eq(ans.ttl, 90);
}

Test(dns_parse, more_than_max_addrs)
{
	ldns_pkt *p = pkt_new(QID, "mx.example.org. IN A");
	char rr[128];
	size_t n;

	for (unsigned i = 0; i < DNS_MAX_ADDRS + 5; i++) {
		snprintf(rr, sizeof rr, "mx.example.org. %u IN A 10.0.0.%u", 1000 - i, i + 1);
		pkt_add(p, LDNS_SECTION_ANSWER, rr);
	}
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "mx.example.org", DNS_A), DNS_OK);
	cr_assert_eq(ans.naddr, DNS_MAX_ADDRS);
	cr_assert_eq(ntohl(ans.addr[DNS_MAX_ADDRS - 1].a.v4.s_addr), 0x0a000000u + DNS_MAX_ADDRS);
	cr_assert_eq(ans.ttl, 1000 - (DNS_MAX_ADDRS + 4), "TTL is the RRset minimum");
}

/* ---- CNAMEs ---- */

Test(dns_parse, cname_chain_to_mx)
{
	const char *an[] = {
		"example.org. 500 IN MX 1 ignored.example.org.",   /* beside a CNAME: not ours */
		"b.example.com. 400 IN MX 10 mx.b.example.com.",
		"example.org. 300 IN CNAME a.example.net.",
		"a.example.net. 50 IN CNAME B.Example.COM.",
		NULL,
	};
	size_t n = answer("example.org. IN MX", an);

	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_OK);
	cr_assert_str_eq(ans.canon, "b.example.com");
	cr_assert_eq(ans.nmx, 1);
	cr_assert_str_eq(ans.mx[0].host, "mx.b.example.com");
	cr_assert_eq(ans.ttl, 50, "the CNAME TTLs count");
}

Test(dns_parse, cname_chain_to_a)
{
	const char *an[] = {
		"www.example.org. 600 IN CNAME edge.cdn.example.",
		"edge.cdn.example. 600 IN CNAME host7.cdn.example.",
		"host7.cdn.example. 30 IN A 198.51.100.7",
		"edge.cdn.example. 30 IN A 198.51.100.99",          /* not the final name */
		NULL,
	};
	size_t n = answer("www.example.org. IN A", an);

	cr_assert_eq(parse(n, "www.example.org", DNS_A), DNS_OK);
	cr_assert_str_eq(ans.canon, "host7.cdn.example");
	cr_assert_eq(ans.naddr, 1);
	cr_assert_eq(ntohl(ans.addr[0].a.v4.s_addr), 0xc6336407u);
	cr_assert_eq(ans.ttl, 30);
}

Test(dns_parse, cname_chain_without_records_is_nodata)
{
	const char *an[] = { "example.org. 120 IN CNAME target.example.net.", NULL };
	size_t n = answer("example.org. IN MX", an);

	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_NODATA);
	cr_assert_str_eq(ans.canon, "target.example.net");
	cr_assert_eq(ans.ttl, 120, "default 300, but not longer than the CNAME");
	cr_assert_null(ans.why);
}

Test(dns_parse, cname_to_root_is_bad)
{
	const char *an[] = { "example.org. 300 IN CNAME .", NULL };
	size_t n = answer("example.org. IN MX", an);

	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_BAD);
	cr_assert_str_eq(ans.why, "unreadable CNAME target");
}

/* CNAME loops end in DNS_NODATA, canon at the name whose CNAME closes the loop,
 * why "CNAME loop"; the answer is from the server, so it is not DNS_BAD. */
Test(dns_parse, cname_loop_is_nodata, .timeout = 10)
{
	const char *an[] = {
		"example.org. 300 IN CNAME a.example.org.",
		"a.example.org. 300 IN CNAME b.example.org.",
		"b.example.org. 300 IN CNAME a.example.org.",
		"b.example.org. 300 IN A 192.0.2.1",
		NULL,
	};
	const char *self[] = { "example.org. 300 IN CNAME example.org.", NULL };
	size_t n = answer("example.org. IN MX", an);

	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_NODATA);
	cr_assert_str_eq(ans.why, "CNAME loop");
	cr_assert_str_eq(ans.canon, "b.example.org");
	n = answer("example.org. IN A", an);
	cr_assert_eq(parse(n, "example.org", DNS_A), DNS_OK, "records at the loop point are still read");
	n = answer("example.org. IN A", self);
	cr_assert_eq(parse(n, "example.org", DNS_A), DNS_NODATA);
	cr_assert_str_eq(ans.why, "CNAME loop");
	cr_assert_str_eq(ans.canon, "example.org");
}

/* chain - a CNAME chain of links from example.org to n<links>.example.org, then an A there. */
static size_t chain(unsigned links)
{
	ldns_pkt *p = pkt_new(QID, "example.org. IN A");
	char rr[128];

	for (unsigned i = 0; i < links; i++) {
		char from[32];
		if (i == 0)
			snprintf(from, sizeof from, "example.org.");
		else
			snprintf(from, sizeof from, "n%u.example.org.", i);
		snprintf(rr, sizeof rr, "%s %u IN CNAME n%u.example.org.", from, 1000 + i, i + 1);
		pkt_add(p, LDNS_SECTION_ANSWER, rr);
	}
	snprintf(rr, sizeof rr, "n%u.example.org. 5000 IN A 192.0.2.9", links);
	pkt_add(p, LDNS_SECTION_ANSWER, rr);
	return pkt_wire(p);
}

Test(dns_parse, cname_chain_limit)
{
	char want[32];
	size_t n = chain(DNS_MAX_CNAME);

	cr_assert_eq(parse(n, "example.org", DNS_A), DNS_OK);
	snprintf(want, sizeof want, "n%u.example.org", DNS_MAX_CNAME);
	cr_assert_str_eq(ans.canon, want);
	cr_assert_eq(ans.ttl, 1000);
	n = chain(DNS_MAX_CNAME + 1);
	cr_assert_eq(parse(n, "example.org", DNS_A), DNS_NODATA);
	cr_assert_str_eq(ans.why, "CNAME chain too long");
	cr_assert_str_eq(ans.canon, want, "stopped after DNS_MAX_CNAME links");
	cr_assert_eq(ans.naddr, 0);
}

/* ---- owners, names, case ---- */

Test(dns_parse, other_owners_ignored)
{
	const char *an[] = {
		"other.org. 300 IN MX 10 mx.other.org.",
		"sub.example.org. 300 IN MX 10 mx.sub.example.org.",
		"org. 300 IN MX 10 mx.org.",
		NULL,
	};
	const char *an2[] = { an[0], an[1], "example.org. 300 IN MX 20 mx.example.org.", NULL };
	size_t n = answer("example.org. IN MX", an);

	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_NODATA);
	cr_assert_eq(ans.nmx, 0);
	n = answer("example.org. IN MX", an2);
	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_OK);
	cr_assert_eq(ans.nmx, 1);
	cr_assert_str_eq(ans.mx[0].host, "mx.example.org");
}

Test(dns_parse, question_case_insensitive)
{
	const char *an[] = { "EXAMPLE.org. 300 IN MX 10 mx.example.org.", NULL };
	size_t n = answer("ExAmPlE.OrG. IN MX", an);

	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_OK);
	cr_assert_eq(ans.nmx, 1);
	cr_assert_eq(parse(n, "EXAMPLE.ORG", DNS_MX), DNS_OK);
	cr_assert_str_eq(ans.canon, "example.org");
	cr_assert_eq(parse(n, "example.org.", DNS_MX), DNS_OK, "one trailing dot is tolerated");
	cr_assert_eq(parse(n, "example.org..", DNS_MX), DNS_BAD);
}

Test(dns_parse, odd_octets_in_target_are_escaped)
{
	/* A target with a space and a dot inside a label cannot be confused with a host name. */
	const char *an[] = { "example.org. 300 IN MX 10 m\\032x\\.y.Example.org.", NULL };
	size_t n = answer("example.org. IN MX", an);

	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_OK);
	cr_assert_str_eq(ans.mx[0].host, "m\\032x\\.y.example.org");
	cr_assert(!dns_name_ok(ans.mx[0].host));
}

/* ---- negative answers and errors ---- */

Test(dns_parse, nxdomain_ttl_from_soa)
{
	ldns_pkt *p = pkt_new(QID, "nope.example.org. IN MX");
	size_t n;

	ldns_pkt_set_rcode(p, LDNS_RCODE_NXDOMAIN);
	pkt_add(p, LDNS_SECTION_AUTHORITY, "example.org. 3600 IN SOA ns.example.org. host.example.org. 1 7200 900 1209600 120");
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "nope.example.org", DNS_MX), DNS_NXDOMAIN);
	cr_assert_eq(ans.ttl, 120);
	cr_assert_eq(ans.nmx, 0);
	cr_assert_str_eq(ans.canon, "nope.example.org");

	p = pkt_new(QID, "nope.example.org. IN MX");
	ldns_pkt_set_rcode(p, LDNS_RCODE_NXDOMAIN);
	pkt_add(p, LDNS_SECTION_AUTHORITY, "example.org. 60 IN SOA ns.example.org. host.example.org. 1 7200 900 1209600 900");
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "nope.example.org", DNS_MX), DNS_NXDOMAIN);
	cr_assert_eq(ans.ttl, 60, "the SOA record's own TTL when smaller");
}

Test(dns_parse, negative_ttl_default_and_cap)
{
	ldns_pkt *p = pkt_new(QID, "nope.example.org. IN A");
	size_t n;

	ldns_pkt_set_rcode(p, LDNS_RCODE_NXDOMAIN);
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "nope.example.org", DNS_A), DNS_NXDOMAIN);
	cr_assert_eq(ans.ttl, 300);

	p = pkt_new(QID, "nope.example.org. IN A");
	ldns_pkt_set_rcode(p, LDNS_RCODE_NXDOMAIN);
	pkt_add(p, LDNS_SECTION_AUTHORITY, "example.org. 86400 IN SOA ns.example.org. host.example.org. 1 7200 900 1209600 86400");
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "nope.example.org", DNS_A), DNS_NXDOMAIN);
	cr_assert_eq(ans.ttl, DNS_NEG_TTL_MAX);
}

Test(dns_parse, nodata_with_soa)
{
	ldns_pkt *p = pkt_new(QID, "example.org. IN AAAA");
	size_t n;

	pkt_add(p, LDNS_SECTION_AUTHORITY, "example.org. 3600 IN SOA ns.example.org. host.example.org. 1 7200 900 1209600 600");
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "example.org", DNS_AAAA), DNS_NODATA);
	cr_assert_eq(ans.ttl, 600);
	cr_assert_eq(ans.naddr, 0);
	cr_assert_str_eq(ans.canon, "example.org");
}

Test(dns_parse, error_rcodes_are_servfail)
{
	const uint8_t rcodes[] = { LDNS_RCODE_SERVFAIL, LDNS_RCODE_REFUSED, LDNS_RCODE_FORMERR,
	                           LDNS_RCODE_NOTIMPL, LDNS_RCODE_YXDOMAIN, 15 };

	for (size_t i = 0; i < sizeof rcodes; i++) {
		ldns_pkt *p = pkt_new(QID, "example.org. IN MX");
		size_t n;
		ldns_pkt_set_rcode(p, rcodes[i]);
		pkt_add(p, LDNS_SECTION_ANSWER, "example.org. 300 IN MX 10 mx.example.org.");
		n = pkt_wire(p);
		cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_SERVFAIL, "rcode %u", rcodes[i]);
		cr_assert_eq(ans.ttl, 0);
		cr_assert_eq(ans.nmx, 0);
	}
}

Test(dns_parse, extended_rcode_is_servfail)
{
	ldns_pkt *p = pkt_new(QID, "example.org. IN MX");
	size_t n;

	ldns_pkt_set_edns_udp_size(p, 1232);
	ldns_pkt_set_edns_extended_rcode(p, 1);     /* BADVERS (16) */
	pkt_add(p, LDNS_SECTION_ANSWER, "example.org. 300 IN MX 10 mx.example.org.");
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_SERVFAIL);
}

Test(dns_parse, edns_answer_ok)
{
	ldns_pkt *p = pkt_new(QID, "example.org. IN MX");
	size_t n;

	ldns_pkt_set_edns_udp_size(p, 1232);
	pkt_add(p, LDNS_SECTION_ANSWER, "example.org. 300 IN MX 10 mx.example.org.");
	pkt_add(p, LDNS_SECTION_ADDITIONAL, "mx.example.org. 300 IN A 192.0.2.1");
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_OK);
	cr_assert_eq(ans.nmx, 1);
	cr_assert_eq(ans.naddr, 0, "additional-section addresses are not used");
}

Test(dns_parse, truncated)
{
	ldns_pkt *p = pkt_new(QID, "example.org. IN MX");
	size_t n, qend;

	ldns_pkt_set_tc(p, true);
	pkt_add(p, LDNS_SECTION_ANSWER, "example.org. 300 IN MX 10 mx.example.org.");
	pkt_add(p, LDNS_SECTION_ANSWER, "example.org. 300 IN MX 20 mx2.example.org.");
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_TRUNCATED);
	cr_assert_eq(ans.nmx, 0);
	cr_assert_eq(ans.ttl, 0);
	/* Cut anywhere after the question: still truncated, not garbage. */
	qend = 12 + strlen("example.org") + 2 + 4;
	for (size_t cut = qend; cut < n; cut++)
		cr_assert_eq(parse(cut, "example.org", DNS_MX), DNS_TRUNCATED, "cut at %zu", cut);
	for (size_t cut = 0; cut < qend; cut++)
		cr_assert_eq(parse(cut, "example.org", DNS_MX), DNS_BAD, "cut at %zu", cut);
	cr_assert_eq(dns_parse(wire, n, QID + 1, "example.org", DNS_MX, &ans), DNS_BAD);
	cr_assert_eq(parse(n, "example.net", DNS_MX), DNS_BAD);
}

/* ---- not our answer ---- */

Test(dns_parse, mismatches_are_bad)
{
	const char *an[] = { "example.org. 300 IN MX 10 mx.example.org.", NULL };
	size_t n = answer("example.org. IN MX", an);
	ldns_pkt *p;

	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_OK);
	cr_assert_eq(dns_parse(wire, n, QID ^ 1, "example.org", DNS_MX, &ans), DNS_BAD);
	cr_assert_str_eq(ans.why, "ID mismatch");
	cr_assert_eq(parse(n, "example.net", DNS_MX), DNS_BAD);
	cr_assert_eq(parse(n, "www.example.org", DNS_MX), DNS_BAD);
	cr_assert_eq(parse(n, "example.org", DNS_A), DNS_BAD);
	cr_assert_str_eq(ans.why, "question type mismatch");
	cr_assert_eq(parse(n, "bad..name", DNS_MX), DNS_BAD);

	p = pkt_new(QID, "example.org. IN MX");
	ldns_pkt_set_qr(p, false);
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_BAD);
	cr_assert_str_eq(ans.why, "not a response (QR=0)");

	p = pkt_new(QID, "example.org. CH MX");
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_BAD);

	p = pkt_new(QID, "example.org. IN MX");
	ldns_pkt_set_opcode(p, LDNS_PACKET_NOTIFY);
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_BAD);
}

Test(dns_parse, question_count_must_be_one)
{
	ldns_pkt *p = pkt_new(QID, "example.org. IN MX");
	ldns_rr *q = NULL;
	size_t n;

	cr_assert_eq(ldns_rr_new_question_frm_str(&q, "example.org. IN MX", NULL, NULL), LDNS_STATUS_OK);
	cr_assert(ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, q));
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_BAD);

	p = ldns_pkt_new();
	ldns_pkt_set_id(p, QID);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_rcode(p, LDNS_RCODE_SERVFAIL);
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_BAD);
	cr_assert_str_eq(ans.why, "question count is not 1");
}

/* ---- TTLs ---- */

Test(dns_parse, ttl_min_cap_and_top_bit)
{
	const char *big[] = { "example.org. 100000 IN MX 10 a.example.org.",
	                      "example.org. 200000 IN MX 20 b.example.org.", NULL };
	const char *mixed[] = { "mx.example.org. 50 IN A 192.0.2.1", "mx.example.org. 20 IN A 192.0.2.2",
	                        "mx.example.org. 70 IN A 192.0.2.3", NULL };
	const char *zero[] = { "mx.example.org. 0 IN A 192.0.2.1", NULL };
	size_t n = answer("example.org. IN MX", big);

	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_OK);
	cr_assert_eq(ans.ttl, DNS_TTL_MAX);
	n = answer("mx.example.org. IN A", mixed);
	cr_assert_eq(parse(n, "mx.example.org", DNS_A), DNS_OK);
	cr_assert_eq(ans.ttl, 20);
	n = answer("mx.example.org. IN A", zero);
	cr_assert_eq(parse(n, "mx.example.org", DNS_A), DNS_OK);
	cr_assert_eq(ans.ttl, 0);
	/* RFC 2181: a TTL with the top bit set is treated as zero. */
	n = answer("mx.example.org. IN A", zero);
	wire[n - 10] = 0x80;                       /* TTL octets of the last record */
	cr_assert_eq(parse(n, "mx.example.org", DNS_A), DNS_OK);
	cr_assert_eq(ans.ttl, 0);
	wire[n - 10] = 0x00;
	wire[n - 8] = 0x01;                         /* 256 */
	cr_assert_eq(parse(n, "mx.example.org", DNS_A), DNS_OK);
	cr_assert_eq(ans.ttl, 256);
}

/* ---- hostile bytes ---- */

Test(dns_parse, length_bounds)
{
	const char *an[] = { "example.org. 300 IN MX 10 mx.example.org.", NULL };
	size_t n = answer("example.org. IN MX", an);

	cr_assert_eq(dns_parse(wire, 0, QID, "example.org", DNS_MX, &ans), DNS_BAD);
	cr_assert_eq(dns_parse(wire, 11, QID, "example.org", DNS_MX, &ans), DNS_BAD);
	cr_assert_eq(dns_parse(NULL, n, QID, "example.org", DNS_MX, &ans), DNS_BAD);
	cr_assert_eq(dns_parse(wire, DNS_MAX_PACKET + 1, QID, "example.org", DNS_MX, &ans), DNS_BAD);
	cr_assert_str_eq(ans.why, "bad packet length");
	cr_assert_eq(parse(n + 3, "example.org", DNS_MX), DNS_OK, "trailing octets are ignored");
}

Test(dns_parse, every_prefix_is_bad)
{
	ldns_pkt *p = pkt_new(QID, "example.org. IN MX");
	size_t n;

	pkt_add(p, LDNS_SECTION_ANSWER, "example.org. 300 IN CNAME mail.example.net.");
	pkt_add(p, LDNS_SECTION_ANSWER, "mail.example.net. 300 IN MX 10 mx.example.net.");
	pkt_add(p, LDNS_SECTION_AUTHORITY, "example.net. 300 IN SOA ns.example.net. h.example.net. 1 2 3 4 5");
	pkt_add(p, LDNS_SECTION_ADDITIONAL, "mx.example.net. 300 IN AAAA 2001:db8::1");
	n = pkt_wire(p);
	cr_assert_eq(parse(n, "example.org", DNS_MX), DNS_OK);
	for (size_t cut = 0; cut < n; cut++) {
		enum dns_status st = parse(cut, "example.org", DNS_MX);
		check_sane(st, &ans);
		cr_assert_eq(st, DNS_BAD, "prefix of %zu octets", cut);
	}
}

Test(dns_parse, rdlength_that_lies_is_bad)
{
	const char *a[] = { "mx.example.org. 300 IN A 192.0.2.1", NULL };
	const char *mx[] = { "example.org. 300 IN MX 10 mx.example.org.", NULL };
	size_t n = answer("mx.example.org. IN A", a);

	/* A with RDLENGTH 5 (one extra octet appended): ldns alone would accept it. */
	cr_assert_eq(wire[n - 5], 4);
	wire[n - 5] = 5;
	wire[n] = 0;
	cr_assert_eq(parse(n + 1, "mx.example.org", DNS_A), DNS_BAD);
	/* RDLENGTH beyond the end of the packet. */
	wire[n - 5] = 9;
	cr_assert_eq(parse(n + 1, "mx.example.org", DNS_A), DNS_BAD);
	/* MX whose RDLENGTH says one octet more than the exchange name uses. */
	n = answer("example.org. IN MX", mx);
	cr_assert_eq(wire[n - 8], 7);               /* 00 0a 02 'm' 'x' c0 0c: ldns compresses */
	wire[n - 8] = 8;
	wire[n] = 0;
	cr_assert_eq(parse(n + 1, "example.org", DNS_MX), DNS_BAD);
}

Test(dns_parse, compressed_answer_and_pointer_loops)
{
	/* A typical compressed answer, as servers send it. */
	static const uint8_t good[] = {
		0x42, 0x42, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
		7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'o', 'r', 'g', 0, 0, 15, 0, 1,
		0xc0, 12, 0, 15, 0, 1, 0, 0, 1, 44, 0, 7, 0, 10, 2, 'm', 'x', 0xc0, 12,
	};
	uint8_t bad[sizeof good];

	memcpy(wire, good, sizeof good);
	cr_assert_eq(parse(sizeof good, "example.org", DNS_MX), DNS_OK);
	cr_assert_str_eq(ans.mx[0].host, "mx.example.org");
	cr_assert_eq(ans.ttl, 300);
	/* The exchange points at itself. */
	memcpy(bad, good, sizeof good);
	bad[sizeof bad - 1] = (uint8_t)(sizeof bad - 5);
	memcpy(wire, bad, sizeof bad);
	cr_assert_eq(parse(sizeof bad, "example.org", DNS_MX), DNS_BAD);
	/* The owner points past the end. */
	memcpy(bad, good, sizeof good);
	bad[30] = 0xff;
	memcpy(wire, bad, sizeof bad);
	cr_assert_eq(parse(sizeof bad, "example.org", DNS_MX), DNS_BAD);
	/* A label type 0x40 (extended labels) in the question. */
	memcpy(bad, good, sizeof good);
	bad[12] = 0x47;
	memcpy(wire, bad, sizeof bad);
	cr_assert_eq(parse(sizeof bad, "example.org", DNS_MX), DNS_BAD);
}

Test(dns_parse, random_garbage_never_crashes, .timeout = 120)
{
	uint32_t seed = 0x9e3779b9u;
	unsigned ok = 0, bad = 0;

	for (unsigned it = 0; it < FUZZ_RUNS; it++) {
		size_t n = rnd(&seed) % FUZZ_MAX;
		enum dns_status st;
		for (size_t i = 0; i < n; i++)
			wire[i] = (uint8_t)rnd(&seed);
		if (n >= 12 && (it & 1)) {         /* half of them get past the header checks */
			wire[0] = QID >> 8;
			wire[1] = QID & 0xff;
			wire[2] = 0x80;
			wire[3] &= 0x0f;
			wire[4] = 0;
			wire[5] = 1;
		}
		st = parse(n, "example.org", DNS_MX);
		check_sane(st, &ans);
		if (st == DNS_BAD)
			bad++;
		else
			ok++;
	}
	cr_assert(bad > FUZZ_RUNS / 2, "garbage is mostly rejected (%u bad, %u not)", bad, ok);
}

Test(dns_parse, mutated_answers_never_crash, .timeout = 120)
{
	ldns_pkt *p = pkt_new(QID, "example.org. IN MX");
	uint8_t orig[1024];
	uint32_t seed = 12345u;
	unsigned counts[DNS_BAD + 1] = { 0 };
	size_t n;

	pkt_add(p, LDNS_SECTION_ANSWER, "example.org. 300 IN CNAME mail.example.net.");
	pkt_add(p, LDNS_SECTION_ANSWER, "mail.example.net. 300 IN MX 10 mx.example.net.");
	pkt_add(p, LDNS_SECTION_ANSWER, "mail.example.net. 300 IN MX 0 .");
	pkt_add(p, LDNS_SECTION_AUTHORITY, "example.net. 300 IN SOA ns.example.net. h.example.net. 1 2 3 4 5");
	pkt_add(p, LDNS_SECTION_ADDITIONAL, "mx.example.net. 300 IN AAAA 2001:db8::1");
	n = pkt_wire(p);
	cr_assert(n <= sizeof orig);
	memcpy(orig, wire, n);
	for (unsigned it = 0; it < FUZZ_RUNS; it++) {
		unsigned flips = 1 + rnd(&seed) % 4;
		size_t len = n - (it % 3 == 0 ? rnd(&seed) % n : 0);
		enum dns_status st;
		memcpy(wire, orig, n);
		for (unsigned f = 0; f < flips; f++)
			wire[rnd(&seed) % n] ^= (uint8_t)(1u << (rnd(&seed) % 8));
		st = parse(len, "example.org", DNS_MX);
		check_sane(st, &ans);
		counts[st]++;
	}
	cr_assert(counts[DNS_OK] > 0 && counts[DNS_BAD] > 0, "mutations reach both outcomes");
}

/* ---- small helpers ---- */

Test(dns_tcp_frame, big_endian_length)
{
	uint8_t f[2];

	dns_tcp_frame(0, f);
	cr_assert(f[0] == 0 && f[1] == 0);
	dns_tcp_frame(300, f);
	cr_assert(f[0] == 0x01 && f[1] == 0x2c);
	dns_tcp_frame(DNS_MAX_PACKET, f);
	cr_assert(f[0] == 0xff && f[1] == 0xff);
}

/* name_of - a name of total length len made of labels of at most label octets. */
static void name_of(char *out, size_t len, size_t label)
{
	size_t i = 0, run = 0;

	for (; i < len; i++) {
		if (run == label && i + 1 < len) {
			out[i] = '.';
			run = 0;
		} else {
			out[i] = (char)('a' + i % 26);
			run++;
		}
	}
	out[i] = '\0';
}

Test(dns_name_ok, label_and_total_limits)
{
	char name[300];

	name_of(name, 63, 63);
	cr_assert(dns_name_ok(name));
	name_of(name, 64, 64);
	cr_assert(!dns_name_ok(name), "64-octet label");
	name_of(name, 253, 63);
	cr_assert_eq(strlen(name), 253);
	cr_assert(dns_name_ok(name));
	name_of(name, 254, 63);
	cr_assert(!dns_name_ok(name), "254 octets");
	snprintf(name, sizeof name, "%s", "a.b");
	cr_assert(dns_name_ok(name));
}

Test(dns_name_ok, syntax)
{
	static const char *good[] = { "a", "example.org", "Mail-1.EXAMPLE.org", "xn--bcher-kva.example",
	                              "1.2.3.4", "a-b--c.d9", NULL };
	static const char *bad[] = { "", ".", "example.org.", ".example.org", "a..b", "-a.org", "a-.org",
	                             "a.-b", "a.b-", "a_b.org", "_dmarc.example.org", "a b.org", "a/b",
	                             "exa\xc3\xa9mple.org", "a\tb", NULL };

	for (const char **s = good; *s; s++)
		cr_assert(dns_name_ok(*s), "%s", *s);
	for (const char **s = bad; *s; s++)
		cr_assert(!dns_name_ok(*s), "%s", *s);
	cr_assert(!dns_name_ok(NULL));
}

Test(dns_resolv_conf, nameservers_comments_ipv6_garbage)
{
	static const char text[] =
		"# generated\n"
		"# nameserver 9.9.9.9\n"
		"; nameserver 8.8.8.8\n"
		"search example.org\n"
		"options ndots:2 edns0\n"
		"nameserver 192.0.2.53\n"
		"nameservers 192.0.2.99\n"
		"nameserver192.0.2.77\n"
		"nameserver\n"
		"nameserver not-an-address\n"
		"nameserver 300.1.1.1\n"
		"  nameserver\t2001:db8::53%eth0   # comment\r\n"
		"nameserver 198.51.100.7;trailing\n"
		"nameserver fe80::1%2\n"
		"nameserver 203.0.113.9";            /* no final newline */
	struct sockaddr_storage ss[8];
	socklen_t lens[8];
	unsigned n = dns_resolv_conf(text, sizeof text - 1, ss, lens, 8);
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss[0];
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss[1];
	char buf[INET6_ADDRSTRLEN];

	cr_assert_eq(n, 5);
	cr_assert_eq(s4->sin_family, AF_INET);
	cr_assert_eq(ntohs(s4->sin_port), 53);
	cr_assert_eq(lens[0], sizeof(struct sockaddr_in));
	cr_assert_str_eq(inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof buf), "192.0.2.53");
	cr_assert_eq(s6->sin6_family, AF_INET6);
	cr_assert_eq(ntohs(s6->sin6_port), 53);
	cr_assert_eq(lens[1], sizeof(struct sockaddr_in6));
	cr_assert_str_eq(inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof buf), "2001:db8::53");
	s4 = (const struct sockaddr_in *)&ss[2];
	cr_assert_str_eq(inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof buf), "198.51.100.7");
	s6 = (const struct sockaddr_in6 *)&ss[3];
	cr_assert_str_eq(inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof buf), "fe80::1");
	s4 = (const struct sockaddr_in *)&ss[4];
	cr_assert_str_eq(inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof buf), "203.0.113.9");
}

Test(dns_resolv_conf, max_and_length_respected)
{
	static const char text[] = "nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n";
	struct sockaddr_storage ss[4];
	socklen_t lens[4];
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss[0];
	char buf[INET_ADDRSTRLEN];

	cr_assert_eq(dns_resolv_conf(text, sizeof text - 1, ss, lens, 2), 2);
	cr_assert_eq(dns_resolv_conf(text, sizeof text - 1, ss, lens, 0), 0);
	/* Only the first 18 octets: "nameserver 192.0.2" is not an address. */
	cr_assert_eq(dns_resolv_conf(text, 18, ss, lens, 4), 0);
	cr_assert_eq(dns_resolv_conf(text, 20, ss, lens, 4), 1);
	cr_assert_str_eq(inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof buf), "192.0.2.1");
	cr_assert_eq(dns_resolv_conf("", 0, ss, lens, 4), 0);
}
