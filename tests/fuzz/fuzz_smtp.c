/* fuzz_smtp.c - libFuzzer target: reply parser and SMTP state machine vs hostile server bytes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "addr.h"
#include "bounds.h"
#include "job.h"
#include "message.h"
#include "smtp.h"

/*
 * Input layout: HDR_LEN octets of settings, then the server's bytes.
 *
 *   d[0] bit 0     --no-pipelining
 *        bits 1-2  TLS mode (TLSM_NONE .. TLSM_VERIFY)
 *        bit 3     AUTH user configured
 *        bit 4     allow plaintext AUTH
 *        bit 5     implicit TLS (tls_active from the first byte)
 *        bit 6     plaintext retry (no_tls: STARTTLS is not tried)
 *        bit 7     max_msgs is 2 instead of 1000, and odd connections get the
 *                  per-destination override smtp.max_msgs = 1
 *   d[1] bits 0-2  max_rcpts (table below)
 *        bits 3-4  message variant
 *        bits 5-6  sender variant
 *        bit 7     long HELO name
 *   d[2]           recipients available in this run (0..255)
 *   d[3] bits 0-2  chunks handed to smtp_input: 1 to 1, 2, 7, 32, 128, 512 octets
 *                  at random, the whole receive buffer, or one line at a time
 *        bits 3-7  seed of the chunking / action choices
 *   d[4] bit 0     long AUTH credentials (255 octets each)
 *        bit 1     non-ASCII AUTH user
 *        bit 2     the engine sometimes has no work (next_txn gives 0)
 *        bit 3     a slow peer: output is often sent in part, or not at all
 *        bit 4     the TLS handshake sometimes fails
 *        bits 5-7  first recipient of the rotating list
 */
#define HDR_LEN     5u
#define MAX_HANDED  256u   /* recipients handed out per input, at most */
#define MAX_CONNS   4u     /* connections (smtp_start) per input */
#define LINE_CAP    1024u  /* longest command line the checker keeps */
#define NRCPT       8u     /* recipients in the rotating list */
#define NMSG        4u     /* message variants */

/* check - abort (a crash for libFuzzer) when an invariant does not hold. */
#define check(cond) do { if (!(cond)) fail_at(__LINE__, #cond); } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fake engine: a pool of recipients and the outcomes they got. */
struct fake {
	unsigned pool;              /* recipients this run may hand out */
	unsigned handed;            /* handed out so far (each one's line is its serial) */
	unsigned reported;          /* results received */
	unsigned offset;            /* first recipient of the rotating list */
	bool starve_mode;           /* next_txn may give 0 although work is left */
	bool starve;                /* ... and does so now */
	uint8_t results[MAX_HANDED];/* per serial: results received */
	int64_t now;                /* fake clock */
	unsigned msgs_sent;         /* messages sent in full, final dot included */
	unsigned txns_delivered;    /* transactions with a "delivered" result */
	int64_t last_delivered;     /* t_start of the last of those */
};

/* What the output checker knows about the byte stream sent so far. */
struct outchk {
	bool cr;                    /* the previous octet was a CR */
	int kind;                   /* current line: 0 none yet, 1 command, 2 message */
	size_t len;                 /* octets in the current line, CR LF excluded */
	char line[LINE_CAP];        /* the current line (its first LINE_CAP octets) */
	char last[16];              /* start of the last complete command line */
	bool quit;                  /* QUIT was sent on this connection */
};

static const unsigned max_rcpts_tab[8] = { 1, 2, 3, 4, 5, 8, 100, 1000 };
#define CHUNK_LINE  0      /* chunk_tab entry: up to and including the next LF */
static const size_t chunk_tab[8] = { 1, 2, 7, 32, 128, 512, SESSION_RECV_BUF, CHUNK_LINE };

static struct message msgs[NMSG];          /* prepared message variants */
static struct rcpt rlist[NRCPT];           /* recipients, parsed like job lines */
static char long_from[ADDR_MAX_MAILBOX + 1];
static char long_helo[254];
static char long_user[256], long_pass[256];
static const char *froms[4];
static unsigned from_flags[4];

static struct fake fk;
static struct outchk oc;
static struct smtp sm;
static struct smtp_config cfg;
static char *storage;                      /* smtp_init storage of this input */
static size_t storage_len;
static const struct message *cur_msg;
static char rbuf[SESSION_RECV_BUF];        /* receive buffer, like the engine's */
static size_t rlen;
static uint32_t rng;

/* fail_at - report a broken invariant and abort. */
static void fail_at(int line, const char *what)
{
	fprintf(stderr, "fuzz_smtp.c:%d: invariant failed: %s (state %d, err '%s')\n", line, what,
	        (int)sm.state, sm.err);
	abort();
}

/* rnd - xorshift32 over the input's seed. */
static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* f_next - hand out up to max recipients, within budget as the engine does. */
static unsigned f_next(void *ctx, struct rcpt *out, unsigned max, size_t budget)
{
	struct fake *f = ctx;
	unsigned n = 0;
	size_t used = 0;

	check(f == &fk);
	check(max == cfg.max_rcpts && budget == SMTP_TXN_BUDGET);
	check((char *)out >= storage && (char *)(out + max) <= storage + storage_len);
	if (f->starve)
		return 0;
	while (n < max && f->handed < f->pool && used + 12u + ADDR_MAX_MAILBOX <= budget) {
		out[n] = rlist[(f->handed + f->offset) % NRCPT];
		out[n].line = f->handed;
		used += smtp_rcpt_cost(&out[n]);
		f->handed++;
		n++;
	}
	return n;
}

/* f_result - one outcome: exactly once per recipient handed out, and well formed. */
static void f_result(void *ctx, const struct rcpt *r, enum result_status st, int code,
                     const char *enh, const char *text, size_t len, int64_t t0)
{
	struct fake *f = ctx;
	volatile char sink = 0;

	check(f == &fk);
	check((const char *)r >= storage && (const char *)(r + 1) <= storage + storage_len);
	check(r->line < f->handed);
	check(f->results[r->line] == 0);
	f->results[r->line]++;
	f->reported++;
	check(st == RS_DELIVERED || st == RS_BOUNCED || st == RS_DEFERRED || st == RS_FAILED);
	check(code == 0 || (code >= 200 && code <= 599));
	check((st == RS_DELIVERED) == (code / 100 == 2));
	check(enh == NULL || memchr(enh, '\0', 16) != NULL);
	check(len <= REPLY_MAX_TEXT && (len == 0 || text != NULL));
	for (size_t i = 0; i < len; i++)   /* every octet must be readable */
		sink ^= text[i];
	check(t0 <= f->now);
	if (st == RS_DELIVERED && t0 != f->last_delivered) {
		/* delivered only after the whole message went out: no message octet is
		 * still queued, and more messages were sent than transactions delivered */
		f->last_delivered = t0;
		f->txns_delivered++;
		check(f->txns_delivered <= f->msgs_sent);
		for (unsigned i = 0; i < sm.out.nseg; i++)
			check(sm.out.seg[i].p < cur_msg->wire ||
			      sm.out.seg[i].p >= cur_msg->wire + cur_msg->wire_len);
	}
	(void)sink;
}

/* f_now - a clock that moves one millisecond per call. */
static int64_t f_now(void *ctx)
{
	struct fake *f = ctx;
	return ++f->now;
}

static const struct smtp_ops ops = { f_next, f_result, f_now };

/* is_b64 - a non-empty line of base64 characters in groups of four. */
static bool is_b64(const char *s, size_t n)
{
	if (n == 0 || n % 4 != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/' || c == '='))
			return false;
	}
	return true;
}

/* starts - does s[0..n) start with the string p? */
static bool starts(const char *s, size_t n, const char *p)
{
	size_t k = strlen(p);
	return n >= k && memcmp(s, p, k) == 0;
}

/* same - is s[0..n) exactly the string p? */
static bool same(const char *s, size_t n, const char *p)
{
	return strlen(p) == n && memcmp(s, p, n) == 0;
}

/* check_cmd - a complete command line: known verb, checked argument, bounded length. */
static void check_cmd(const char *s, size_t n)
{
	check(n <= LINE_CAP);
	check(!oc.quit);                      /* nothing after QUIT */
	if (starts(s, n, "EHLO ") || starts(s, n, "HELO ")) {
		check(same(s + 5, n - 5, cfg.helo));
	} else if (starts(s, n, "MAIL FROM:<")) {
		size_t fl = strlen(cfg.from);
		check(n >= 12 + fl && memcmp(s + 11, cfg.from, fl) == 0 && s[11 + fl] == '>');
		check(n <= SMTP_MAX_CMD - 2);
	} else if (starts(s, n, "RCPT TO:<")) {
		unsigned flags = 0;
		check(n >= 10 && s[n - 1] == '>');
		check(addr_check(s + 9, n - 10, &flags) == NULL);
		check(n <= SMTP_MAX_CMD - 2);
	} else if (starts(s, n, "AUTH PLAIN ")) {
		check(cfg.auth_user != NULL && is_b64(s + 11, n - 11));
	} else if (is_b64(s, n)) {
		/* DATA, RSET, QUIT, AUTH LOGIN answers */
		check(n <= 4 * 86);
		if (same(s, n, "QUIT"))
			oc.quit = true;
	} else {
		check(same(s, n, ".") || same(s, n, "STARTTLS") || same(s, n, "AUTH LOGIN"));
	}
	memset(oc.last, 0, sizeof oc.last);
	memcpy(oc.last, s, n < sizeof oc.last - 1 ? n : sizeof oc.last - 1);
}

/* check_octet - one sent octet: CR only before LF, LF only after CR, lines of one kind. */
static void check_octet(char c, int kind)
{
	if (oc.len == 0 && !oc.cr)
		oc.kind = kind;
	check(oc.kind == kind);               /* no line mixes command and message octets */
	if (c == '\n') {
		check(oc.cr);
		if (kind == 1) {
			check_cmd(oc.line, oc.len);
		} else {
			check(oc.len <= MSG_MAX_LINE + 1);   /* + the stuffed dot */
			if (oc.len == 1 && oc.line[0] == '.')
				fk.msgs_sent++;              /* the terminator: a lone dot */
		}
		oc.len = 0;
		oc.cr = false;
		return;
	}
	check(!oc.cr);
	if (c == '\r') {
		oc.cr = true;
		return;
	}
	if (kind == 1) {
		unsigned char u = (unsigned char)c;
		check(u >= 0x20 && u != 0x7f);
		check(oc.len < LINE_CAP);
	}
	if (oc.len < LINE_CAP)
		oc.line[oc.len] = c;
	oc.len++;
}

/* drain - send (check and consume) up to limit octets of the output queue. */
static void drain(size_t limit)
{
	struct iovec iov[SMTP_OUT_SEGS];
	unsigned n = smtp_out_iov(&sm.out, iov, SMTP_OUT_SEGS);
	size_t total = 0, taken = 0;

	check(n == sm.out.nseg);
	for (unsigned i = 0; i < n; i++) {
		const char *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;
		int kind;
		total += len;
		if (p >= sm.out.arena && p + len <= sm.out.arena + sizeof sm.out.arena) {
			kind = 1;
		} else {
			check(p >= cur_msg->wire && p + len <= cur_msg->wire + cur_msg->wire_len);
			kind = 2;
		}
		for (size_t k = 0; k < len && taken < limit; k++, taken++)
			check_octet(p[k], kind);
	}
	check(total == sm.out.pending);
	smtp_out_consume(&sm.out, taken);
	check(sm.out.pending == total - taken);
}

/* accounts - every recipient handed out and not yet reported is open in the machine. */
static void accounts(void)
{
	int e = smtp_expecting(&sm);
	check(fk.handed - fk.reported == smtp_open_rcpts(&sm));
	check(e >= -1 && e <= CMD_AUTH_PASS);
	check(sm.qlen <= sm.qcap);
}

/* connect - a new connection: smtp_start, and the engine's settings for it. */
static void connect(bool wrapper, bool plain, unsigned conn)
{
	smtp_start(&sm);
	sm.max_msgs = cfg.max_msgs == 2 && conn % 2 == 1 ? 1 : 0;
	sm.no_tls = plain;
	if (wrapper)
		sm.tls_active = true;
	memset(&oc, 0, sizeof oc);
	rlen = 0;
	accounts();
}

/* feed - present the receive buffer to smtp_input and keep the unread rest. */
static void feed(void)
{
	char *copy = malloc(rlen ? rlen : 1);   /* exact size: reading past it is caught */
	size_t used;

	check(copy != NULL);
	memcpy(copy, rbuf, rlen);
	used = smtp_input(&sm, copy, rlen);
	check(used <= rlen);
	if (sm.state != SS_DONE && sm.state != SS_FAILED) {
		check(rlen - used < REPLY_MAX_LINE);
		check(memchr(copy + used, '\n', rlen - used) == NULL);
	}
	free(copy);
	memmove(rbuf, rbuf + used, rlen - used);
	rlen -= used;
	accounts();
}

/* send_budget - octets the socket takes now: all, or with a slow peer none or a few. */
static size_t send_budget(bool partial)
{
	uint32_t r = partial ? rnd() % 4 : 0;
	return r == 0 ? (size_t)-1 : r == 1 ? 0 : rnd() % 64;
}

/* settle - what the engine does after bytes moved: TLS, kick or finish, close. */
static bool settle(bool partial, bool tls_fail, bool wrapper, bool plain, unsigned *conns)
{
	drain(send_budget(partial));
	if (fk.starve_mode)
		fk.starve = rnd() % 3 == 0;
	if (sm.state == SS_TLS) {
		drain((size_t)-1);
		check(strcmp(oc.last, "STARTTLS") == 0 && oc.len == 0 && !oc.cr);
		if (tls_fail && rnd() % 2 == 0) {
			smtp_abort(&sm, RS_DEFERRED, "TLS handshake failed");
		} else {
			smtp_tls_up(&sm);
			rlen = 0;   /* plaintext after the 220 is not read through TLS */
		}
		accounts();
	}
	if (sm.state == SS_READY && sm.idle) {
		unsigned a = fk.starve_mode ? rnd() % 4 : 0;
		if (a <= 2 && fk.handed < fk.pool)
			smtp_kick(&sm);
		accounts();
		if (a <= 1 && sm.idle)
			smtp_finish(&sm);
		accounts();
	}
	drain(send_budget(partial));
	if (sm.state == SS_DONE || sm.state == SS_FAILED) {
		smtp_abort(&sm, RS_DEFERRED, "connection closed");
		check(fk.handed == fk.reported);
		drain((size_t)-1);
		if (*conns >= MAX_CONNS || fk.handed >= fk.pool)
			return false;
		(*conns)++;
		connect(wrapper, plain, *conns);
	}
	return true;
}

/* chunk_size - octets of p[0..left) to deliver next: random up to max, or one line. */
static size_t chunk_size(const uint8_t *p, size_t left, size_t max)
{
	size_t n;
	if (max == CHUNK_LINE) {
		const uint8_t *nl = memchr(p, '\n', left);
		n = nl ? (size_t)(nl - p) + 1 : left;
	} else {
		n = 1 + rnd() % max;
	}
	return n < left ? n : left;
}

/* LLVMFuzzerInitialize - prepare the messages, senders and recipients once. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const bodies[NMSG] = {
		"Subject: t\r\n\r\nhello\r\n.dot\r\n",
		"Subject: caf\xc3\xa9\nFrom: a@example.com\n\nh\xc3\xa9llo\n..\n.\n",
		NULL,   /* built below: many lines, one of 998 octets */
		"Subject: headers only, no final line break",
	};
	static const char *const records[NRCPT] = {
		"a@example.org",
		"\"b@example.net\"",
		"\"\"\"john doe\"\"@example.com\"",
		"  c@example.com  ",
		"d@[192.0.2.1]",
		"\xc3\xbc@ex\xc3\xa4mple.de",
		NULL,   /* built below: 254 octets */
		"e@[IPv6:2001:db8::1]",
	};
	static char big[8192], longrec[ADDR_MAX_MAILBOX + 1];
	static struct job nojob;   /* no fields: a record is the address alone */
	char err[512];
	size_t o = 0;

	(void)argc;
	(void)argv;
	o += (size_t)snprintf(big, sizeof big, "Subject: big\r\nX-Long: ");
	memset(big + o, 'x', MSG_MAX_LINE - 8);
	o += MSG_MAX_LINE - 8;
	o += (size_t)snprintf(big + o, sizeof big - o, "\r\n");
	for (int i = 0; i < 60 && o + 64 < sizeof big; i++)
		o += (size_t)snprintf(big + o, sizeof big - o, "\r\n%sline %d", i % 7 ? "" : ".", i);
	o += (size_t)snprintf(big + o, sizeof big - o, "\r\n");
	for (unsigned i = 0; i < NMSG; i++) {
		const char *b = bodies[i] ? bodies[i] : big;
		if (message_prepare(&msgs[i], b, bodies[i] ? strlen(b) : o, "msg", err, sizeof err) != 0) {
			fprintf(stderr, "fuzz_smtp: message %u: %s\n", i, err);
			abort();
		}
	}
	memset(longrec, 'l', 64);
	longrec[64] = '@';
	for (size_t i = 65; i < ADDR_MAX_MAILBOX; i++)
		longrec[i] = (i - 65) % 50 == 49 ? '.' : 'd';
	longrec[ADDR_MAX_MAILBOX] = '\0';
	for (unsigned i = 0; i < NRCPT; i++) {
		const char *rec = records[i] ? records[i] : longrec;
		const char *why = NULL;
		if (job_parse_record(&nojob, rec, strlen(rec), 1, &rlist[i], &why) != 1) {
			fprintf(stderr, "fuzz_smtp: recipient %u: %s\n", i, why);
			abort();
		}
	}
	memcpy(long_from, longrec, sizeof long_from);
	long_from[0] = 'f';
	froms[0] = "news@example.com";
	froms[1] = "";
	froms[2] = "j\xc3\xb6rg@example.com";
	froms[3] = long_from;
	for (unsigned i = 0; i < 4; i++)
		if (froms[i][0] && addr_check(froms[i], strlen(froms[i]), &from_flags[i]) != NULL)
			abort();
	for (size_t i = 0; i < sizeof long_helo - 1; i++)
		long_helo[i] = i % 60 == 59 ? '.' : 'h';
	long_helo[sizeof long_helo - 1] = '\0';
	memset(long_user, 'u', 255);
	memset(long_pass, 'p', 255);
	return 0;
}

/* LLVMFuzzerTestOneInput - one session (and reconnections) against the input's server bytes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned conns = 1;
	size_t pos = HDR_LEN;
	bool wrapper, plain, partial, tls_fail;

	if (size < HDR_LEN)
		return 0;
	wrapper = data[0] & 0x20;
	plain = data[0] & 0x40;
	partial = data[4] & 0x08;
	tls_fail = data[4] & 0x10;
	cur_msg = &msgs[(data[1] >> 3) & 3];
	cfg = (struct smtp_config){
		.helo = data[1] & 0x80 ? long_helo : "client.test",
		.from = froms[(data[1] >> 5) & 3],
		.from_flags = from_flags[(data[1] >> 5) & 3],
		.msg = cur_msg,
		.max_rcpts = max_rcpts_tab[data[1] & 7],
		.max_msgs = data[0] & 0x80 ? 2 : 1000,
		.no_pipelining = data[0] & 1,
		.tls = (enum smtp_tls_mode)((data[0] >> 1) & 3),
		.auth_user = !(data[0] & 0x08) ? NULL :
		             data[4] & 1 ? long_user : data[4] & 2 ? "n\xc3\xa9ws" : "news",
		.auth_pass = data[4] & 1 ? long_pass : "s3cr3t",
		.allow_plaintext_auth = data[0] & 0x10,
	};
	memset(&fk, 0, sizeof fk);
	fk.pool = data[2];
	fk.offset = data[4] >> 5;
	fk.starve_mode = data[4] & 0x04;
	rng = 0x9e3779b9u ^ ((uint32_t)data[3] << 8) ^ (uint32_t)data[4] ^ (uint32_t)size << 16;
	if (rng == 0)
		rng = 1;

	storage_len = smtp_mem(&cfg);
	storage = malloc(storage_len);
	check(storage != NULL);
	memset(storage, 0xa5, storage_len);
	smtp_init(&sm, &cfg, &ops, &fk, storage);
	connect(wrapper, plain, conns);

	while (pos < size) {
		size_t n = chunk_size(data + pos, size - pos, chunk_tab[data[3] & 7]);
		if (n > sizeof rbuf - rlen)
			n = sizeof rbuf - rlen;
		check(n > 0);
		memcpy(rbuf + rlen, data + pos, n);
		rlen += n;
		pos += n;
		if (partial && rnd() % 2 == 0)
			drain((size_t)-1);   /* the slow peer caught up before it answered */
		feed();
		if (!settle(partial, tls_fail, wrapper, plain, &conns))
			break;
	}

	drain((size_t)-1);
	smtp_abort(&sm, RS_DEFERRED, "connection closed");
	check(sm.state == SS_DONE || sm.state == SS_FAILED);
	check(fk.handed == fk.reported);
	check(smtp_open_rcpts(&sm) == 0);
	for (unsigned i = 0; i < fk.handed; i++)
		check(fk.results[i] == 1);
	free(storage);
	storage = NULL;
	return 0;
}
