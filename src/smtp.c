/* smtp.c - SMTP client state machine: greeting, EHLO/HELO, pipelined or lockstep
 * transactions, QUIT. No I/O: see smtp.h.
 *
 * Pipelining (RFC 2920) follows Postfix's design: the client only has to wait
 * after DATA and after QUIT. So with PIPELINING the machine queues MAIL, every
 * RCPT and DATA as one group; when 354 arrives it queues the content, the final
 * dot and, straight behind them, the next transaction's group (or QUIT). Replies
 * are matched to commands through a ring of expectations in send order.
 * Without PIPELINING every command waits for the previous reply (Exim, among
 * others, drops clients that talk early). */
#include "smtp.h"
#include "addr.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static void start_work(struct smtp *s);

/* qcap_for - expectations a session may have outstanding. */
static unsigned qcap_for(const struct smtp_config *cfg)
{
	return 2u * cfg->max_rcpts + 16u;
}

/* smtp_mem - storage needed by smtp_init. */
size_t smtp_mem(const struct smtp_config *cfg)
{
	return 2u * cfg->max_rcpts * sizeof(struct rcpt) +
	       qcap_for(cfg) * sizeof(struct smtp_expect) + 2u * cfg->max_rcpts;
}

/* smtp_init - carve storage into recipient slots and the expectation ring. */
void smtp_init(struct smtp *s, const struct smtp_config *cfg, const struct smtp_ops *ops,
               void *ctx, void *storage)
{
	char *p = storage;
	memset(s, 0, offsetof(struct smtp, out));
	s->cfg = cfg;
	s->ops = ops;
	s->ctx = ctx;
	for (int i = 0; i < 2; i++) {
		s->txn[i].rcpt = (struct rcpt *)p;
		p += cfg->max_rcpts * sizeof(struct rcpt);
	}
	s->q = (struct smtp_expect *)p;
	s->qcap = qcap_for(cfg);
	p += s->qcap * sizeof(struct smtp_expect);
	for (int i = 0; i < 2; i++) {
		s->txn[i].state = (uint8_t *)p;
		p += cfg->max_rcpts;
	}
	s->state = SS_DONE;
}

/* ---- output queue ---- */

/* out_reset - empty the output queue. */
static void out_reset(struct smtp_out *o)
{
	o->nseg = 0;
	o->off = 0;
	o->pending = 0;
	o->arena_len = 0;
	o->queued = o->sent = 0;
}

/* out_seg_add - append a segment, merging with the previous one when contiguous. */
static int out_seg_add(struct smtp_out *o, const char *p, size_t len)
{
	if (o->nseg > 0) {
		size_t last = o->nseg - 1;
		if (o->seg[last].p + o->seg[last].len == p &&
		    p >= o->arena && p < o->arena + sizeof o->arena) {
			o->seg[last].len += len;
			o->pending += len;
			o->queued += (uint32_t)len;
			return 0;
		}
	}
	if (o->nseg == SMTP_OUT_SEGS)
		return -1;
	o->seg[o->nseg].p = p;
	o->seg[o->nseg].len = len;
	o->nseg++;
	o->pending += len;
	o->queued += (uint32_t)len;
	return 0;
}

/* smtp_out_consume - drop n sent octets from the front of the queue. */
void smtp_out_consume(struct smtp_out *o, size_t n)
{
	while (n > 0 && o->nseg > 0) {
		size_t left = o->seg[0].len - o->off;
		size_t take = n < left ? n : left;
		o->off += take;
		o->pending -= take;
		o->sent += (uint32_t)take;
		n -= take;
		if (o->off == o->seg[0].len) {
			memmove(&o->seg[0], &o->seg[1], (o->nseg - 1) * sizeof o->seg[0]);
			o->nseg--;
			o->off = 0;
		}
	}
	if (o->nseg == 0)
		o->arena_len = 0;
}

/* smtp_out_iov - unsent output as iovecs. */
unsigned smtp_out_iov(const struct smtp_out *o, struct iovec *iov, unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < o->nseg && n < max; i++, n++) {
		size_t skip = i == 0 ? o->off : 0;
		iov[n].iov_base = (void *)(o->seg[i].p + skip);
		iov[n].iov_len = o->seg[i].len - skip;
	}
	return n;
}

/* ---- failure and results ---- */

/* set_err - record why the session failed. */
static void set_err(struct smtp *s, enum result_status st, int code, const char *enh,
                    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
	s->fail_status = st;
	s->fail_code = code;
	snprintf(s->fail_enh, sizeof s->fail_enh, "%s", enh ? enh : "");
}

/* status_of - result status for a non-2xx reply code. */
static enum result_status status_of(int code)
{
	return code >= 500 ? RS_BOUNCED : RS_DEFERRED;
}

/* report - the one outcome for recipient i of t. */
static void report(struct smtp *s, struct smtp_txn *t, unsigned i, enum result_status st,
                   int code, const char *enh, const char *text, size_t len)
{
	if (t->state[i] == RCPT_ST_DONE)
		return;
	t->state[i] = RCPT_ST_DONE;
	t->open--;
	s->ops->result(s->ctx, &t->rcpt[i], st, code, enh && *enh ? enh : NULL, text, len,
	               t->t_start);
}

/* report_reply - give every open recipient of t the outcome carried by reply r. */
static void report_reply(struct smtp *s, struct smtp_txn *t, enum result_status st,
                         const struct reply *r)
{
	for (unsigned i = 0; i < t->n && t->open > 0; i++)
		report(s, t, i, st, r->code, r->enhanced, r->text, r->text_len);
}

/* report_local - give every open recipient of t a local reason. */
static void report_local(struct smtp *s, struct smtp_txn *t, enum result_status st,
                         const char *why)
{
	for (unsigned i = 0; i < t->n && t->open > 0; i++)
		report(s, t, i, st, 0, NULL, why, strlen(why));
}

/* txn_end - the transaction has no more replies to wait for. */
static void txn_end(struct smtp_txn *t)
{
	t->active = false;
}

/* abort_all - every open recipient of every live transaction gets the failure. */
static void abort_all(struct smtp *s, const struct reply *r)
{
	for (int i = 0; i < 2; i++) {
		struct smtp_txn *t = &s->txn[i];
		if (!t->active)
			continue;
		if (r)
			report_reply(s, t, s->fail_status, r);
		else
			report_local(s, t, s->fail_status, s->err);
		txn_end(t);
	}
	s->qlen = 0;
	s->state = SS_FAILED;
}

/* smtp_abort - connection lost, timed out or unusable. */
void smtp_abort(struct smtp *s, enum result_status st, const char *reason)
{
	if (s->state == SS_DONE || s->state == SS_FAILED)
		return;
	set_err(s, st, 0, NULL, "%s", reason);
	abort_all(s, NULL);
}

/* fail_protocol - the server broke the protocol: end the session. */
static void fail_protocol(struct smtp *s, const char *what)
{
	set_err(s, RS_DEFERRED, 0, NULL, "protocol error: %s", what);
	abort_all(s, NULL);
}

/* fail_reply - the server refused the session with reply r. */
static void fail_reply(struct smtp *s, const struct reply *r)
{
	set_err(s, status_of(r->code), r->code, r->enhanced, "%.*s", (int)r->text_len, r->text);
	abort_all(s, r);
}

/* ---- queueing commands ---- */

/* expect - note that a reply to cmd is due. */
static int expect(struct smtp *s, enum smtp_cmd cmd, unsigned txn, unsigned idx)
{
	if (s->qlen == s->qcap) {
		fail_protocol(s, "internal: too many outstanding commands");
		return -1;
	}
	struct smtp_expect *e = &s->q[(s->qhead + s->qlen) % s->qcap];
	e->cmd = (uint8_t)cmd;
	e->txn = (uint8_t)txn;
	e->idx = (uint16_t)idx;
	e->end = s->out.queued;
	s->qlen++;
	return 0;
}

/* put - append command bytes (pieces joined) to the arena. */
static int put(struct smtp *s, const char *a, size_t alen, const char *b, size_t blen,
               const char *c, size_t clen)
{
	struct smtp_out *o = &s->out;
	size_t n = alen + blen + clen;
	if (o->arena_len + n > sizeof o->arena) {
		fail_protocol(s, "internal: output queue full");
		return -1;
	}
	char *dst = o->arena + o->arena_len;
	memcpy(dst, a, alen);
	if (blen)
		memcpy(dst + alen, b, blen);
	if (clen)
		memcpy(dst + alen + blen, c, clen);
	o->arena_len += n;
	if (out_seg_add(o, dst, n) < 0) {
		fail_protocol(s, "internal: output segments full");
		return -1;
	}
	return 0;
}

/* send_simple - queue a bare command and its expectation. */
static int send_simple(struct smtp *s, const char *line, enum smtp_cmd cmd, unsigned txn)
{
	if (put(s, line, strlen(line), NULL, 0, NULL, 0) < 0)
		return -1;
	return expect(s, cmd, txn, 0);
}

/* send_hello - queue EHLO or HELO. */
static void send_hello(struct smtp *s, enum smtp_cmd cmd)
{
	const char *verb = cmd == CMD_EHLO ? "EHLO " : "HELO ";
	if (put(s, verb, 5, s->cfg->helo, strlen(s->cfg->helo), "\r\n", 2) == 0)
		expect(s, cmd, 0, 0);
	s->state = SS_HELLO;
}

/* wire_safe - the address read now is still the one checked when the job line was
 * parsed (its length) and holds no control octet (CR, LF, NUL) that could end or split
 * a command line: the job is mapped, and a file changed under it must not reach the
 * wire. Per recipient on the hot path, so eight octets at a time. */
static bool wire_safe(const struct rcpt *r, const char *a, size_t n)
{
	if (n != r->addr_len)
		return false;
	uint64_t bad = 0;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) { /* a byte below 0x20 in 8 at once (exact for n <= 128) */
		uint64_t w;
		memcpy(&w, a + i, 8);
		bad |= (w - 0x2020202020202020ull) & ~w & 0x8080808080808080ull;
	}
	for (; i < n; i++)
		bad |= (unsigned char)a[i] < 0x20;
	return bad == 0;
}

/* send_rcpt - queue RCPT TO for recipient i of txn slot ti. */
static int send_rcpt(struct smtp *s, unsigned ti, unsigned i)
{
	char addr[ADDR_MAX_MAILBOX + 1];
	const struct rcpt *r = &s->txn[ti].rcpt[i];
	size_t n = rcpt_addr(r, addr);
	if (!wire_safe(r, addr, n)) {
		fail_protocol(s, "internal: a recipient's job line changed since it was read "
		              "(the job file was modified during the run)");
		return -1;
	}
	if (put(s, "RCPT TO:<", 9, addr, n, ">\r\n", 3) < 0)
		return -1;
	return expect(s, CMD_RCPT, ti, i);
}

/* send_quit - queue QUIT. */
static void send_quit(struct smtp *s)
{
	if (send_simple(s, "QUIT\r\n", CMD_QUIT, 0) == 0)
		s->state = SS_QUIT;
}

/* smtp_rcpt_cost - arena octets of one RCPT command. */
size_t smtp_rcpt_cost(const struct rcpt *r)
{
	return 12u + r->addr_len;
}

/* ---- EHLO ---- */

/* build_mail - prepare the MAIL FROM line for this connection's extensions. */
static void build_mail(struct smtp *s)
{
	const struct message *m = s->cfg->msg;
	int n = snprintf(s->mail_cmd, sizeof s->mail_cmd, "MAIL FROM:<%s>", s->cfg->from);
	if (s->ext & EXT_SIZE)
		n += snprintf(s->mail_cmd + n, sizeof s->mail_cmd - (size_t)n, " SIZE=%zu", m->size);
	if (m->eightbit && (s->ext & EXT_8BITMIME))
		n += snprintf(s->mail_cmd + n, sizeof s->mail_cmd - (size_t)n, " BODY=8BITMIME");
	s->mail_len = (size_t)n;
}

/* kw - does the EHLO line start with keyword k (then space or end)? */
static bool kw(const char *line, size_t len, const char *k)
{
	size_t kl = strlen(k);
	return len >= kl && strncasecmp(line, k, kl) == 0 && (len == kl || line[kl] == ' ');
}

/* auth_mechs - PLAIN (bit 0) and LOGIN (bit 1) in an AUTH line's mechanism list. */
static unsigned auth_mechs(const char *p, size_t len)
{
	unsigned m = 0;
	for (size_t i = 0; i < len;) {
		while (i < len && p[i] == ' ')
			i++;
		size_t j = i;
		while (j < len && p[j] != ' ')
			j++;
		if (j - i == 5 && strncasecmp(p + i, "PLAIN", 5) == 0)
			m |= 1;
		if (j - i == 5 && strncasecmp(p + i, "LOGIN", 5) == 0)
			m |= 2;
		i = j;
	}
	return m;
}

/* parse_ext - learn extensions from the lines of an EHLO reply. */
static void parse_ext(struct smtp *s, const struct reply *r)
{
	static const struct { const char *k; unsigned bit; } tab[] = {
		{"PIPELINING", EXT_PIPELINING}, {"SIZE", EXT_SIZE}, {"8BITMIME", EXT_8BITMIME},
		{"ENHANCEDSTATUSCODES", EXT_ENHANCED}, {"SMTPUTF8", EXT_SMTPUTF8},
		{"CHUNKING", EXT_CHUNKING}, {"STARTTLS", EXT_STARTTLS}, {"AUTH", EXT_AUTH},
		{"DSN", EXT_DSN},
	};
	const char *p = r->text, *end = r->text + r->text_len;
	s->ext = 0;
	s->size_max = 0;
	s->auth_mechs = 0;
	for (unsigned ln = 0; p < end; ln++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		for (size_t i = 0; ln > 0 && i < sizeof tab / sizeof tab[0]; i++) {
			if (!kw(p, len, tab[i].k))
				continue;
			s->ext |= tab[i].bit;
			if (tab[i].bit == EXT_AUTH)
				s->auth_mechs = auth_mechs(p + 4, len - 4);
			if (tab[i].bit == EXT_SIZE && len > 5) {
				unsigned long long v = 0;
				for (size_t j = 5; j < len && p[j] >= '0' && p[j] <= '9' && v < (1ull << 50); j++)
					v = v * 10 + (unsigned)(p[j] - '0');
				s->size_max = v;
			}
		}
		p = nl ? nl + 1 : end;
	}
}

/* greeted - EHLO/HELO accepted: start transactions. */
static void greeted(struct smtp *s)
{
	s->state = SS_READY;
	s->pipelining = (s->ext & EXT_PIPELINING) && !s->cfg->no_pipelining;
	build_mail(s);
	start_work(s);
}

/* b64 - base64 of src into dst (room for 4 * ceil(n / 3) + 1); returns the length. */
static size_t b64(const unsigned char *src, size_t n, char *dst)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)src[i] << 16 | (i + 1 < n ? (unsigned)src[i + 1] << 8 : 0) |
		             (i + 2 < n ? src[i + 2] : 0);
		dst[o++] = t[v >> 18 & 63];
		dst[o++] = t[v >> 12 & 63];
		dst[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
		dst[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	dst[o] = '\0';
	return o;
}

/* fail_local - end the session for a local policy reason (no server reply involved). */
static void fail_local(struct smtp *s, enum result_status st, const char *why)
{
	set_err(s, st, 0, NULL, "%s", why);
	abort_all(s, NULL);
}

/* send_auth_plain - AUTH PLAIN with the initial response (RFC 4954, RFC 4616). */
static void send_auth_plain(struct smtp *s)
{
	unsigned char raw[2 * 256 + 2];
	char enc[sizeof raw * 4 / 3 + 8];
	size_t ul = strlen(s->cfg->auth_user), pl = strlen(s->cfg->auth_pass), n = 0;
	raw[n++] = 0;
	memcpy(raw + n, s->cfg->auth_user, ul);
	n += ul;
	raw[n++] = 0;
	memcpy(raw + n, s->cfg->auth_pass, pl);
	n += pl;
	size_t el = b64(raw, n, enc);
	if (put(s, "AUTH PLAIN ", 11, enc, el, "\r\n", 2) == 0)
		expect(s, CMD_AUTH, 0, 0);
	memset(raw, 0, sizeof raw);
	memset(enc, 0, sizeof enc);
}

/* send_b64_line - one base64 line of a LOGIN exchange. */
static void send_b64_line(struct smtp *s, const char *v, enum smtp_cmd cmd)
{
	char enc[256 * 4 / 3 + 8];
	size_t el = b64((const unsigned char *)v, strlen(v), enc);
	if (put(s, enc, el, "\r\n", 2, NULL, 0) == 0)
		expect(s, cmd, 0, 0);
	memset(enc, 0, sizeof enc);
}

/* after_ehlo - STARTTLS, then AUTH, then transactions, as the policy says. */
static void after_ehlo(struct smtp *s)
{
	const struct smtp_config *c = s->cfg;
	if (!s->tls_active && !s->no_tls && c->tls != TLSM_NONE) {
		if (s->ext & EXT_STARTTLS) {
			send_simple(s, "STARTTLS\r\n", CMD_STARTTLS, 0);
			return;
		}
		if (c->tls >= TLSM_REQUIRED) {
			fail_local(s, RS_DEFERRED, "TLS is required but the server does not offer STARTTLS");
			return;
		}
	}
	if (c->auth_user && !s->auth_done) {
		if (!(s->ext & EXT_AUTH) || !(s->auth_mechs & 3)) {
			fail_local(s, RS_FAILED, "the server does not offer AUTH PLAIN or LOGIN");
			return;
		}
		if (!s->tls_active && !c->allow_plaintext_auth) {
			fail_local(s, RS_FAILED, "refusing to send credentials without TLS "
			           "(use --allow-plaintext-auth to allow it)");
			return;
		}
		s->auth_login = !(s->auth_mechs & 1);
		if (s->auth_login)
			send_simple(s, "AUTH LOGIN\r\n", CMD_AUTH, 0);
		else
			send_auth_plain(s);
		return;
	}
	greeted(s);
}

/* smtp_tls_up - STARTTLS done: RFC 3207 4.2, forget the earlier EHLO and say it again. */
void smtp_tls_up(struct smtp *s)
{
	s->tls_active = true;
	s->ext = 0;
	s->auth_mechs = 0;
	s->size_max = 0;
	send_hello(s, CMD_EHLO);
}

/* on_auth - replies of the AUTH exchange. */
static void on_auth(struct smtp *s, struct smtp_expect e, const struct reply *r)
{
	if (r->code == 235) {
		s->auth_done = true;
		greeted(s);
	} else if (r->code == 334 && s->auth_login && e.cmd != CMD_AUTH_PASS) {
		send_b64_line(s, e.cmd == CMD_AUTH ? s->cfg->auth_user : s->cfg->auth_pass,
		              e.cmd == CMD_AUTH ? CMD_AUTH_USER : CMD_AUTH_PASS);
	} else {
		s->auth_failed = r->code >= 500;
		set_err(s, r->code >= 500 ? RS_FAILED : RS_DEFERRED, r->code, r->enhanced,
		        "authentication failed: %d %.*s", r->code, (int)r->text_len, r->text);
		abort_all(s, NULL);
	}
}

/* ---- transactions ---- */

static const char no_utf8[] =
	"address needs SMTPUTF8, which the server does not advertise; not sent";

/* local_checks - fail what this server cannot take; returns recipients left. */
static unsigned local_checks(struct smtp *s, struct smtp_txn *t, bool *utf8)
{
	const struct message *m = s->cfg->msg;
	char why[160];
	*utf8 = (s->cfg->from_flags & ADDR_UTF8) != 0;
	if (m->eightbit && !(s->ext & EXT_8BITMIME))
		report_local(s, t, RS_FAILED, "message has 8-bit content but the server does "
		             "not advertise 8BITMIME; not sent");
	else if (s->size_max && m->size > s->size_max) {
		snprintf(why, sizeof why, "message is %zu octets, over the server's SIZE limit "
		         "of %llu; not sent", m->size, (unsigned long long)s->size_max);
		report_local(s, t, RS_FAILED, why);
	} else if (*utf8 && !(s->ext & EXT_SMTPUTF8))
		report_local(s, t, RS_FAILED, "sender address needs SMTPUTF8, which the server "
		             "does not advertise; not sent");
	for (unsigned i = 0; i < t->n && t->open > 0; i++) {
		if (!(t->rcpt[i].flags & ADDR_UTF8) || t->state[i] == RCPT_ST_DONE)
			continue;
		if (s->ext & EXT_SMTPUTF8)
			*utf8 = true;
		else
			report(s, t, i, RS_FAILED, 0, NULL, no_utf8, sizeof no_utf8 - 1);
	}
	return t->open;
}

/* next_pending - index of the first recipient at or after i still pending, or n. */
static unsigned next_pending(const struct smtp_txn *t, unsigned i)
{
	while (i < t->n && t->state[i] != RCPT_ST_PENDING)
		i++;
	return i;
}

/* queue_txn - queue MAIL, and RCPTs and DATA (all of them when pipelining). */
static void queue_txn(struct smtp *s, unsigned ti, bool utf8)
{
	struct smtp_txn *t = &s->txn[ti];
	s->msgs++;
	if (put(s, s->mail_cmd, s->mail_len, utf8 ? " SMTPUTF8\r\n" : "\r\n", utf8 ? 11 : 2,
	        NULL, 0) < 0 || expect(s, CMD_MAIL, ti, 0) < 0)
		return;
	if (!s->pipelining)
		return;
	for (unsigned i = next_pending(t, 0); i < t->n; i = next_pending(t, i + 1))
		if (send_rcpt(s, ti, i) < 0)
			return;
	send_simple(s, "DATA\r\n", CMD_DATA, ti);
}

/* free_slot - a transaction slot not in use, or -1. */
static int free_slot(const struct smtp *s)
{
	return !s->txn[0].active ? 0 : !s->txn[1].active ? 1 : -1;
}

/* start_work - begin the next transaction, or QUIT, or go idle. */
static void start_work(struct smtp *s)
{
	while (s->state == SS_READY) {
		if (s->msgs >= (s->max_msgs ? s->max_msgs : s->cfg->max_msgs)) {
			send_quit(s);
			return;
		}
		int ti = free_slot(s);
		if (ti < 0)
			return;
		struct smtp_txn *t = &s->txn[ti];
		t->n = s->ops->next_txn(s->ctx, t->rcpt, s->cfg->max_rcpts, SMTP_TXN_BUDGET);
		s->idle = t->n == 0;
		if (t->n == 0)
			return;
		t->active = true;
		t->accepted = 0;
		t->open = t->n;
		t->mail_failed = false;
		t->t_start = s->ops->now_ms(s->ctx);
		memset(t->state, RCPT_ST_PENDING, t->n);
		bool utf8;
		if (local_checks(s, t, &utf8) == 0) {
			txn_end(t);
			continue;
		}
		if (s->need_rset) {
			/* The last transaction ended abnormally: reset before MAIL. */
			s->need_rset = false;
			if (send_simple(s, "RSET\r\n", CMD_RSET, (unsigned)ti) < 0)
				return;
			if (!s->pipelining) {
				s->waiting_txn = ti + 1;
				s->waiting_utf8 = utf8;
				return;
			}
		}
		queue_txn(s, (unsigned)ti, utf8);
		return;
	}
}

/* smtp_kick - an idle session may have work now. */
void smtp_kick(struct smtp *s)
{
	if (s->state == SS_READY && s->idle && s->qlen == 0)
		start_work(s);
}

/* smtp_finish - no more work will come: QUIT when nothing is outstanding. */
void smtp_finish(struct smtp *s)
{
	if (s->state == SS_READY && s->qlen == 0 && !s->txn[0].active && !s->txn[1].active)
		send_quit(s);
}

/* ---- replies ---- */

/* on_rcpt - reply to RCPT TO. */
static void on_rcpt(struct smtp *s, struct smtp_expect e, const struct reply *r)
{
	struct smtp_txn *t = &s->txn[e.txn];
	if (!t->mail_failed) {
		if (r->code / 100 == 2) {
			t->state[e.idx] = RCPT_ST_ACCEPTED;
			t->accepted++;
		} else {
			report(s, t, e.idx, status_of(r->code), r->code, r->enhanced, r->text,
			       r->text_len);
		}
	}
	if (s->pipelining)
		return;
	unsigned nx = next_pending(t, e.idx + 1u);
	if (nx < t->n) {
		send_rcpt(s, e.txn, nx);
	} else if (t->accepted > 0) {
		send_simple(s, "DATA\r\n", CMD_DATA, e.txn);
	} else {
		txn_end(t);
		s->need_rset = true;
		start_work(s);
	}
}

/* on_data - reply to DATA: 354 sends the content. */
static void on_data(struct smtp *s, struct smtp_expect e, const struct reply *r)
{
	struct smtp_txn *t = &s->txn[e.txn];
	if (r->code == 354) {
		if (t->mail_failed || t->accepted == 0) {
			/* RFC 2920 3.1: DATA accepted with no valid recipient: send just the dot. */
			send_simple(s, ".\r\n", CMD_DOT_EMPTY, e.txn);
		} else {
			const struct message *m = s->cfg->msg;
			if (out_seg_add(&s->out, m->wire, m->wire_len) < 0) {
				fail_protocol(s, "internal: output segments full");
				return;
			}
			expect(s, CMD_DOT, e.txn, 0);
		}
		if (s->pipelining)
			start_work(s);
		return;
	}
	if (r->code / 100 != 4 && r->code / 100 != 5) {
		char what[64];
		snprintf(what, sizeof what, "expected 354 after DATA, got %d", r->code);
		fail_protocol(s, what);
		return;
	}
	report_reply(s, t, status_of(r->code), r);
	txn_end(t);
	s->need_rset = !t->mail_failed;
	if (!s->pipelining || free_slot(s) >= 0)
		start_work(s);
}

/* on_dot - reply to the final dot: the outcome of every accepted recipient. */
static void on_dot(struct smtp *s, struct smtp_expect e, const struct reply *r)
{
	struct smtp_txn *t = &s->txn[e.txn];
	enum result_status st = r->code / 100 == 2 ? RS_DELIVERED : status_of(r->code);
	if (r->code / 100 == 3) {
		fail_protocol(s, "3xx reply to the end of data");
		return;
	}
	if (e.cmd == CMD_DOT)
		report_reply(s, t, st, r);
	txn_end(t);
	if (!s->pipelining || s->idle)
		start_work(s);
}

/* on_reply - dispatch a complete reply to the command it answers. */
static void on_reply(struct smtp *s, const struct reply *r)
{
	s->replies++;
	if (s->qlen == 0) {
		fail_protocol(s, "reply to no command");
		return;
	}
	struct smtp_expect e = s->q[s->qhead];
	if (r->code == 421 && e.cmd != CMD_QUIT) { /* RFC 5321 3.8: may come at any time */
		fail_reply(s, r);
		return;
	}
	if ((int32_t)(s->out.sent - e.end) < 0) {
		/* e.g. a 250 right behind the 354, before the message was sent: taking it as the
		 * reply to the final dot would report a message the server never saw as delivered */
		fail_protocol(s, "reply to a command not sent yet");
		return;
	}
	s->qhead = (s->qhead + 1) % s->qcap;
	s->qlen--;
	switch ((enum smtp_cmd)e.cmd) {
	case CMD_GREETING:
		if (r->code / 100 == 2)
			send_hello(s, CMD_EHLO);
		else
			fail_reply(s, r);
		break;
	case CMD_EHLO:
		if (r->code / 100 == 2) {
			parse_ext(s, r);
			after_ehlo(s);
		} else if (r->code / 100 == 5 && !s->tls_active) {
			send_hello(s, CMD_HELO);
		} else {
			fail_reply(s, r);
		}
		break;
	case CMD_HELO:
		if (r->code / 100 == 2) {
			s->ext = 0;
			after_ehlo(s);
		} else {
			fail_reply(s, r);
		}
		break;
	case CMD_MAIL:
		if (r->code / 100 != 2) {
			struct smtp_txn *t = &s->txn[e.txn];
			t->mail_failed = true;
			report_reply(s, t, status_of(r->code), r);
			if (!s->pipelining) {
				txn_end(t);
				start_work(s);
			}
		} else if (!s->pipelining) {
			struct smtp_txn *t = &s->txn[e.txn];
			send_rcpt(s, e.txn, next_pending(t, 0));
		}
		break;
	case CMD_RCPT:
		on_rcpt(s, e, r);
		break;
	case CMD_DATA:
		on_data(s, e, r);
		break;
	case CMD_DOT:
	case CMD_DOT_EMPTY:
		on_dot(s, e, r);
		break;
	case CMD_RSET:
		if (r->code / 100 != 2) {
			fail_reply(s, r);
		} else if (s->waiting_txn) {
			unsigned ti = (unsigned)s->waiting_txn - 1;
			s->waiting_txn = 0;
			queue_txn(s, ti, s->waiting_utf8);
		}
		break;
	case CMD_QUIT:
		s->state = SS_DONE;
		break;
	case CMD_STARTTLS:
		if (r->code == 220) {
			s->state = SS_TLS;
		} else if (s->cfg->tls >= TLSM_REQUIRED) {
			set_err(s, status_of(r->code), r->code, r->enhanced, "STARTTLS refused: %d %.*s",
			        r->code, (int)r->text_len, r->text);
			abort_all(s, NULL);
		} else {
			s->no_tls = true;
			after_ehlo(s);
		}
		break;
	case CMD_AUTH:
	case CMD_AUTH_USER:
	case CMD_AUTH_PASS:
		on_auth(s, e, r);
		break;
	}
}

/* smtp_start - a new connection: wait for the greeting. */
void smtp_start(struct smtp *s)
{
	s->state = SS_GREETING;
	s->ext = 0;
	s->size_max = 0;
	s->pipelining = false;
	s->need_rset = false;
	s->waiting_txn = 0;
	s->idle = false;
	s->tls_active = false;
	s->no_tls = false;
	s->auth_done = false;
	s->auth_failed = false;
	s->auth_mechs = 0;
	s->msgs = 0;
	s->qhead = s->qlen = 0;
	s->txn[0].active = s->txn[1].active = false;
	s->err[0] = '\0';
	s->fail_code = 0;
	s->fail_enh[0] = '\0';
	reply_reset(&s->rp);
	out_reset(&s->out);
	expect(s, CMD_GREETING, 0, 0);
}

/* smtp_input - split bytes into lines and feed the reply parser. */
size_t smtp_input(struct smtp *s, const char *buf, size_t len)
{
	size_t used = 0;
	while (used < len) {
		if (s->state == SS_DONE || s->state == SS_FAILED)
			return len;
		const char *nl = memchr(buf + used, '\n', len - used);
		if (!nl) {
			if (len - used >= REPLY_MAX_LINE)
				fail_protocol(s, "reply line too long");
			return s->state == SS_FAILED ? len : used;
		}
		size_t ll = (size_t)(nl - (buf + used));
		const char *err = NULL;
		enum reply_rc rc = reply_line(&s->rp, buf + used, ll, &err);
		used += ll + 1;
		if (rc == REPLY_ERROR)
			fail_protocol(s, err);
		else if (rc == REPLY_DONE)
			on_reply(s, &s->rp.r);
	}
	return used;
}

/* smtp_open_rcpts - recipients of live transactions without a result. */
unsigned smtp_open_rcpts(const struct smtp *s)
{
	unsigned n = 0;
	for (int i = 0; i < 2; i++)
		if (s->txn[i].active)
			n += s->txn[i].open;
	return n;
}

/* smtp_expecting - the command whose reply comes next, or -1. */
int smtp_expecting(const struct smtp *s)
{
	return s->qlen ? s->q[s->qhead].cmd : -1;
}
