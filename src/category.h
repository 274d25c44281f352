/* category.h - bounce classification: why a recipient was not delivered, as one word (pure, no I/O). */
#ifndef VOLLEY_CATEGORY_H
#define VOLLEY_CATEGORY_H
#include <stddef.h>

#include "results.h"

/*
 * The categories (docs/results-format.md has the full table):
 *
 *   bad-mailbox  the recipient mailbox does not exist, is disabled or has moved
 *   bad-domain   the recipient domain does not exist or cannot be routed to
 *   no-mx        the recipient domain accepts no mail (null MX, RFC 7505; 521/556)
 *   policy       refused by the receiver's policy (relaying, sender, SPF/DKIM/DMARC, ...)
 *   spam         refused as spam, or for the sender's reputation or a blocklist
 *   quota        the mailbox (or the receiving system) is full
 *   throttled    slow down or come back later: rate limits, greylisting, busy, 421
 *   tls          TLS failed or is required and not available
 *   dns          a DNS lookup failed (temporarily)
 *   protocol     the SMTP dialogue broke down (syntax errors, protocol violations)
 *   timeout      the server did not answer in time
 *   connection   could not connect, or the connection was lost
 *   local        volley decided locally: a bad job line, a resource limit
 *   auth         SMTP authentication failed or is not possible
 *   content      the message itself: size, 8-bit or non-ASCII content, virus
 *   interrupted  the run was stopped before the recipient was done
 *   other        anything else
 */

/* category_of - the category of one outcome: NULL for RS_DELIVERED, else one of the
 * static names above. code is the reply code (0: a local decision, text is volley's
 * reason), enhanced the RFC 3463 code or NULL, text[0..len) the reply text. */
const char *category_of(enum result_status st, int code, const char *enhanced,
                        const char *text, size_t len);

#endif
