/* fuzz_dns.c - libFuzzer target: dns_parse() fed arbitrary answers to dns_query()'s queries. */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"

/*
 * Input layout: one selector octet, then the answer.
 *
 *   d[0] bits 0-1  question type: MX, A, AAAA, MX
 *        bits 2-3  question name (table below)
 *        bit 4     splice: the answer is our own query's header and question,
 *                  with d[1..2] as flags, d[3..8] as the AN/NS/AR counts and
 *                  d[9..] as the records; otherwise d[1..] is the whole answer
 *
 * The ID asked is QID; answers in the seed corpus carry it.
 */
#define QID      0x4242u
#define NNAMES   4u
#define QBUF     1024u

/* check - abort (a crash for libFuzzer) when an invariant does not hold. */
#define check(cond) do { if (!(cond)) fail_at(__LINE__, #cond); } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum dns_type types[4] = { DNS_MX, DNS_A, DNS_AAAA, DNS_MX };
static char long_name[254];
static const char *names[NNAMES] = { "example.org", "Mail.Example.ORG", "a.b", long_name };
static uint8_t queries[NNAMES][4][QBUF];   /* dns_query output per name and type */
static size_t qlens[NNAMES][4];
static struct dns_answer ans;

/* fail_at - report a broken invariant and abort. */
static void fail_at(int line, const char *what)
{
	fprintf(stderr, "fuzz_dns.c:%d: invariant failed: %s (status %d, why %s)\n", line, what,
	        (int)ans.status, ans.why ? ans.why : "-");
	abort();
}

/* lower_nul - a NUL-terminated string within cap octets, with no upper-case ASCII. */
static bool lower_nul(const char *s, size_t cap)
{
	const char *z = memchr(s, '\0', cap);
	if (z == NULL)
		return false;
	for (; s < z; s++)
		if (*s >= 'A' && *s <= 'Z')
			return false;
	return true;
}

/* check_answer - invariants of every dns_parse result, whatever the input. */
static void check_answer(enum dns_status st, const struct dns_answer *a, enum dns_type type)
{
	check(st >= DNS_OK && st <= DNS_BAD);
	check(st == a->status);
	check(a->nmx <= DNS_MAX_MX && a->naddr <= DNS_MAX_ADDRS);
	check(lower_nul(a->canon, sizeof a->canon));
	for (unsigned i = 0; i < a->nmx; i++) {
		check(lower_nul(a->mx[i].host, sizeof a->mx[i].host));
		if (i > 0)
			check(a->mx[i - 1].pref <= a->mx[i].pref);
	}
	if (a->null_mx)
		check(a->nmx == 1 && a->mx[0].pref == 0 && a->mx[0].host[0] == '\0');
	for (unsigned i = 0; i < a->naddr; i++)
		check(a->addr[i].family == (type == DNS_A ? AF_INET : AF_INET6));
	switch (st) {
	case DNS_OK:
		check(a->ttl <= DNS_TTL_MAX);
		if (type == DNS_MX)
			check(a->nmx >= 1 && a->naddr == 0);
		else
			check(a->naddr >= 1 && a->nmx == 0);
		break;
	case DNS_NODATA:
	case DNS_NXDOMAIN:
		check(a->ttl <= DNS_NEG_TTL_MAX);
		check(a->nmx == 0 && a->naddr == 0 && !a->null_mx);
		break;
	default:
		check(a->ttl == 0);
		check(a->nmx == 0 && a->naddr == 0 && !a->null_mx);
		if (st == DNS_BAD)
			check(a->why != NULL && a->why[0] != '\0');
		break;
	}
}

/* LLVMFuzzerInitialize - build every query once; our own query is never an answer. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	for (size_t i = 0; i < sizeof long_name - 1; i++)
		long_name[i] = i % 64 == 63 ? '.' : (char)('a' + i % 26);
	long_name[sizeof long_name - 1] = '\0';
	for (unsigned n = 0; n < NNAMES; n++) {
		for (unsigned t = 0; t < 4; t++) {
			qlens[n][t] = dns_query(QID, names[n], types[t], queries[n][t], QBUF);
			check(qlens[n][t] > 12);
			check(dns_parse(queries[n][t], qlens[n][t], QID, names[n], types[t], &ans) ==
			      DNS_BAD);
		}
	}
	return 0;
}

/* LLVMFuzzerTestOneInput - parse one answer to one of our queries. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned t, n;
	uint8_t *pkt, frame[2];
	size_t len;
	enum dns_status st;

	if (size < 1)
		return 0;
	t = data[0] & 3u;
	n = (data[0] >> 2) & 3u;
	if (data[0] & 0x10u) {
		const uint8_t *q = queries[n][t];
		size_t qend = 12 + strlen(names[n]) + 2 + 4;   /* header, name in wire form, type, class */
		size_t rest = size > 9 ? size - 9 : 0;
		check(qend <= qlens[n][t]);
		len = qend + rest;
		pkt = malloc(len);
		check(pkt != NULL);
		memcpy(pkt, q, qend);
		for (size_t i = 1; i < 9 && i < size; i++)
			pkt[i < 3 ? i + 1 : i + 3] = data[i];   /* flags -> 2..3, counts -> 6..11 */
		memcpy(pkt + qend, data + 9, rest);
	} else {
		len = size - 1;
		pkt = malloc(len ? len : 1);   /* exact size: reading past it is caught */
		check(pkt != NULL);
		memcpy(pkt, data + 1, len);
	}

	st = dns_parse(pkt, len, QID, names[n], types[t], &ans);
	check_answer(st, &ans, types[t]);

	/* An answer whose ID is not the one asked is never ours. */
	st = dns_parse(pkt, len, QID ^ 0x0101u, names[n], types[t], &ans);
	check_answer(st, &ans, types[t]);
	if (len >= 2 && (pkt[0] << 8 | pkt[1]) != (QID ^ 0x0101u))
		check(st == DNS_BAD);

	if (len <= DNS_MAX_PACKET) {
		dns_tcp_frame(len, frame);
		check(((size_t)frame[0] << 8 | frame[1]) == len);
	}
	free(pkt);
	return 0;
}
