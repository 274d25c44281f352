/* dest.h - destinations: parsing and resolving the relay (--relay HOST[:PORT]). */
#ifndef VOLLEY_DEST_H
#define VOLLEY_DEST_H
#include <stddef.h>
#include <sys/socket.h>

/* dest_relay - parse HOST[:PORT] ("[v6]:port", a bare IPv6 literal, a name or IPv4)
 * and resolve it once at start-up (before any engine thread runs).
 * Fills addr/len and text ("ip:port" or "[ip]:port"). Returns 0 or -1 with err. */
int dest_relay(const char *spec, unsigned default_port, struct sockaddr_storage *addr,
               socklen_t *len, char *text, size_t textlen, char *err, size_t errlen);

/* dest_numeric - parse a numeric HOST[:PORT] (IPv4 or [IPv6]:PORT), no lookup. */
int dest_numeric(const char *spec, unsigned default_port, struct sockaddr_storage *addr,
                 socklen_t *len, char *err, size_t errlen);

#endif
