/* reply.h - SMTP reply parser (RFC 5321 4.2): complete lines in, whole replies out. No I/O. */
#ifndef VOLLEY_REPLY_H
#define VOLLEY_REPLY_H
#include <stddef.h>
#include "bounds.h"

/* One complete (possibly multi-line) reply. */
struct reply {
	int code;                      /* 200..599 */
	char enhanced[16];             /* RFC 3463 code of the first line, "" when absent */
	unsigned nlines;               /* lines in the reply */
	size_t text_len;               /* octets in text */
	char text[REPLY_MAX_TEXT];     /* line texts (after "NNN-"/"NNN "), joined by '\n', cut at the bound */
};

/* Parser state carried between lines of one reply. */
struct reply_parser {
	struct reply r;                /* reply being assembled; valid after REPLY_DONE */
	int in_progress;               /* 1 after a "NNN-" line */
};

enum reply_rc {
	REPLY_ERROR = -1,              /* protocol violation: *err says what */
	REPLY_MORE = 0,                /* line accepted, reply continues */
	REPLY_DONE = 1,                /* reply complete in p->r */
};

/* reply_reset - forget any partial reply. */
void reply_reset(struct reply_parser *p);

/* reply_line - feed one line without its line ending (CRLF or bare LF). */
enum reply_rc reply_line(struct reply_parser *p, const char *line, size_t len, const char **err);

/* reply_enhanced - copy an RFC 3463 code "c.s.d" at the start of text into out (16 bytes)
 * when its class matches code's first digit; returns octets consumed incl. one space, or 0. */
size_t reply_enhanced(int code, const char *text, size_t len, char out[16]);

#endif
