/* dns.h - DNS packets with ldns: build queries, parse and check answers (pure, no I/O). */
#ifndef VOLLEY_DNS_H
#define VOLLEY_DNS_H
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_MAX_NAME      255u    /* octets in a presentation-format name, no trailing dot */
#define DNS_MAX_MX        32u     /* MX records kept from one answer */
#define DNS_MAX_ADDRS     32u     /* A or AAAA records kept from one answer */
#define DNS_MAX_CNAME     8u      /* CNAME links followed inside one answer */
#define DNS_UDP_PAYLOAD   1232u   /* EDNS0 UDP payload size we advertise */
#define DNS_MAX_PACKET    65535u  /* largest answer accepted (TCP) */
#define DNS_NEG_TTL_MAX   3600u   /* cap for negative-answer TTLs (seconds) */
#define DNS_TTL_MAX       86400u  /* cap for positive TTLs (seconds) */

enum dns_type { DNS_A = 1, DNS_MX = 15, DNS_AAAA = 28 };

/* What an answer says about the question. */
enum dns_status {
	DNS_OK,          /* records of the type asked (possibly after CNAMEs) */
	DNS_NODATA,      /* the name exists, no records of that type */
	DNS_NXDOMAIN,    /* the name does not exist (RCODE 3) */
	DNS_SERVFAIL,    /* SERVFAIL, REFUSED, or another error RCODE: temporary */
	DNS_TRUNCATED,   /* TC bit set: ask again over TCP */
	DNS_BAD,         /* not an answer to our query (ID/question mismatch, garbage): ignore it */
};

struct dns_mx {
	uint16_t pref;
	char host[DNS_MAX_NAME + 1];  /* lower case, no trailing dot; "" for the null MX target "." */
};

struct dns_addr {
	int family;                   /* AF_INET or AF_INET6 */
	union { struct in_addr v4; struct in6_addr v6; } a;
};

/* A parsed answer. */
struct dns_answer {
	enum dns_status status;
	uint32_t ttl;                 /* seconds to cache: min TTL of the records used
	                               * (CNAMEs included), or for NXDOMAIN/NODATA the SOA
	                               * minimum/TTL from the authority section (default 300),
	                               * capped as above; 0 for SERVFAIL/TRUNCATED/BAD */
	unsigned nmx;                 /* MX records (DNS_MX questions) */
	struct dns_mx mx[DNS_MAX_MX];
	bool null_mx;                 /* RFC 7505: exactly one MX, preference 0, target "." */
	unsigned naddr;               /* addresses (DNS_A / DNS_AAAA questions) */
	struct dns_addr addr[DNS_MAX_ADDRS];
	char canon[DNS_MAX_NAME + 1]; /* the name after following CNAMEs (== qname if none) */
	const char *why;              /* for DNS_BAD: a short static reason */
};

/* dns_query - build a query for (name, type) with the given id, RD set, EDNS0
 * (DNS_UDP_PAYLOAD); writes wire bytes into buf. Returns the length, or 0 if the
 * name is invalid or cap too small. name is presentation format, no trailing dot. */
size_t dns_query(uint16_t id, const char *name, enum dns_type type, uint8_t *buf, size_t cap);

/* dns_parse - parse an answer to the query (id, name, type) in buf.
 * Checks QR=1, the ID, exactly one question equal (case-insensitively) to
 * (name, type, IN); anything else is DNS_BAD. Follows CNAME links inside the
 * answer section from name (at most DNS_MAX_CNAME, loops detected), then
 * collects records of type owned by the final name; records owned by other
 * names are ignored. MX results are sorted by preference (stable). Never
 * trusts a length field: a malformed packet is DNS_BAD. Returns out->status. */
enum dns_status dns_parse(const uint8_t *buf, size_t len, uint16_t id, const char *name,
                          enum dns_type type, struct dns_answer *out);

/* dns_tcp_frame - the two-octet length prefix for a TCP query of len octets. */
void dns_tcp_frame(size_t len, uint8_t out[2]);

/* dns_name_ok - a syntactically valid host name for a query (LDH labels, 1..63
 * octets each, <= 253 total, no trailing dot). */
bool dns_name_ok(const char *name);

/* dns_resolv_conf - read up to max "nameserver" addresses from a resolv.conf
 * text (not a path), port 53. Returns how many. */
unsigned dns_resolv_conf(const char *text, size_t len, struct sockaddr_storage *out,
                         socklen_t *lens, unsigned max);

#endif
