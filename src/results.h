/* results.h - one JSON object per recipient: formatting (pure, no I/O). */
#ifndef VOLLEY_RESULTS_H
#define VOLLEY_RESULTS_H
#include <stddef.h>
#include <stdint.h>

enum result_status { RS_DELIVERED, RS_BOUNCED, RS_DEFERRED, RS_FAILED };

/* Everything one result line says. Strings need not be NUL-terminated. */
struct result {
	const char *rcpt; size_t rcpt_len;     /* decoded address, or the raw field of a bad line */
	uint64_t line;                         /* line in the job file */
	enum result_status status;
	int code;                              /* SMTP reply code, or 0 for null */
	const char *enhanced;                  /* "5.1.1" or NULL */
	const char *reply; size_t reply_len;   /* server text (lines joined by "\n") or local reason */
	const char *server;                    /* "ip:port", or NULL */
	unsigned attempts;
	int64_t ms;                            /* -1 for null */
	const char *mx;                        /* MX (or relay) host name, or NULL */
	const char *ip;                        /* address connected to, or NULL */
	const char *tls;                       /* "TLSv1.3 TLS_AES_256_GCM_SHA384", or NULL */
	const char *category;                  /* category.h name; NULL: category_of() decides */
};

/* result_status_name - "delivered", "bounced", "deferred" or "failed". */
const char *result_status_name(enum result_status s);

/* result_format - write r as one JSON line ending in '\n' into dst.
 * Keys in order: rcpt, line, status, category, code, enhanced, reply, server, mx, ip, tls,
 * attempts, ms. category is null for RS_DELIVERED; otherwise r->category, or when
 * that is NULL, category_of(status, code, enhanced, reply).
 * Strings are JSON-escaped; invalid UTF-8 and control octets become \u00XX;
 * reply is cut to RESULT_MAX_REPLY input octets (with "..." appended when cut).
 * Never writes more than cap bytes; returns bytes written, or 0 if cap is
 * smaller than RESULT_MAX_LINE. */
size_t result_format(char *dst, size_t cap, const struct result *r);

#endif
