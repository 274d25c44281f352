/* reply.c - SMTP reply parser: validates and assembles "NNN-text" / "NNN text" lines. */
#include "reply.h"
#include <string.h>

/* reply_reset - forget any partial reply. */
void reply_reset(struct reply_parser *p)
{
	p->in_progress = 0;
	p->r.code = 0;
	p->r.enhanced[0] = '\0';
	p->r.nlines = 0;
	p->r.text_len = 0;
}

/* digits - parse n decimal digits at s (1..3); -1 when not all digits. */
static int digits(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* reply_enhanced - extract "c.s.d " (RFC 3463) matching the reply class. */
size_t reply_enhanced(int code, const char *text, size_t len, char out[16])
{
	size_t i = 0, part = 0, start = 0;
	out[0] = '\0';
	if (len < 5 || text[0] != '0' + code / 100)
		return 0;
	for (i = 0; i < len && i < 15; i++) {
		char c = text[i];
		if (c >= '0' && c <= '9') {
			if (i - start >= 3)
				return 0;
			continue;
		}
		if (c == '.' && part < 2 && i > start) {
			part++;
			start = i + 1;
			continue;
		}
		break;
	}
	if (part != 2 || i == start || (i < len && text[i] != ' '))
		return 0;
	memcpy(out, text, i);
	out[i] = '\0';
	return i < len ? i + 1 : i;
}

/* text_append - add one line's text to the reply, '\n'-separated, bounded. */
static void text_append(struct reply *r, const char *s, size_t n)
{
	size_t room = sizeof r->text - r->text_len;
	if (r->nlines > 0 && room > 0) {
		r->text[r->text_len++] = '\n';
		room--;
	}
	if (n > room)
		n = room;
	memcpy(r->text + r->text_len, s, n);
	r->text_len += n;
}

/* reply_line - feed one line; see reply.h. */
enum reply_rc reply_line(struct reply_parser *p, const char *line, size_t len, const char **err)
{
	struct reply *r = &p->r;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len + 2 > REPLY_MAX_LINE) {
		*err = "reply line too long";
		return REPLY_ERROR;
	}
	int code = len >= 3 ? digits(line, 3) : -1;
	if (code < 200 || code > 599 || (len > 3 && line[3] != ' ' && line[3] != '-')) {
		*err = "malformed reply line";
		return REPLY_ERROR;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*err = "control character in reply";
			return REPLY_ERROR;
		}
	}
	if (!p->in_progress) {
		reply_reset(p);
		r->code = code;
	} else if (code != r->code) {
		*err = "multi-line reply changed its code";
		return REPLY_ERROR;
	}
	if (r->nlines >= REPLY_MAX_LINES) {
		*err = "multi-line reply too long";
		return REPLY_ERROR;
	}
	const char *txt = len > 4 ? line + 4 : line + len;
	size_t tlen = len > 4 ? len - 4 : 0;
	if (r->nlines == 0)
		reply_enhanced(code, txt, tlen, r->enhanced);
	text_append(r, txt, tlen);
	r->nlines++;
	p->in_progress = len > 3 && line[3] == '-';
	return p->in_progress ? REPLY_MORE : REPLY_DONE;
}
