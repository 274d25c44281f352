/* test_reply.c - the reply parser: single and multi-line replies, enhanced codes, hostile lines. */
#include <criterion/criterion.h>
#include <string.h>
#include "reply.h"

static struct reply_parser p;

/* feed - one line into the parser. */
static enum reply_rc feed(const char *line, const char **err)
{
	return reply_line(&p, line, strlen(line), err);
}

Test(reply, single_line)
{
	const char *err = NULL;
	reply_reset(&p);
	cr_assert_eq(feed("250 2.1.0 Ok\r", &err), REPLY_DONE);
	cr_assert_eq(p.r.code, 250);
	cr_assert_str_eq(p.r.enhanced, "2.1.0");
	cr_assert_eq(p.r.text_len, strlen("2.1.0 Ok"));
	cr_assert(memcmp(p.r.text, "2.1.0 Ok", p.r.text_len) == 0);
	cr_assert_eq(p.r.nlines, 1);
}

Test(reply, multi_line_joined)
{
	const char *err = NULL;
	reply_reset(&p);
	cr_assert_eq(feed("250-mx.example.org", &err), REPLY_MORE);
	cr_assert_eq(feed("250-PIPELINING", &err), REPLY_MORE);
	cr_assert_eq(feed("250 8BITMIME", &err), REPLY_DONE);
	cr_assert_eq(p.r.nlines, 3);
	cr_assert_eq(p.r.text_len, strlen("mx.example.org\nPIPELINING\n8BITMIME"));
	cr_assert(memcmp(p.r.text, "mx.example.org\nPIPELINING\n8BITMIME", p.r.text_len) == 0);
	cr_assert_str_eq(p.r.enhanced, "");
}

Test(reply, bare_code_and_next_reply)
{
	const char *err = NULL;
	reply_reset(&p);
	cr_assert_eq(feed("354", &err), REPLY_DONE);
	cr_assert_eq(p.r.code, 354);
	cr_assert_eq(p.r.text_len, 0);
	cr_assert_eq(feed("550 5.1.1 <a@b>: unknown", &err), REPLY_DONE);
	cr_assert_eq(p.r.code, 550);
	cr_assert_str_eq(p.r.enhanced, "5.1.1");
}

Test(reply, enhanced_class_must_match)
{
	const char *err = NULL;
	reply_reset(&p);
	cr_assert_eq(feed("451 5.1.1 mismatched", &err), REPLY_DONE);
	cr_assert_str_eq(p.r.enhanced, "");
	char out[16];
	cr_assert_eq(reply_enhanced(550, "5.7.1234 x", 10, out), 0);
	cr_assert_eq(reply_enhanced(550, "5.7.123 x", 9, out), 8);
	cr_assert_str_eq(out, "5.7.123");
	cr_assert_eq(reply_enhanced(550, "5..1 x", 6, out), 0);
	cr_assert_eq(reply_enhanced(421, "4.4.2", 5, out), 5);
	cr_assert_str_eq(out, "4.4.2");
}

Test(reply, rejects_garbage)
{
	const char *err = NULL;
	reply_reset(&p);
	cr_assert_eq(feed("hello", &err), REPLY_ERROR);
	cr_assert_str_eq(err, "malformed reply line");
	reply_reset(&p);
	cr_assert_eq(feed("25", &err), REPLY_ERROR);
	reply_reset(&p);
	cr_assert_eq(feed("199 too low", &err), REPLY_ERROR);
	reply_reset(&p);
	cr_assert_eq(feed("600 too high", &err), REPLY_ERROR);
	reply_reset(&p);
	cr_assert_eq(feed("250x", &err), REPLY_ERROR);
	reply_reset(&p);
	cr_assert_eq(reply_line(&p, "250 a\0b", 7, &err), REPLY_ERROR);
	cr_assert_str_eq(err, "control character in reply");
}

Test(reply, code_change_in_multiline)
{
	const char *err = NULL;
	reply_reset(&p);
	cr_assert_eq(feed("250-first", &err), REPLY_MORE);
	cr_assert_eq(feed("251 second", &err), REPLY_ERROR);
	cr_assert_str_eq(err, "multi-line reply changed its code");
}

Test(reply, line_too_long)
{
	char line[REPLY_MAX_LINE + 10];
	const char *err = NULL;
	memset(line, 'a', sizeof line);
	memcpy(line, "250 ", 4);
	reply_reset(&p);
	cr_assert_eq(reply_line(&p, line, REPLY_MAX_LINE - 2, &err), REPLY_DONE);
	cr_assert_eq(reply_line(&p, line, REPLY_MAX_LINE - 1, &err), REPLY_ERROR);
	cr_assert_str_eq(err, "reply line too long");
}

Test(reply, endless_multiline_is_bounded)
{
	const char *err = NULL;
	enum reply_rc rc = REPLY_MORE;
	unsigned n = 0;
	reply_reset(&p);
	while (rc == REPLY_MORE && n < 10000) {
		rc = feed("250-more and more text to fill the reply buffer up", &err);
		n++;
	}
	cr_assert_eq(rc, REPLY_ERROR);
	cr_assert_eq(n, REPLY_MAX_LINES + 1);
	cr_assert_str_eq(err, "multi-line reply too long");
	cr_assert(p.r.text_len <= REPLY_MAX_TEXT);
}
