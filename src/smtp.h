/* smtp.h - SMTP client state machine (RFC 5321, 2920): bytes in, bytes and decisions out. No I/O.
 *
 * The engine feeds received bytes to smtp_input() and sends whatever the
 * machine queued in its output (smtp_out). Recipients come from the engine
 * through ops->next_txn(); outcomes leave through ops->result(), exactly once
 * per recipient. The machine never calls send() or recv(), so unit tests drive
 * it with byte strings. */
#ifndef VOLLEY_SMTP_H
#define VOLLEY_SMTP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include "job.h"
#include "message.h"
#include "reply.h"
#include "results.h"

/* Extensions learned from EHLO (a bitmask). */
enum smtp_ext {
	EXT_PIPELINING = 1u << 0,
	EXT_SIZE       = 1u << 1,
	EXT_8BITMIME   = 1u << 2,
	EXT_ENHANCED   = 1u << 3,   /* ENHANCEDSTATUSCODES */
	EXT_SMTPUTF8   = 1u << 4,
	EXT_CHUNKING   = 1u << 5,
	EXT_STARTTLS   = 1u << 6,
	EXT_AUTH       = 1u << 7,
	EXT_DSN        = 1u << 8,
};

/* Session states: what the machine waits for. */
enum smtp_state {
	SS_GREETING,    /* connected, waiting for 220 */
	SS_HELLO,       /* EHLO or HELO sent */
	SS_READY,       /* greeted: transactions may run */
	SS_QUIT,        /* QUIT sent: waiting for 221 or close */
	SS_TLS,         /* 220 to STARTTLS: the engine runs the handshake, then smtp_tls_up() */
	SS_DONE,        /* finished cleanly: close the connection */
	SS_FAILED,      /* broken: close the connection; see err */
};

/* What each outstanding reply answers. */
enum smtp_cmd { CMD_GREETING, CMD_EHLO, CMD_HELO, CMD_MAIL, CMD_RCPT, CMD_DATA, CMD_DOT,
                CMD_DOT_EMPTY, CMD_RSET, CMD_QUIT, CMD_STARTTLS, CMD_AUTH, CMD_AUTH_USER,
                CMD_AUTH_PASS };

/* TLS policy of a run (RFC 3207, RFC 7435). */
enum smtp_tls_mode {
	TLSM_NONE,           /* never STARTTLS */
	TLSM_OPPORTUNISTIC,  /* STARTTLS when offered; any certificate; plaintext if it fails */
	TLSM_REQUIRED,       /* TLS or nothing; any certificate */
	TLSM_VERIFY,         /* TLS or nothing; the certificate must be valid for the host */
};

/* Bytes of RCPT commands one transaction may queue; with the arena below this
 * bounds a session's output memory whatever the addresses' lengths. */
#define SMTP_TXN_BUDGET 8192u
#define SMTP_ARENA      (2u * (SMTP_TXN_BUDGET + 4u * SMTP_MAX_CMD))
#define SMTP_OUT_SEGS   8u

/* Output queue: ordered segments; command bytes live in the arena, message bytes are referenced. */
struct smtp_out {
	struct { const char *p; size_t len; } seg[SMTP_OUT_SEGS];
	unsigned nseg;          /* segments not fully sent */
	size_t off;             /* octets of seg[0] already sent */
	size_t pending;         /* octets not yet sent */
	char arena[SMTP_ARENA]; /* command bytes */
	size_t arena_len;       /* octets used in arena */
	uint32_t queued;        /* octets ever queued on this connection (mod 2^32) */
	uint32_t sent;          /* ... of which sent (mod 2^32) */
};

/* One transaction: up to max_rcpts recipients sharing a MAIL FROM. */
struct smtp_txn {
	struct rcpt *rcpt;      /* recipients (storage owned by the engine) */
	uint8_t *state;         /* per recipient: RCPT_ST_* */
	unsigned n;             /* recipients */
	unsigned accepted;      /* RCPTs answered 2xx */
	unsigned open;          /* recipients without a result yet */
	bool active;            /* in use */
	bool mail_failed;       /* MAIL was refused: later replies carry no news */
	int64_t t_start;        /* ms when MAIL was queued */
};

enum { RCPT_ST_PENDING = 0, RCPT_ST_ACCEPTED = 1, RCPT_ST_DONE = 2 };

/* Settings shared by all sessions of a run. */
struct smtp_config {
	const char *helo;            /* EHLO/HELO argument (checked: no CR/LF) */
	const char *from;            /* envelope sender ("" for <>), checked */
	unsigned from_flags;         /* ADDR_* of from */
	const struct message *msg;   /* prepared message */
	unsigned max_rcpts;          /* recipients per transaction */
	unsigned max_msgs;           /* transactions per connection */
	bool no_pipelining;          /* never pipeline, even if offered */
	enum smtp_tls_mode tls;      /* STARTTLS policy */
	const char *auth_user;       /* AUTH identity, NULL for no AUTH */
	const char *auth_pass;       /* its password (never logged) */
	bool allow_plaintext_auth;   /* allow AUTH without TLS */
};

/* Callbacks into the engine. */
struct smtp_ops {
	/* next_txn - fill up to max recipients whose RCPT commands fit budget octets
	 * (see smtp_rcpt_cost); returns how many, 0 when there is no work now. */
	unsigned (*next_txn)(void *ctx, struct rcpt *out, unsigned max, size_t budget);
	/* result - the one outcome of recipient r. */
	void (*result)(void *ctx, const struct rcpt *r, enum result_status st, int code,
	               const char *enhanced, const char *text, size_t len, int64_t t_start);
	/* now_ms - monotonic milliseconds. */
	int64_t (*now_ms)(void *ctx);
};

/* Expected reply: which command, which transaction and recipient, and where the
 * command ends in the output (a reply is only taken once its command was sent). */
struct smtp_expect { uint8_t cmd, txn; uint16_t idx; uint32_t end; };

/* One SMTP client session. */
struct smtp {
	const struct smtp_config *cfg;
	const struct smtp_ops *ops;
	void *ctx;
	enum smtp_state state;
	unsigned ext;                /* EXT_* learned from EHLO */
	uint64_t size_max;           /* SIZE limit advertised, 0 if none */
	bool pipelining;             /* pipelining in use on this connection */
	bool need_rset;              /* a transaction ended abnormally: RSET first */
	int waiting_txn;             /* lockstep: slot+1 of a transaction waiting for RSET's reply */
	bool waiting_utf8;           /* ... and whether its MAIL needs SMTPUTF8 */
	bool idle;                   /* ready, waiting for work (ops->next_txn gave 0) */
	bool tls_active;             /* the connection is encrypted (STARTTLS done, or implicit) */
	bool no_tls;                 /* do not STARTTLS on this connection (plaintext retry) */
	bool auth_done;              /* AUTH succeeded on this connection */
	bool auth_failed;            /* the server refused our credentials (5xx) */
	bool auth_login;             /* using LOGIN rather than PLAIN */
	unsigned auth_mechs;         /* AUTH mechanisms offered: bit 0 PLAIN, bit 1 LOGIN */
	unsigned msgs;               /* transactions started on this connection */
	unsigned max_msgs;           /* transactions per connection here (0: cfg->max_msgs) */
	unsigned replies;            /* complete replies received (progress, for deadlines) */
	struct reply_parser rp;
	struct smtp_expect *q;       /* ring of expected replies */
	unsigned qcap, qhead, qlen;
	struct smtp_txn txn[2];      /* at most two alive: one in data, the next in commands */
	char mail_cmd[SMTP_MAX_CMD]; /* "MAIL FROM:<...> params" without CRLF, built after EHLO */
	size_t mail_len;             /* octets of mail_cmd */
	enum result_status fail_status; /* when failed: status for recipients not yet tried */
	int fail_code;               /* when failed: reply code, or 0 */
	char fail_enh[16];           /* when failed: enhanced code, or "" */
	char err[512];               /* why the session failed (reply text or local reason) */
	struct smtp_out out;         /* bytes to send */
};

/* smtp_mem - bytes smtp_init needs in storage for cfg. */
size_t smtp_mem(const struct smtp_config *cfg);

/* smtp_init - bind a session to cfg/ops/ctx, using storage of smtp_mem() bytes. */
void smtp_init(struct smtp *s, const struct smtp_config *cfg, const struct smtp_ops *ops,
               void *ctx, void *storage);

/* smtp_start - a new connection is up: expect the greeting. */
void smtp_start(struct smtp *s);

/* smtp_input - consume received bytes; returns octets consumed (the rest is a
 * partial line to present again with more bytes). Fails the session when a
 * line exceeds REPLY_MAX_LINE. */
size_t smtp_input(struct smtp *s, const char *buf, size_t len);

/* smtp_tls_up - the TLS handshake after STARTTLS succeeded: forget what EHLO said, EHLO again. */
void smtp_tls_up(struct smtp *s);

/* smtp_kick - work may have arrived for an idle session. */
void smtp_kick(struct smtp *s);

/* smtp_abort - the connection is gone: every open recipient gets st with reason. */
void smtp_abort(struct smtp *s, enum result_status st, const char *reason);

/* smtp_finish - stop taking work: QUIT when idle. */
void smtp_finish(struct smtp *s);

/* smtp_open_rcpts - recipients still without a result. */
unsigned smtp_open_rcpts(const struct smtp *s);

/* smtp_expecting - the command whose reply is awaited, or -1. */
int smtp_expecting(const struct smtp *s);

/* smtp_rcpt_cost - octets the RCPT command for r takes in the arena. */
size_t smtp_rcpt_cost(const struct rcpt *r);

/* smtp_out_consume - n octets of the output were sent. */
void smtp_out_consume(struct smtp_out *o, size_t n);

/* smtp_out_iov - describe unsent output as up to max iovecs; returns count. */
unsigned smtp_out_iov(const struct smtp_out *o, struct iovec *iov, unsigned max);

#endif
