/* test_smtp.c - the SMTP state machine driven with byte strings: pipelined and lockstep. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addr.h"
#include "smtp.h"

#define MAXR 16

/* A fake engine: a list of recipients and a record of outcomes. */
struct fake {
	struct rcpt rc[MAXR];
	unsigned n, next;
	enum result_status st[MAXR];
	int code[MAXR];
	char text[MAXR][128];
	unsigned results[MAXR];
};

static struct fake fk;
static struct smtp sm;
static struct smtp_config cfg;
static struct message msg;
static void *mem;

static unsigned f_next(void *ctx, struct rcpt *out, unsigned max, size_t budget)
{
	unsigned n = 0;
	(void)ctx;
	(void)budget;
	while (n < max && fk.next < fk.n)
		out[n++] = fk.rc[fk.next++];
	return n;
}

static void f_result(void *ctx, const struct rcpt *r, enum result_status st, int code,
                     const char *enh, const char *text, size_t len, int64_t t0)
{
	unsigned i = (unsigned)r->line;
	(void)ctx;
	(void)enh;
	(void)t0;
	cr_assert(i < MAXR);
	fk.results[i]++;
	fk.st[i] = st;
	fk.code[i] = code;
	snprintf(fk.text[i], sizeof fk.text[i], "%.*s", (int)len, text);
}

static int64_t f_now(void *ctx)
{
	(void)ctx;
	return 1000;
}

static const struct smtp_ops ops = { f_next, f_result, f_now };

/* add_rcpt - queue a recipient; its index is its "line". */
static void add_rcpt(const char *addr)
{
	struct rcpt *r = &fk.rc[fk.n];
	memset(r, 0, sizeof *r);
	r->raw = addr;
	r->raw_len = (uint32_t)strlen(addr);
	r->addr_len = (uint16_t)strlen(addr);
	addr_check(addr, strlen(addr), &(unsigned){0});
	r->line = fk.n;
	fk.n++;
}

/* setup_with - fresh machine with a message body and limits. */
static void setup_with(const char *body, unsigned max_rcpts, unsigned max_msgs, bool nopipe)
{
	char err[256];
	if (mem) {
		free(mem);
		message_free(&msg);
		mem = NULL;
	}
	memset(&fk, 0, sizeof fk);
	cr_assert_eq(message_prepare(&msg, body, strlen(body), "msg", err, sizeof err), 0, "%s", err);
	cfg = (struct smtp_config){ .helo = "client.test", .from = "news@example.com",
		.msg = &msg, .max_rcpts = max_rcpts, .max_msgs = max_msgs, .no_pipelining = nopipe };
	mem = calloc(1, smtp_mem(&cfg));
	smtp_init(&sm, &cfg, &ops, NULL, mem);
	smtp_start(&sm);
}

static void teardown_all(void)
{
	free(mem);
	mem = NULL;
	message_free(&msg);
}

/* out - everything queued for sending, as a string; marks it sent. */
static char *out(void)
{
	static char buf[65536];
	struct iovec iov[SMTP_OUT_SEGS];
	size_t len = 0;
	unsigned n = smtp_out_iov(&sm.out, iov, SMTP_OUT_SEGS);
	for (unsigned i = 0; i < n; i++) {
		memcpy(buf + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	buf[len] = '\0';
	smtp_out_consume(&sm.out, len);
	return buf;
}

/* in - feed server bytes; all must be consumed. */
static void in(const char *s)
{
	cr_assert_eq(smtp_input(&sm, s, strlen(s)), strlen(s));
}

static const char body[] = "Subject: t\r\n\r\nhello\r\n.dot\r\n";
static const char wire[] = "Subject: t\r\n\r\nhello\r\n..dot\r\n.\r\n";

/* greet - greeting and EHLO with the given extension lines. */
static void greet(const char *ehlo_reply)
{
	cr_assert_str_eq(out(), "");
	in("220 mx.test ESMTP\r\n");
	cr_assert_str_eq(out(), "EHLO client.test\r\n");
	in(ehlo_reply);
}

TestSuite(smtp, .fini = teardown_all);

Test(smtp, pipelined_groups_and_rcpt_rejection)
{
	setup_with(body, 100, 1000, false);
	add_rcpt("a@example.org");
	add_rcpt("b@example.org");
	greet("250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
	cr_assert_str_eq(out(), "MAIL FROM:<news@example.com>\r\nRCPT TO:<a@example.org>\r\n"
	                 "RCPT TO:<b@example.org>\r\nDATA\r\n");
	add_rcpt("c@example.org");
	in("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 <b@example.org>: unknown\r\n");
	cr_assert_eq(fk.results[1], 1);
	cr_assert_eq(fk.st[1], RS_BOUNCED);
	cr_assert_eq(fk.code[1], 550);
	in("354 go ahead\r\n");
	char expect[512];
	snprintf(expect, sizeof expect, "%sMAIL FROM:<news@example.com>\r\n"
	         "RCPT TO:<c@example.org>\r\nDATA\r\n", wire);
	cr_assert_str_eq(out(), expect, "content, dot and next group go together");
	in("250 2.0.0 queued as X\r\n");
	cr_assert_eq(fk.results[0], 1);
	cr_assert_eq(fk.st[0], RS_DELIVERED);
	cr_assert_str_eq(fk.text[0], "2.0.0 queued as X");
	in("250 ok\r\n250 ok\r\n354 go\r\n");
	cr_assert_str_eq(out(), wire, "no work left: content only, session goes idle");
	in("250 ok\r\n");
	cr_assert_eq(fk.st[2], RS_DELIVERED);
	cr_assert(sm.idle);
	smtp_finish(&sm);
	cr_assert_str_eq(out(), "QUIT\r\n");
	in("221 bye\r\n");
	cr_assert_eq(sm.state, SS_DONE);
	for (unsigned i = 0; i < 3; i++)
		cr_assert_eq(fk.results[i], 1);
}

Test(smtp, a_recipient_changed_under_the_mapping_never_reaches_the_wire)
{
	/* The job is mapped: if its file is rewritten after a line was parsed, the address
	 * read at send time may hold a CR LF (an injected command) or zeros (a truncation). */
	static char a[] = "a@example.org", b[] = "b@example.org";
	setup_with(body, 100, 1000, false);
	add_rcpt(a);
	add_rcpt(b);
	b[1] = '\r';
	b[2] = '\n';
	greet("250-mx.test\r\n250 PIPELINING\r\n");
	char *o = out();
	cr_assert_null(strstr(o, "\r\nexample.org"), "no CR LF from the changed line: %s", o);
	cr_assert_null(strstr(o, "RCPT TO:<b"), "the changed recipient is not sent: %s", o);
	cr_assert_eq(sm.state, SS_FAILED);
	cr_assert_eq(fk.results[0], 1);
	cr_assert_eq(fk.results[1], 1);
	cr_assert_eq(fk.st[1], RS_DEFERRED);
	cr_assert(strstr(fk.text[1], "job line changed since it was read"), "%s", fk.text[1]);
}

Test(smtp, a_control_octet_anywhere_in_a_changed_address_is_caught)
{
	/* wire_safe checks eight octets at a time, then the rest: try every position. */
	static const char good[] = "first.last+tag@mail.example.org";
	static char a[sizeof good];
	for (size_t pos = 0; pos + 1 < sizeof good; pos++) {
		for (int k = 0; k < 3; k++) {
			memcpy(a, good, sizeof good);
			setup_with(body, 100, 1000, false);
			add_rcpt(a);
			a[pos] = k == 0 ? '\n' : k == 1 ? '\r' : '\x1f';
			greet("250-mx.test\r\n250 PIPELINING\r\n");
			cr_assert_eq(sm.state, SS_FAILED, "octet %d at %zu not caught", k, pos);
			cr_assert_null(strstr(out(), "RCPT TO:"), "nothing sent for position %zu", pos);
		}
	}
}

Test(smtp, lockstep_one_command_at_a_time)
{
	setup_with(body, 100, 1000, false);
	add_rcpt("a@example.org");
	add_rcpt("b@example.org");
	greet("250-mx.test\r\n250 SIZE 1000000\r\n");
	cr_assert_str_eq(out(), "MAIL FROM:<news@example.com> SIZE=27\r\n");
	in("250 ok\r\n");
	cr_assert_str_eq(out(), "RCPT TO:<a@example.org>\r\n");
	in("451 4.3.0 try later\r\n");
	cr_assert_eq(fk.st[0], RS_DEFERRED);
	cr_assert_str_eq(out(), "RCPT TO:<b@example.org>\r\n");
	in("250 ok\r\n");
	cr_assert_str_eq(out(), "DATA\r\n");
	in("354 go\r\n");
	cr_assert_str_eq(out(), wire);
	in("250 ok\r\n");
	cr_assert_eq(fk.st[1], RS_DELIVERED);
	cr_assert_eq(fk.results[0], 1);
	cr_assert_eq(fk.results[1], 1);
}

Test(smtp, a_reply_before_its_command_was_sent_is_a_protocol_error)
{
	/* A 250 behind the 354, before the message went out, must not count as delivery. */
	setup_with(body, 100, 1000, false);
	add_rcpt("a@example.org");
	greet("250-mx.test\r\n250 SIZE 1000000\r\n");
	cr_assert_str_eq(out(), "MAIL FROM:<news@example.com> SIZE=27\r\n");
	in("250 ok\r\n");
	cr_assert_str_eq(out(), "RCPT TO:<a@example.org>\r\n");
	in("250 ok\r\n");
	cr_assert_str_eq(out(), "DATA\r\n");
	in("354 go\r\n250 2.0.0 queued early\r\n");
	cr_assert_eq(sm.state, SS_FAILED);
	cr_assert_eq(fk.results[0], 1);
	cr_assert_eq(fk.st[0], RS_DEFERRED);
	cr_assert(strstr(fk.text[0], "not sent yet"), "%s", fk.text[0]);
}

Test(smtp, a_421_counts_even_before_its_command_was_sent)
{
	setup_with(body, 100, 1000, false);
	add_rcpt("a@example.org");
	greet("250-mx.test\r\n250 SIZE 1000000\r\n");
	cr_assert_str_eq(out(), "MAIL FROM:<news@example.com> SIZE=27\r\n");
	in("250 ok\r\n421 4.7.0 closing\r\n");
	cr_assert_eq(sm.state, SS_FAILED);
	cr_assert_eq(sm.fail_code, 421);
	cr_assert_eq(fk.st[0], RS_DEFERRED);
}

Test(smtp, lockstep_all_rcpts_rejected_resets)
{
	setup_with(body, 1, 1000, true);
	add_rcpt("a@example.org");
	add_rcpt("b@example.org");
	greet("250-mx.test\r\n250 PIPELINING\r\n");
	cr_assert_str_eq(out(), "MAIL FROM:<news@example.com>\r\n", "--no-pipelining wins");
	in("250 ok\r\n");
	cr_assert_str_eq(out(), "RCPT TO:<a@example.org>\r\n");
	in("550 5.1.1 no\r\n");
	cr_assert_str_eq(out(), "RSET\r\n");
	in("250 ok\r\n");
	cr_assert_str_eq(out(), "MAIL FROM:<news@example.com>\r\n");
}

Test(smtp, data_rejected_pipelined)
{
	setup_with(body, 100, 1000, false);
	add_rcpt("a@example.org");
	add_rcpt("b@example.org");
	greet("250-mx.test\r\n250 PIPELINING\r\n");
	out();
	in("250 ok\r\n250 ok\r\n250 ok\r\n554 5.3.0 no DATA today\r\n");
	cr_assert_eq(fk.st[0], RS_BOUNCED);
	cr_assert_eq(fk.st[1], RS_BOUNCED);
	cr_assert_eq(fk.code[1], 554);
	cr_assert(sm.idle);
	smtp_finish(&sm);
	cr_assert_str_eq(out(), "QUIT\r\n");
}

Test(smtp, data_rejected_then_next_txn_starts_with_rset)
{
	setup_with(body, 1, 1000, false);
	add_rcpt("a@example.org");
	add_rcpt("b@example.org");
	greet("250-mx.test\r\n250 PIPELINING\r\n");
	out();
	in("250 ok\r\n250 ok\r\n451 4.3.2 not now\r\n");
	cr_assert_eq(fk.st[0], RS_DEFERRED);
	cr_assert_str_eq(out(), "RSET\r\nMAIL FROM:<news@example.com>\r\nRCPT TO:<b@example.org>\r\n"
	                 "DATA\r\n");
}

Test(smtp, all_rcpts_rejected_but_354_sends_lone_dot)
{
	setup_with(body, 100, 1000, false);
	add_rcpt("a@example.org");
	greet("250-mx.test\r\n250 PIPELINING\r\n");
	out();
	in("250 ok\r\n550 no\r\n354 go\r\n");
	cr_assert_str_eq(out(), ".\r\n");
	in("554 no valid recipients\r\n");
	cr_assert_eq(fk.results[0], 1);
	cr_assert_eq(fk.code[0], 550);
}

Test(smtp, mail_rejected_pipelined_reports_once)
{
	setup_with(body, 100, 1000, false);
	add_rcpt("a@example.org");
	add_rcpt("b@example.org");
	greet("250-mx.test\r\n250 PIPELINING\r\n");
	out();
	in("553 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n"
	   "503 5.5.1 need MAIL\r\n");
	cr_assert_eq(fk.results[0], 1);
	cr_assert_eq(fk.results[1], 1);
	cr_assert_eq(fk.code[0], 553);
	cr_assert_eq(fk.st[1], RS_BOUNCED);
}

Test(smtp, eightbit_without_8bitmime_fails_locally)
{
	setup_with("Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n", 100, 1000, false);
	add_rcpt("a@example.org");
	add_rcpt("b@example.org");
	greet("250-mx.test\r\n250 PIPELINING\r\n");
	cr_assert_eq(fk.st[0], RS_FAILED);
	cr_assert_eq(fk.st[1], RS_FAILED);
	cr_assert(strstr(fk.text[0], "8BITMIME") != NULL);
	cr_assert_str_eq(out(), "", "nothing goes on the wire");
	cr_assert(sm.idle);
}

Test(smtp, eightbit_with_8bitmime_sets_body)
{
	setup_with("Subject: caf\xc3\xa9\r\n\r\nx\r\n", 100, 1000, false);
	add_rcpt("a@example.org");
	greet("250-mx.test\r\n250-8BITMIME\r\n250 PIPELINING\r\n");
	cr_assert_str_eq(out(), "MAIL FROM:<news@example.com> BODY=8BITMIME\r\n"
	                 "RCPT TO:<a@example.org>\r\nDATA\r\n");
}

Test(smtp, size_limit_fails_locally)
{
	setup_with(body, 100, 1000, false);
	add_rcpt("a@example.org");
	greet("250-mx.test\r\n250 SIZE 10\r\n");
	cr_assert_eq(fk.st[0], RS_FAILED);
	cr_assert(strstr(fk.text[0], "SIZE") != NULL);
}

Test(smtp, helo_fallback)
{
	setup_with(body, 100, 1000, false);
	add_rcpt("a@example.org");
	greet("502 5.5.2 EHLO not supported\r\n");
	cr_assert_str_eq(out(), "HELO client.test\r\n");
	in("250 hi\r\n");
	cr_assert_str_eq(out(), "MAIL FROM:<news@example.com>\r\n");
}

Test(smtp, max_messages_per_connection_quits)
{
	setup_with(body, 1, 2, false);
	add_rcpt("a@example.org");
	add_rcpt("b@example.org");
	add_rcpt("c@example.org");
	greet("250-mx.test\r\n250 PIPELINING\r\n");
	out();
	in("250 ok\r\n250 ok\r\n354 go\r\n");
	cr_assert(strstr(out(), "RCPT TO:<b@example.org>") != NULL);
	in("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	char expect[256];
	snprintf(expect, sizeof expect, "%sQUIT\r\n", wire);
	cr_assert_str_eq(out(), expect);
	in("250 ok\r\n221 bye\r\n");
	cr_assert_eq(sm.state, SS_DONE);
	cr_assert_eq(fk.results[2], 0, "third recipient left for the next connection");
}

Test(smtp, service_closing_421_defers_open)
{
	setup_with(body, 100, 1000, false);
	add_rcpt("a@example.org");
	add_rcpt("b@example.org");
	greet("250-mx.test\r\n250 PIPELINING\r\n");
	out();
	in("250 ok\r\n250 ok\r\n421 4.7.0 too many connections\r\n");
	cr_assert_eq(sm.state, SS_FAILED);
	cr_assert_eq(fk.st[0], RS_DEFERRED);
	cr_assert_eq(fk.st[1], RS_DEFERRED);
	cr_assert_eq(fk.code[1], 421);
	cr_assert_eq(fk.results[0], 1);
}

Test(smtp, reply_to_no_command_is_protocol_error)
{
	setup_with(body, 100, 1000, false);
	in("220 hi\r\n");
	out();
	in("250 ok\r\n");
	in("250 unsolicited\r\n");
	in("250 more\r\n");
	cr_assert_eq(sm.state, SS_FAILED);
}

Test(smtp, ok_instead_of_354_is_protocol_error)
{
	setup_with(body, 100, 1000, false);
	add_rcpt("a@example.org");
	greet("250-mx.test\r\n250 PIPELINING\r\n");
	out();
	in("250 ok\r\n250 ok\r\n250 ok\r\n");
	cr_assert_eq(sm.state, SS_FAILED);
	cr_assert_eq(fk.st[0], RS_DEFERRED);
	cr_assert(strstr(fk.text[0], "expected 354") != NULL);
	cr_assert_eq(fk.results[0], 1);
}

Test(smtp, garbage_and_overlong_lines)
{
	setup_with(body, 100, 1000, false);
	in("\x01\x02garbage\r\n");
	cr_assert_eq(sm.state, SS_FAILED);
	cr_assert(strstr(sm.err, "protocol error") != NULL);
	setup_with(body, 100, 1000, false);
	static char big[REPLY_MAX_LINE + 100];
	memset(big, 'x', sizeof big - 1);
	cr_assert_eq(smtp_input(&sm, big, sizeof big - 1), sizeof big - 1);
	cr_assert_eq(sm.state, SS_FAILED);
	cr_assert(strstr(sm.err, "too long") != NULL);
}

Test(smtp, partial_lines_wait_for_more)
{
	setup_with(body, 100, 1000, false);
	cr_assert_eq(smtp_input(&sm, "220 hel", 7), 0);
	cr_assert_eq(smtp_input(&sm, "220 hello\r\n250", 14), 11);
	cr_assert_str_eq(out(), "EHLO client.test\r\n");
}

Test(smtp, abort_reports_every_open_rcpt_once)
{
	setup_with(body, 100, 1000, false);
	add_rcpt("a@example.org");
	add_rcpt("b@example.org");
	greet("250-mx.test\r\n250 PIPELINING\r\n");
	out();
	in("250 ok\r\n550 no\r\n");
	smtp_abort(&sm, RS_DEFERRED, "connection closed");
	smtp_abort(&sm, RS_DEFERRED, "again");
	cr_assert_eq(fk.results[0], 1);
	cr_assert_eq(fk.results[1], 1);
	cr_assert_eq(fk.st[0], RS_BOUNCED);
	cr_assert_eq(fk.st[1], RS_DEFERRED);
	cr_assert_str_eq(fk.text[1], "connection closed");
}

Test(smtp, utf8_rcpt_needs_smtputf8)
{
	setup_with(body, 100, 1000, false);
	add_rcpt("j\xc3\xb6rg@example.org");
	fk.rc[0].flags = ADDR_UTF8;
	add_rcpt("a@example.org");
	greet("250-mx.test\r\n250 PIPELINING\r\n");
	cr_assert_eq(fk.st[0], RS_FAILED);
	cr_assert(strstr(fk.text[0], "SMTPUTF8") != NULL);
	cr_assert_str_eq(out(), "MAIL FROM:<news@example.com>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
	setup_with(body, 100, 1000, false);
	add_rcpt("j\xc3\xb6rg@example.org");
	fk.rc[0].flags = ADDR_UTF8;
	greet("250-mx.test\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n");
	cr_assert_str_eq(out(), "MAIL FROM:<news@example.com> SMTPUTF8\r\n"
	                 "RCPT TO:<j\xc3\xb6rg@example.org>\r\nDATA\r\n");
}

/* setup_tls - a machine with a TLS policy and optional credentials. */
static void setup_tls(enum smtp_tls_mode mode, const char *user, const char *pass, bool plain_ok)
{
	setup_with(body, 100, 1000, false);
	cfg.tls = mode;
	cfg.auth_user = user;
	cfg.auth_pass = pass;
	cfg.allow_plaintext_auth = plain_ok;
}

Test(smtp, starttls_then_ehlo_again_and_auth_plain)
{
	setup_tls(TLSM_VERIFY, "user", "secret", false);
	add_rcpt("a@example.org");
	greet("250-mx.test\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n");
	cr_assert_str_eq(out(), "STARTTLS\r\n");
	in("220 go ahead\r\n");
	cr_assert_eq(sm.state, SS_TLS);
	smtp_tls_up(&sm);
	cr_assert_eq(sm.ext, 0u, "extensions learned before TLS are forgotten");
	cr_assert_str_eq(out(), "EHLO client.test\r\n");
	in("250-mx.test\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n");
	cr_assert_str_eq(out(), "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n");
	in("235 2.7.0 ok\r\n");
	cr_assert_str_eq(out(), "MAIL FROM:<news@example.com>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
}

Test(smtp, auth_login_when_plain_not_offered)
{
	setup_tls(TLSM_NONE, "user", "secret", true);
	add_rcpt("a@example.org");
	greet("250-mx.test\r\n250 AUTH LOGIN\r\n");
	cr_assert_str_eq(out(), "AUTH LOGIN\r\n");
	in("334 VXNlcm5hbWU6\r\n");
	cr_assert_str_eq(out(), "dXNlcg==\r\n");
	in("334 UGFzc3dvcmQ6\r\n");
	cr_assert_str_eq(out(), "c2VjcmV0\r\n");
	in("235 ok\r\n");
	cr_assert_str_eq(out(), "MAIL FROM:<news@example.com>\r\n");
}

Test(smtp, auth_refused_on_plaintext_without_permission)
{
	setup_tls(TLSM_OPPORTUNISTIC, "user", "secret", false);
	add_rcpt("a@example.org");
	greet("250-mx.test\r\n250 AUTH PLAIN\r\n");
	cr_assert_eq(sm.state, SS_FAILED);
	cr_assert(strstr(sm.err, "without TLS") != NULL);
	cr_assert_str_eq(out(), "", "no credentials on the wire");
}

Test(smtp, auth_535_is_permanent)
{
	setup_tls(TLSM_NONE, "user", "wrong", true);
	add_rcpt("a@example.org");
	greet("250-mx.test\r\n250 AUTH PLAIN\r\n");
	out();
	in("535 5.7.8 authentication credentials invalid\r\n");
	cr_assert_eq(sm.state, SS_FAILED);
	cr_assert(sm.auth_failed);
	cr_assert_eq(sm.fail_status, RS_FAILED);
	cr_assert(strstr(sm.err, "535") != NULL);
	cr_assert(strstr(sm.err, "wrong") == NULL, "the password never appears in a reason");
}

Test(smtp, tls_required_but_not_offered)
{
	setup_tls(TLSM_REQUIRED, NULL, NULL, false);
	add_rcpt("a@example.org");
	greet("250-mx.test\r\n250 PIPELINING\r\n");
	cr_assert_eq(sm.state, SS_FAILED);
	cr_assert(strstr(sm.err, "STARTTLS") != NULL);
	cr_assert_str_eq(out(), "");
}

Test(smtp, opportunistic_continues_when_starttls_refused)
{
	setup_tls(TLSM_OPPORTUNISTIC, NULL, NULL, false);
	add_rcpt("a@example.org");
	greet("250-mx.test\r\n250 STARTTLS\r\n");
	cr_assert_str_eq(out(), "STARTTLS\r\n");
	in("454 4.7.0 TLS not available\r\n");
	cr_assert_str_eq(out(), "MAIL FROM:<news@example.com>\r\n");
}
