/* message.c - the message file, checked, normalised to CRLF and dot-stuffed once per run. */
#include "message.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounds.h"

/*
 * Two passes over the input, both driven by memchr so that a large message
 * costs a few memory-bandwidth sweeps rather than a branch per octet:
 *
 *   msg_check  validates every line (NUL, bare CR, length, header syntax) and
 *              counts what the output needs: CRLF size, lines, leading dots;
 *   msg_fill   writes the wire form into one buffer of exactly that size.
 *
 * The wire form is what follows the server's 354: CRLF lines, each line that
 * begins with '.' given one more '.' (RFC 5321 4.5.2), then ".\r\n".
 */

#define MSG_READ_CHUNK  65536u  /* first buffer for files of unknown size */

/* What the checking pass learns about the input; the fill pass relies on it. */
struct msg_scan {
	const char *name;       /* message name used in errors */
	char *err;              /* caller's error buffer (may be NULL) */
	size_t errlen;          /* its size */
	size_t size;            /* octets of the CRLF message, unstuffed, no terminator */
	size_t dots;            /* lines that begin with '.' (one extra octet each) */
	unsigned lines;         /* lines seen */
};

/* msg_error - write "prefix: reason" into err, if there is room for anything. */
static void msg_error(char *err, size_t errlen, const char *prefix, const char *fmt, va_list ap)
{
	if (err == NULL || errlen == 0)
		return;
	int n = snprintf(err, errlen, "%s: ", prefix);
	if (n < 0 || (size_t)n >= errlen)
		return;
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

/* msg_fail_line - report "name:line: reason" and return -1. */
static int msg_fail_line(const struct msg_scan *s, unsigned line, const char *fmt, ...)
{
	char prefix[4096 + 16];
	snprintf(prefix, sizeof prefix, "%s:%u", s->name, line);
	va_list ap;
	va_start(ap, fmt);
	msg_error(s->err, s->errlen, prefix, fmt, ap);
	va_end(ap);
	return -1;
}

/* msg_fail - report "name: reason" and return -1. */
static int msg_fail(const char *name, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	msg_error(err, errlen, name, fmt, ap);
	va_end(ap);
	return -1;
}

/* msg_has_8bit - whether any octet of p[0..n) is >= 0x80 (64 octets per step). */
static bool msg_has_8bit(const char *p, size_t n)
{
	const uint64_t high = UINT64_C(0x8080808080808080);
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		uint64_t w[8];
		memcpy(w, p + i, sizeof w);
		uint64_t acc = w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7];
		if (acc & high)
			return true;
	}
	for (; i < n; i++)
		if ((unsigned char)p[i] & 0x80u)
			return true;
	return false;
}

/* msg_header_reason - why header line p[0..n) (not empty) is bad, or NULL if it is fine. */
static const char *msg_header_reason(const char *p, size_t n, unsigned line)
{
	if (p[0] == ' ' || p[0] == '\t')
		return line == 1 ? "message starts with a continuation line, not a header field" : NULL;
	size_t i = 0;
	while (i < n && (unsigned char)p[i] >= 33 && (unsigned char)p[i] <= 126 && p[i] != ':')
		i++;
	if (i == 0 || i == n || p[i] != ':')
		return "not a header field";
	return NULL;
}

/* msg_check - validate src line by line and fill in the sizes of s. Returns 0 or -1. */
static int msg_check(struct msg_scan *s, const char *src, size_t len)
{
	const char *end = src + len;
	const char *nul = memchr(src, '\0', len);  /* first NUL, if any */
	const char *cr = memchr(src, '\r', len);   /* next CR not yet accounted for */
	bool in_header = true;
	unsigned line = 0;

	for (const char *p = src; p < end; ) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *next = lf ? lf + 1 : end;
		const char *eol = lf ? lf : end;
		line++;
		if (nul != NULL && nul < next)
			return msg_fail_line(s, line, "NUL octet");
		for (; cr != NULL && cr < next; cr = memchr(cr + 1, '\r', (size_t)(end - cr - 1))) {
			if (lf == NULL || cr + 1 != lf)
				return msg_fail_line(s, line, "bare CR (a CR not followed by LF)");
			eol = cr;
		}
		size_t n = (size_t)(eol - p);
		if (n > MSG_MAX_LINE)
			return msg_fail_line(s, line, "line is %zu octets, longer than %u", n, MSG_MAX_LINE);
		if (in_header && n == 0 && line == 1)
			return msg_fail_line(s, line, "message starts with an empty line, not a header field");
		if (in_header && n == 0)
			in_header = false;
		const char *why = in_header ? msg_header_reason(p, n, line) : NULL;
		if (why != NULL)
			return msg_fail_line(s, line, "%s", why);
		if (n > 0 && p[0] == '.')
			s->dots++;
		s->size += n + 2;
		p = next;
	}
	s->lines = line;
	return 0;
}

/* msg_fill - write the wire form of checked input src into out; returns one past the end. */
static char *msg_fill(char *out, const char *src, size_t len)
{
	const char *end = src + len;
	for (const char *p = src; p < end; ) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *eol = lf ? lf : end;
		if (lf != NULL && lf > p && lf[-1] == '\r')
			eol = lf - 1;
		size_t n = (size_t)(eol - p);
		if (n > 0 && p[0] == '.')
			*out++ = '.';
		memcpy(out, p, n);
		out += n;
		*out++ = '\r';
		*out++ = '\n';
		p = lf ? lf + 1 : end;
	}
	memcpy(out, ".\r\n", 3);
	return out + 3;
}

/* message_prepare - normalise, check and dot-stuff src into m (see message.h). */
int message_prepare(struct message *m, const char *src, size_t len, const char *name,
                    char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	if (name == NULL)
		name = "message";
	if (len == 0)
		return msg_fail(name, err, errlen, "message is empty");
	if (len > MSG_MAX_SIZE)
		return msg_fail(name, err, errlen, "message is %zu octets, larger than %u",
		                len, MSG_MAX_SIZE);

	struct msg_scan s = { .name = name, .err = err, .errlen = errlen };
	if (msg_check(&s, src, len) < 0)
		return -1;

	size_t wire_len = s.size + s.dots + 3;
	char *wire = malloc(wire_len);
	if (wire == NULL)
		return msg_fail(name, err, errlen, "out of memory for %zu octets", wire_len);
	char *end = msg_fill(wire, src, len);
	assert((size_t)(end - wire) == wire_len);
	(void)end;

	m->wire = wire;
	m->wire_len = wire_len;
	m->size = s.size;
	m->eightbit = msg_has_8bit(src, len);
	m->lines = s.lines;
	return 0;
}

/* msg_read_all - read fd to its end into a fresh buffer, at most MSG_MAX_SIZE octets. */
static int msg_read_all(int fd, size_t hint, char **out, size_t *outlen,
                        const char *path, char *err, size_t errlen)
{
	size_t cap = hint + 1;   /* one spare octet sees EOF without growing */
	size_t len = 0;
	char *buf = malloc(cap);
	if (buf == NULL)
		return msg_fail(path, err, errlen, "out of memory for %zu octets", cap);
	for (;;) {
		if (len == cap) {
			if (cap > MSG_MAX_SIZE)
				break;
			size_t ncap = cap * 2 > (size_t)MSG_MAX_SIZE + 1 ? (size_t)MSG_MAX_SIZE + 1 : cap * 2;
			char *nbuf = realloc(buf, ncap);
			if (nbuf == NULL) {
				free(buf);
				return msg_fail(path, err, errlen, "out of memory for %zu octets", ncap);
			}
			buf = nbuf;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			return msg_fail(path, err, errlen, "cannot read: %s", strerror(e));
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > MSG_MAX_SIZE) {
		free(buf);
		return msg_fail(path, err, errlen, "message is larger than %u octets", MSG_MAX_SIZE);
	}
	*out = buf;
	*outlen = len;
	return 0;
}

/* message_load - read the file at path and message_prepare it, naming it path in errors. */
int message_load(struct message *m, const char *path, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return msg_fail(path, err, errlen, "cannot read: %s", strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return msg_fail(path, err, errlen, "cannot read: %s", strerror(e));
	}
	if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > MSG_MAX_SIZE) {
		close(fd);
		return msg_fail(path, err, errlen, "message is %jd octets, larger than %u",
		                (intmax_t)st.st_size, MSG_MAX_SIZE);
	}
	size_t hint = S_ISREG(st.st_mode) ? (size_t)st.st_size : MSG_READ_CHUNK;
	char *buf = NULL;
	size_t len = 0;
	int rc = msg_read_all(fd, hint, &buf, &len, path, err, errlen);
	close(fd);
	if (rc < 0)
		return -1;
	rc = message_prepare(m, buf, len, path, err, errlen);
	free(buf);
	return rc;
}

/* message_free - release the wire buffer of m and clear it. */
void message_free(struct message *m)
{
	free(m->wire);
	memset(m, 0, sizeof *m);
}
