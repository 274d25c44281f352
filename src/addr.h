/* addr.h - RFC 5321 / RFC 6531 mailbox syntax checks (pure, no I/O). */
#ifndef VOLLEY_ADDR_H
#define VOLLEY_ADDR_H
#include <stddef.h>

enum addr_flag {
	ADDR_UTF8 = 1u << 0, /* has non-ASCII octets: needs SMTPUTF8 (RFC 6531) */
};

/* addr_check - validate a bare Mailbox (local@domain, no angle brackets).
 * Accepts Dot-string or Quoted-string local parts, domains of LDH labels
 * (UTF-8 U-labels allowed, flagged ADDR_UTF8), and address literals
 * ([1.2.3.4], [IPv6:...]). Rejects control characters, NUL, CR, LF,
 * local parts over ADDR_MAX_LOCAL, domains over ADDR_MAX_DOMAIN, labels over
 * 63 octets, mailboxes over ADDR_MAX_MAILBOX, malformed UTF-8.
 * Returns NULL when valid (and sets *flags), else a short static reason such
 * as "local part longer than 64 octets". */
const char *addr_check(const char *a, size_t len, unsigned *flags);

/* addr_domain - pointer to the domain part (after the last '@' outside quotes), or NULL. */
const char *addr_domain(const char *a, size_t len);

#endif
