/* dest.c - the relay destination: host[:port] parsing and one start-up resolution. */
#include "dest.h"
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* split - separate host and port; returns 0 or -1 with err. */
static int split(const char *spec, unsigned defport, char *host, size_t hostlen,
                 unsigned *port, char *err, size_t errlen)
{
	const char *p = NULL, *h = spec;
	size_t hl;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || (close[1] && close[1] != ':')) {
			snprintf(err, errlen, "--relay %s: expected [IPv6]:PORT", spec);
			return -1;
		}
		h = spec + 1;
		hl = (size_t)(close - h);
		p = close[1] ? close + 2 : NULL;
	} else {
		const char *colon = strchr(spec, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL; /* a bare IPv6 literal */
		hl = colon ? (size_t)(colon - spec) : strlen(spec);
		p = colon ? colon + 1 : NULL;
	}
	if (hl == 0 || hl >= hostlen) {
		snprintf(err, errlen, "--relay %s: bad host", spec);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = defport;
	if (p) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (!*p || *end || v == 0 || v > 65535) {
			snprintf(err, errlen, "--relay %s: bad port", spec);
			return -1;
		}
		*port = (unsigned)v;
	}
	return 0;
}

/* dest_relay - resolve the relay to one address. */
int dest_relay(const char *spec, unsigned defport, struct sockaddr_storage *addr,
               socklen_t *len, char *text, size_t textlen, char *err, size_t errlen)
{
	char host[256], ip[INET6_ADDRSTRLEN];
	unsigned port;
	if (split(spec, defport, host, sizeof host, &port, err, errlen) < 0)
		return -1;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0 || !res) {
		snprintf(err, errlen, "--relay %s: cannot resolve %s: %s", spec, host, gai_strerror(rc));
		return -1;
	}
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	if (addr->ss_family == AF_INET6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
		a6->sin6_port = htons((uint16_t)port);
		inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof ip);
		snprintf(text, textlen, "[%s]:%u", ip, port);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
		a4->sin_port = htons((uint16_t)port);
		inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof ip);
		snprintf(text, textlen, "%s:%u", ip, port);
	}
	return 0;
}

/* dest_numeric - parse a numeric HOST[:PORT] (IPv4, or [IPv6]:PORT) without any lookup. */
int dest_numeric(const char *spec, unsigned default_port, struct sockaddr_storage *addr,
                 socklen_t *len, char *err, size_t errlen)
{
	char host[256];
	unsigned port;
	if (split(spec, default_port, host, sizeof host, &port, err, errlen) < 0)
		return -1;
	memset(addr, 0, sizeof *addr);
	struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof *a4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof *a6;
		return 0;
	}
	snprintf(err, errlen, "%s: not a numeric IPv4 or IPv6 address", spec);
	return -1;
}
