/* dns.c - DNS packets with ldns: build queries, check and interpret answers (pure, no I/O). */
#include "dns.h"
#include <arpa/inet.h>
#include <assert.h>
#include <ldns/ldns.h>
#include <string.h>

/*
 * Interface: dns_query builds the wire bytes the engine sends; dns_parse turns
 * the bytes it receives into a struct dns_answer; dns_tcp_frame, dns_name_ok and
 * dns_resolv_conf are the small helpers around them.  Nothing here touches a
 * socket, a file or a global: every function is a function of its arguments.
 *
 * Defences in dns_parse, in order: the length is bounded; the header and the
 * single question are located by our own walk; unless TC is set, every record
 * of the packet is framed by our walk too (owner names, RDLENGTH within the
 * packet, and the exact RDATA shape of the types we read: A, AAAA, CNAME, MX,
 * SOA), because ldns_wire2pkt does not check that a record's RDATA ends where
 * its RDLENGTH says.  Only then does ldns parse it, and every ldns result is
 * checked for NULL, type and size before use.  Bytes after the last record are
 * ignored, as ldns and common resolvers do.
 *
 * Diagnostics: the why field names the reason for DNS_BAD; for a DNS_NODATA
 * caused by a CNAME loop or an over-long chain it says so as well.
 */

#define DNS_HEADER_LEN     12u     /* fixed DNS header */
#define DNS_RR_FIXED_LEN   10u     /* TYPE, CLASS, TTL, RDLENGTH after an owner name */
#define DNS_WIRE_NAME_MAX  255u    /* octets in a wire-format name */
#define DNS_LABEL_MAX      63u     /* octets in one label */
#define DNS_HOST_MAX       253u    /* characters in a host name, no trailing dot */
#define DNS_SOA_FIXED_LEN  20u     /* SERIAL .. MINIMUM after the two SOA names */
#define DNS_SOA_MINIMUM    6u      /* rdf index of the SOA MINIMUM field */
#define DNS_NEG_TTL_DEFAULT 300u   /* negative TTL when there is no SOA */
#define DNS_TTL_SANE_MAX   0x7fffffffu /* RFC 2181: TTLs with the top bit set mean 0 */
#define DNS_TC_COPY_MAX    (DNS_HEADER_LEN + DNS_WIRE_NAME_MAX + 4u) /* header + one question */
#define DNS_NS_TOKEN_MAX   64u     /* longest nameserver address token we accept */
#define DNS_PORT           53u
#define DNS_WIRE_TC        0x02u   /* TC bit in header octet 2 */

/* dns_rd16 - a big-endian 16-bit field. */
static uint16_t dns_rd16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

/* dns_name_ok - a syntactically valid host name for a query (strict LDH). */
bool dns_name_ok(const char *name)
{
	size_t total = 0, label = 0;
	char prev = '.';

	if (name == NULL || name[0] == '\0')
		return false;
	for (const char *s = name; *s != '\0'; s++, total++) {
		char c = *s;
		if (total >= DNS_HOST_MAX)
			return false;
		if (c == '.') {
			if (label == 0 || prev == '-')
				return false;
			label = 0;
		} else if (c == '-') {
			if (label == 0)
				return false;
			label++;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			label++;
		} else {
			return false;
		}
		if (label > DNS_LABEL_MAX)
			return false;
		prev = c;
	}
	return label > 0 && prev != '-';
}

/* dns_query - build a query for (name, type) with the given id, RD and EDNS0. */
size_t dns_query(uint16_t id, const char *name, enum dns_type type, uint8_t *buf, size_t cap)
{
	ldns_rdf *qname;
	ldns_pkt *pkt;
	uint8_t *wire = NULL;
	size_t wlen = 0, n = 0;

	if (!dns_name_ok(name) || buf == NULL)
		return 0;
	if (type != DNS_A && type != DNS_MX && type != DNS_AAAA)
		return 0;
	qname = ldns_dname_new_frm_str(name);
	if (qname == NULL)
		return 0;
	pkt = ldns_pkt_query_new(qname, (ldns_rr_type)type, LDNS_RR_CLASS_IN, LDNS_RD);
	if (pkt == NULL) {
		ldns_rdf_deep_free(qname);   /* not taken over when the packet was not made */
		return 0;
	}
	ldns_pkt_set_id(pkt, id);
	ldns_pkt_set_edns_udp_size(pkt, DNS_UDP_PAYLOAD);   /* non-zero: ldns emits the OPT RR */
	if (ldns_pkt2wire(&wire, pkt, &wlen) == LDNS_STATUS_OK && wire != NULL &&
	    wlen >= DNS_HEADER_LEN && wlen <= cap) {
		memcpy(buf, wire, wlen);
		n = wlen;
	}
	LDNS_FREE(wire);
	ldns_pkt_free(pkt);
	return n;
}

/* dns_tcp_frame - the two-octet length prefix for a TCP query of len octets. */
void dns_tcp_frame(size_t len, uint8_t out[2])
{
	assert(len <= DNS_MAX_PACKET);
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)(len & 0xffu);
}

/* dns_wire_name - step over a wire name at *pos, reading no byte at or past end. */
static bool dns_wire_name(const uint8_t *buf, size_t end, size_t *pos)
{
	size_t p = *pos, total = 1;

	for (;;) {
		if (p >= end)
			return false;
		if ((buf[p] & 0xc0u) == 0xc0u) {        /* pointer: ends the name here */
			if (end - p < 2)
				return false;
			*pos = p + 2;
			return true;
		}
		if ((buf[p] & 0xc0u) != 0)              /* 0x40 / 0x80: no such label types */
			return false;
		if (buf[p] == 0) {
			*pos = p + 1;
			return true;
		}
		total += 1u + buf[p];
		if (total > DNS_WIRE_NAME_MAX)
			return false;
		p += 1u + buf[p];
	}
}

/* dns_wire_rdata - check that the RDATA of a type we read has exactly its shape. */
static bool dns_wire_rdata(const uint8_t *buf, uint16_t type, size_t pos, size_t rdlen)
{
	size_t end = pos + rdlen;

	switch (type) {
	case LDNS_RR_TYPE_A:
		return rdlen == 4;
	case LDNS_RR_TYPE_AAAA:
		return rdlen == 16;
	case LDNS_RR_TYPE_CNAME:
		return dns_wire_name(buf, end, &pos) && pos == end;
	case LDNS_RR_TYPE_MX:
		pos += 2;
		return rdlen > 2 && dns_wire_name(buf, end, &pos) && pos == end;
	case LDNS_RR_TYPE_SOA:
		return dns_wire_name(buf, end, &pos) && dns_wire_name(buf, end, &pos) &&
		       end - pos == DNS_SOA_FIXED_LEN;
	default:
		return true;
	}
}

/* dns_wire_question_end - offset just past the single question, or 0 if malformed. */
static size_t dns_wire_question_end(const uint8_t *buf, size_t len)
{
	size_t pos = DNS_HEADER_LEN;

	if (!dns_wire_name(buf, len, &pos) || len - pos < 4)
		return 0;
	return pos + 4;
}

/* dns_wire_records - frame every record after the question; false if any length lies. */
static bool dns_wire_records(const uint8_t *buf, size_t len, size_t pos)
{
	unsigned n = (unsigned)dns_rd16(buf + 6) + dns_rd16(buf + 8) + dns_rd16(buf + 10);

	for (unsigned i = 0; i < n; i++) {
		uint16_t type, rdlen;
		if (!dns_wire_name(buf, len, &pos) || len - pos < DNS_RR_FIXED_LEN)
			return false;
		type = dns_rd16(buf + pos);
		rdlen = dns_rd16(buf + pos + 8);
		pos += DNS_RR_FIXED_LEN;
		if (rdlen > len - pos || !dns_wire_rdata(buf, type, pos, rdlen))
			return false;
		pos += rdlen;
	}
	return true;
}

/* dns_text_put - append one name octet, lower-cased, escaped (\. \\ \DDD) when not plain. */
static bool dns_text_put(char *out, size_t *o, uint8_t c)
{
	size_t need = (c == '.' || c == '\\') ? 2 : (c < 0x21 || c > 0x7e) ? 4 : 1;

	if (*o + need > DNS_MAX_NAME)
		return false;
	if (need == 4) {
		out[(*o)++] = '\\';
		out[(*o)++] = (char)('0' + c / 100);
		out[(*o)++] = (char)('0' + c / 10 % 10);
		out[(*o)++] = (char)('0' + c % 10);
		return true;
	}
	if (need == 2)
		out[(*o)++] = '\\';
	out[(*o)++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
	return true;
}

/* dns_rdf_text - a name rdf as lower-case text, no trailing dot ("" for the root). */
static bool dns_rdf_text(const ldns_rdf *rdf, char out[DNS_MAX_NAME + 1])
{
	const uint8_t *d;
	size_t n, p = 0, o = 0;

	if (rdf == NULL || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME)
		return false;
	d = ldns_rdf_data(rdf);
	n = ldns_rdf_size(rdf);
	if (d == NULL)
		return false;
	while (p < n && d[p] != 0) {
		size_t l = d[p++];
		if (l > DNS_LABEL_MAX || l > n - p)
			return false;
		if (o > 0) {                    /* the separator between labels */
			if (o + 1 > DNS_MAX_NAME)
				return false;
			out[o++] = '.';
		}
		for (; l > 0; l--, p++)
			if (!dns_text_put(out, &o, d[p]))
				return false;
	}
	out[o] = '\0';
	return p < n;                           /* the root label must be there */
}

/* dns_owner_is - whether rr is of class IN, has the given type and is owned by name. */
static bool dns_owner_is(const ldns_rr *rr, ldns_rr_type type, const char *name)
{
	char owner[DNS_MAX_NAME + 1];

	if (rr == NULL || ldns_rr_get_type(rr) != type || ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN)
		return false;
	return dns_rdf_text(ldns_rr_owner(rr), owner) && strcmp(owner, name) == 0;
}

/* dns_rr_ttl - a record's TTL, with RFC 2181's "top bit set means zero". */
static uint32_t dns_rr_ttl(const ldns_rr *rr)
{
	uint32_t t = ldns_rr_ttl(rr);
	return t > DNS_TTL_SANE_MAX ? 0 : t;
}

/* dns_min - the smaller of two TTLs. */
static uint32_t dns_min(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* dns_canon_name - the caller's name lower-cased without a trailing dot; false if invalid. */
static bool dns_canon_name(const char *name, char out[DNS_MAX_NAME + 1])
{
	size_t n = name ? strnlen(name, DNS_MAX_NAME + 1) : 0;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_HOST_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[n] = '\0';
	return dns_name_ok(out);
}

/* dns_bad - mark the answer as not ours, with a reason. */
static enum dns_status dns_bad(struct dns_answer *out, const char *why)
{
	out->status = DNS_BAD;
	out->ttl = 0;
	out->why = why;
	return DNS_BAD;
}

/* dns_wire_parse - frame the packet and hand it to ldns (header and question only if TC). */
static ldns_pkt *dns_wire_parse(const uint8_t *buf, size_t len, const char **why)
{
	uint8_t head[DNS_TC_COPY_MAX];
	ldns_pkt *pkt = NULL;
	size_t qend;

	*why = "malformed packet";
	if (dns_rd16(buf + 4) != 1) {
		*why = "question count is not 1";
		return NULL;
	}
	qend = dns_wire_question_end(buf, len);
	if (qend == 0 || qend > sizeof head)
		return NULL;
	if (buf[2] & DNS_WIRE_TC) {
		/* A truncated answer may be cut anywhere after the question: keep only
		 * the header and the question, with the record counts zeroed. */
		memcpy(head, buf, qend);
		memset(head + 6, 0, 6);
		if (ldns_wire2pkt(&pkt, head, qend) != LDNS_STATUS_OK)
			return NULL;
		return pkt;
	}
	if (!dns_wire_records(buf, len, qend))
		return NULL;
	if (ldns_wire2pkt(&pkt, buf, len) != LDNS_STATUS_OK)
		return NULL;
	return pkt;
}

/* dns_check_header - QR, ID, opcode and the one question against what we asked. */
static const char *dns_check_header(const ldns_pkt *pkt, uint16_t id, const char *qname,
                                    enum dns_type type)
{
	const ldns_rr_list *qs = ldns_pkt_question(pkt);
	const ldns_rr *q;

	if (!ldns_pkt_qr(pkt))
		return "not a response (QR=0)";
	if (ldns_pkt_id(pkt) != id)
		return "ID mismatch";
	if (ldns_pkt_get_opcode(pkt) != LDNS_PACKET_QUERY)
		return "opcode is not QUERY";
	if (qs == NULL || ldns_rr_list_rr_count(qs) != 1)
		return "question count is not 1";
	q = ldns_rr_list_rr(qs, 0);
	if (q == NULL || ldns_rr_get_type(q) != (ldns_rr_type)type)
		return "question type mismatch";
	if (!dns_owner_is(q, (ldns_rr_type)type, qname))
		return "question name or class mismatch";
	return NULL;
}

/* dns_find_cname - the target of the first CNAME owned by name; 0 none, 1 found, -1 bad. */
static int dns_find_cname(const ldns_rr_list *an, const char *name, char target[DNS_MAX_NAME + 1],
                          uint32_t *ttl)
{
	size_t n = an ? ldns_rr_list_rr_count(an) : 0;

	for (size_t i = 0; i < n; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(an, i);
		if (!dns_owner_is(rr, LDNS_RR_TYPE_CNAME, name))
			continue;
		if (!dns_rdf_text(ldns_rr_rdf(rr, 0), target) || target[0] == '\0')
			return -1;
		*ttl = dns_rr_ttl(rr);
		return 1;
	}
	return 0;
}

/* dns_follow - follow CNAMEs from out->canon (at most DNS_MAX_CNAME, loops stop it). */
static bool dns_follow(const ldns_rr_list *an, struct dns_answer *out, uint32_t *ttl)
{
	char seen[DNS_MAX_CNAME + 1][DNS_MAX_NAME + 1];
	char next[DNS_MAX_NAME + 1];
	unsigned hops = 0;
	uint32_t t = 0;
	int r;

	memcpy(seen[0], out->canon, strlen(out->canon) + 1);
	while ((r = dns_find_cname(an, out->canon, next, &t)) == 1) {
		if (hops == DNS_MAX_CNAME) {
			out->why = "CNAME chain too long";
			return true;
		}
		for (unsigned i = 0; i <= hops; i++) {
			if (strcmp(seen[i], next) == 0) {
				out->why = "CNAME loop";
				return true;
			}
		}
		*ttl = dns_min(*ttl, t);
		hops++;
		memcpy(seen[hops], next, strlen(next) + 1);
		memcpy(out->canon, next, strlen(next) + 1);
	}
	return r == 0;
}

/* dns_mx_insert - keep the DNS_MAX_MX best by preference, stable among equals. */
static void dns_mx_insert(struct dns_answer *out, uint16_t pref, const char *host)
{
	unsigned at = out->nmx;

	while (at > 0 && out->mx[at - 1].pref > pref)
		at--;
	if (at >= DNS_MAX_MX)
		return;
	if (out->nmx < DNS_MAX_MX)
		out->nmx++;
	memmove(&out->mx[at + 1], &out->mx[at], (out->nmx - 1 - at) * sizeof out->mx[0]);
	out->mx[at].pref = pref;
	memcpy(out->mx[at].host, host, strlen(host) + 1);
}

/* dns_collect_mx - MX records owned by out->canon; returns how many were usable. */
static unsigned dns_collect_mx(const ldns_rr_list *an, struct dns_answer *out, uint32_t *ttl)
{
	size_t n = an ? ldns_rr_list_rr_count(an) : 0;
	unsigned total = 0;
	char host[DNS_MAX_NAME + 1];

	for (size_t i = 0; i < n; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(an, i);
		const ldns_rdf *pref;
		if (!dns_owner_is(rr, LDNS_RR_TYPE_MX, out->canon))
			continue;
		pref = ldns_rr_mx_preference(rr);
		if (pref == NULL || ldns_rdf_get_type(pref) != LDNS_RDF_TYPE_INT16 ||
		    ldns_rdf_size(pref) != 2 || !dns_rdf_text(ldns_rr_mx_exchange(rr), host))
			continue;
		dns_mx_insert(out, ldns_rdf2native_int16(pref), host);
		*ttl = dns_min(*ttl, dns_rr_ttl(rr));
		total++;
	}
	out->null_mx = out->nmx == 1 && out->mx[0].pref == 0 && out->mx[0].host[0] == '\0';
	return total;
}

/* dns_collect_addr - A or AAAA records owned by out->canon; returns how many were usable. */
static unsigned dns_collect_addr(const ldns_rr_list *an, enum dns_type type,
                                 struct dns_answer *out, uint32_t *ttl)
{
	size_t n = an ? ldns_rr_list_rr_count(an) : 0;
	bool v4 = type == DNS_A;
	size_t want = v4 ? sizeof(struct in_addr) : sizeof(struct in6_addr);
	unsigned total = 0;

	for (size_t i = 0; i < n; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(an, i);
		const ldns_rdf *rdf;
		if (!dns_owner_is(rr, (ldns_rr_type)type, out->canon))
			continue;
		rdf = ldns_rr_rdf(rr, 0);
		if (rdf == NULL || ldns_rdf_size(rdf) != want || ldns_rdf_data(rdf) == NULL ||
		    ldns_rdf_get_type(rdf) != (v4 ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA))
			continue;
		*ttl = dns_min(*ttl, dns_rr_ttl(rr));
		total++;
		if (out->naddr >= DNS_MAX_ADDRS)
			continue;
		out->addr[out->naddr].family = v4 ? AF_INET : AF_INET6;
		memcpy(v4 ? (void *)&out->addr[out->naddr].a.v4 : (void *)&out->addr[out->naddr].a.v6,
		       ldns_rdf_data(rdf), want);
		out->naddr++;
	}
	return total;
}

/* dns_neg_ttl - negative-caching TTL: min(SOA TTL, SOA MINIMUM) of the first SOA, capped. */
static uint32_t dns_neg_ttl(const ldns_pkt *pkt)
{
	const ldns_rr_list *ns = ldns_pkt_authority(pkt);
	size_t n = ns ? ldns_rr_list_rr_count(ns) : 0;

	for (size_t i = 0; i < n; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(ns, i);
		const ldns_rdf *min;
		if (rr == NULL || ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA ||
		    ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN)
			continue;
		min = ldns_rr_rdf(rr, DNS_SOA_MINIMUM);   /* ldns types it PERIOD */
		if (min == NULL || ldns_rdf_size(min) != 4 || ldns_rdf_data(min) == NULL ||
		    (ldns_rdf_get_type(min) != LDNS_RDF_TYPE_PERIOD &&
		     ldns_rdf_get_type(min) != LDNS_RDF_TYPE_INT32))
			continue;
		return dns_min(dns_min(dns_rr_ttl(rr), ldns_rdf2native_int32(min)), DNS_NEG_TTL_MAX);
	}
	return dns_min(DNS_NEG_TTL_DEFAULT, DNS_NEG_TTL_MAX);
}

/* dns_records - interpret a NOERROR answer: CNAMEs, then the records asked for. */
static enum dns_status dns_records(const ldns_pkt *pkt, enum dns_type type, struct dns_answer *out)
{
	const ldns_rr_list *an = ldns_pkt_answer(pkt);
	uint32_t cname_ttl = DNS_TTL_MAX, ttl;
	unsigned found;

	if (!dns_follow(an, out, &cname_ttl))
		return dns_bad(out, "unreadable CNAME target");
	ttl = cname_ttl;
	found = type == DNS_MX ? dns_collect_mx(an, out, &ttl) : dns_collect_addr(an, type, out, &ttl);
	if (found == 0) {
		/* NODATA (also a chain that ends without records): the SOA's negative
		 * TTL, but never longer than the CNAMEs that led us here. */
		out->status = DNS_NODATA;
		out->ttl = dns_min(dns_neg_ttl(pkt), cname_ttl);
		return DNS_NODATA;
	}
	out->status = DNS_OK;
	out->ttl = dns_min(ttl, DNS_TTL_MAX);
	out->why = NULL;
	return DNS_OK;
}

/* dns_parse - parse an answer to the query (id, name, type) in buf. */
enum dns_status dns_parse(const uint8_t *buf, size_t len, uint16_t id, const char *name,
                          enum dns_type type, struct dns_answer *out)
{
	const char *why = NULL;
	enum dns_status st;
	ldns_pkt *pkt;

	memset(out, 0, sizeof *out);
	if (type != DNS_A && type != DNS_MX && type != DNS_AAAA)
		return dns_bad(out, "unsupported query type");
	if (!dns_canon_name(name, out->canon))
		return dns_bad(out, "invalid query name");
	if (buf == NULL || len < DNS_HEADER_LEN || len > DNS_MAX_PACKET)
		return dns_bad(out, "bad packet length");
	pkt = dns_wire_parse(buf, len, &why);
	if (pkt == NULL)
		return dns_bad(out, why);
	why = dns_check_header(pkt, id, out->canon, type);
	if (why != NULL) {
		ldns_pkt_free(pkt);
		return dns_bad(out, why);
	}
	if (ldns_pkt_tc(pkt)) {
		st = out->status = DNS_TRUNCATED;
	} else if (ldns_pkt_edns_extended_rcode(pkt) != 0) {
		st = out->status = DNS_SERVFAIL;
	} else if (ldns_pkt_get_rcode(pkt) == LDNS_RCODE_NXDOMAIN) {
		out->ttl = dns_neg_ttl(pkt);
		st = out->status = DNS_NXDOMAIN;
	} else if (ldns_pkt_get_rcode(pkt) != LDNS_RCODE_NOERROR) {
		st = out->status = DNS_SERVFAIL;
	} else {
		st = dns_records(pkt, type, out);
	}
	ldns_pkt_free(pkt);
	return st;
}

/* dns_ns_addr - fill one sockaddr from an address token; false if it is not an address. */
static bool dns_ns_addr(const char *tok, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, tok, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(DNS_PORT);
		*sl = (socklen_t)sizeof *s4;
		return true;
	}
	if (inet_pton(AF_INET6, tok, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(DNS_PORT);
		*sl = (socklen_t)sizeof *s6;
		return true;
	}
	return false;
}

/* dns_ns_line - the address token of a "nameserver ADDR" line, or false. */
static bool dns_ns_line(const char *s, size_t n, char tok[DNS_NS_TOKEN_MAX])
{
	static const char kw[] = "nameserver";
	size_t i = 0, t = 0;

	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (n - i <= sizeof kw - 1 || memcmp(s + i, kw, sizeof kw - 1) != 0)
		return false;
	i += sizeof kw - 1;
	if (s[i] != ' ' && s[i] != '\t')
		return false;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	for (; i < n && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '#' && s[i] != ';'; i++) {
		if (t + 1 >= DNS_NS_TOKEN_MAX)
			return false;
		tok[t++] = s[i];
	}
	tok[t] = '\0';
	tok[strcspn(tok, "%")] = '\0';          /* an IPv6 zone (%eth0) is ignored */
	return tok[0] != '\0';
}

/* dns_resolv_conf - read up to max "nameserver" addresses from resolv.conf text. */
unsigned dns_resolv_conf(const char *text, size_t len, struct sockaddr_storage *out,
                         socklen_t *lens, unsigned max)
{
	char tok[DNS_NS_TOKEN_MAX];
	unsigned got = 0;
	size_t pos = 0;

	while (text != NULL && pos < len && got < max) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		socklen_t sl = 0;
		if (dns_ns_line(text + pos, n, tok) && dns_ns_addr(tok, &out[got], &sl)) {
			if (lens != NULL)
				lens[got] = sl;
			got++;
		}
		pos += n + 1;
	}
	return got;
}
