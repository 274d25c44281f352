/* message.h - the message, normalised to CRLF and dot-stuffed once per run. */
#ifndef VOLLEY_MESSAGE_H
#define VOLLEY_MESSAGE_H
#include <stdbool.h>
#include <stddef.h>

/* A prepared message: the exact bytes that follow a 354 reply. */
struct message {
	char *wire;          /* CRLF lines, dot-stuffed, ending with "\r\n.\r\n" (or ".\r\n" if empty) */
	size_t wire_len;     /* octets of wire */
	size_t size;         /* octets of the normalised message before stuffing (for SIZE=) */
	bool eightbit;       /* some octet >= 0x80: needs 8BITMIME */
	unsigned lines;      /* number of lines */
};

/* message_prepare - normalise src (LF or CRLF endings) into m.
 * Adds a final CRLF when the last line has none, dot-stuffs (RFC 5321 4.5.2),
 * appends the terminator. Rejects: a line over MSG_MAX_LINE octets, NUL, a bare
 * CR, and a header section that is not RFC 5322 (a first line that is not a
 * header field, a header line that is neither a field nor a continuation).
 * name is used in errors: "name:line: reason". Returns 0 or -1. */
int message_prepare(struct message *m, const char *src, size_t len, const char *name,
                    char *err, size_t errlen);

/* message_load - read the file at path and message_prepare it. */
int message_load(struct message *m, const char *path, char *err, size_t errlen);

/* message_free - release m. */
void message_free(struct message *m);

#endif
