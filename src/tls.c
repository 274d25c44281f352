/* tls.c - the TLS pump: OpenSSL 3 client over a custom memory BIO; ciphertext in, ciphertext out, no socket.
 *
 * Each connection owns two bounded ciphertext queues, `in` (from the peer, read
 * by OpenSSL) and `out` (written by OpenSSL, sent by the engine). One custom BIO
 * serves as both the SSL's read and write BIO: reading an empty `in` or writing
 * a full `out` returns "retry", which OpenSSL reports as WANT_READ/WANT_WRITE.
 * A BIO pair would do the same, but it pins 2 x TLS_CIPHER_BUF per connection
 * for its whole life; our queues are allocated on first use and given back by
 * tls_release_buffers, so an idle connection costs only OpenSSL's own state.
 *
 * Diagnostics: every failure leaves a one-line reason in the connection
 * (tls_error) and the thread's OpenSSL error queue empty. */
#include "tls.h"
#include "bounds.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TLS_ERR_MAX      256u    /* octets in a failure reason, NUL included */
#define TLS_PLAIN_MAX    16384u  /* plaintext octets in one record (RFC 8446 5.1) */
#define TLS_RECORD_SLACK 1024u   /* room kept for record overhead and a KeyUpdate */
#define TLS_NAME_SHOW    64u     /* octets of a certificate name quoted in a reason */
#define TLS_HOST_MAX     ADDR_MAX_DOMAIN /* octets in the host name we connect to */

_Static_assert(TLS_CIPHER_BUF >= TLS_PLAIN_MAX + TLS_RECORD_SLACK,
               "one full record must fit in the ciphertext buffer");

/* The shared client context. */
struct tls_ctx {
	SSL_CTX *ssl;           /* OpenSSL context: trust store, certificate, options */
	BIO_METHOD *bio;        /* our queue BIO, shared read-only by all connections */
};

/* A bounded ciphertext queue: data is p[off, off + len); p is NULL while idle. */
struct tls_queue {
	unsigned char *p;       /* TLS_CIPHER_BUF octets, or NULL */
	size_t off;             /* first unread octet */
	size_t len;             /* octets queued */
};

/* One client connection. */
struct tls_conn {
	SSL *ssl;               /* the OpenSSL connection; owns the BIO */
	struct tls_queue in;    /* ciphertext from the peer, not yet read by OpenSSL */
	struct tls_queue out;   /* ciphertext from OpenSSL, not yet taken by the engine */
	bool done;              /* handshake finished */
	bool failed;            /* fatal error or peer close: see err */
	bool closed;            /* the peer sent close_notify */
	bool ip;                /* host is an IP literal: no SNI, IP address check */
	char host[TLS_HOST_MAX + 1]; /* host name (trailing dot removed) or IP literal */
	char err[TLS_ERR_MAX];  /* why the connection failed; "" while healthy */
};

/* tls_fail - mark t failed with a printf-style reason (the first reason wins). */
static void tls_fail(struct tls_conn *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void tls_fail(struct tls_conn *t, const char *fmt, ...)
{
	va_list ap;

	if (t->failed)
		return;
	t->failed = true;
	va_start(ap, fmt);
	vsnprintf(t->err, sizeof t->err, fmt, ap);
	va_end(ap);
}

/* tls_queue_put - append up to n octets to q; returns octets taken (0 when full or out of memory). */
static size_t tls_queue_put(struct tls_queue *q, const void *src, size_t n)
{
	size_t room = TLS_CIPHER_BUF - q->len;

	if (n > room)
		n = room;
	if (n == 0)
		return 0;
	if (q->p == NULL) {
		q->p = malloc(TLS_CIPHER_BUF);
		if (q->p == NULL)
			return 0;
		q->off = 0;
	}
	if (q->off + q->len + n > TLS_CIPHER_BUF) {
		memmove(q->p, q->p + q->off, q->len);
		q->off = 0;
	}
	memcpy(q->p + q->off + q->len, src, n);
	q->len += n;
	return n;
}

/* tls_queue_take - remove up to n octets from the front of q into dst; returns octets. */
static size_t tls_queue_take(struct tls_queue *q, void *dst, size_t n)
{
	if (n > q->len)
		n = q->len;
	if (n == 0)
		return 0;
	memcpy(dst, q->p + q->off, n);
	q->off += n;
	q->len -= n;
	if (q->len == 0)
		q->off = 0;
	return n;
}

/* tls_queue_trim - give an empty queue's memory back. */
static void tls_queue_trim(struct tls_queue *q)
{
	if (q->len == 0) {
		free(q->p);
		q->p = NULL;
		q->off = 0;
	}
}

/* tls_bio_write - OpenSSL sends ciphertext: queue it in out, or ask to retry when full. */
static int tls_bio_write(BIO *b, const char *buf, size_t len, size_t *written)
{
	struct tls_conn *t = BIO_get_data(b);
	size_t n;

	BIO_clear_retry_flags(b);
	if (len == 0) {
		*written = 0;
		return 1;
	}
	if (t->out.len >= TLS_CIPHER_BUF) {
		BIO_set_retry_write(b);
		return 0;
	}
	n = tls_queue_put(&t->out, buf, len);
	if (n == 0)
		return 0; /* out of memory: no retry flag, so OpenSSL fails the connection */
	*written = n;
	return 1;
}

/* tls_bio_read - OpenSSL wants ciphertext: hand it what in holds, or ask to retry when empty. */
static int tls_bio_read(BIO *b, char *buf, size_t len, size_t *readbytes)
{
	struct tls_conn *t = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (len == 0) {
		*readbytes = 0;
		return 1;
	}
	if (t->in.len == 0) {
		BIO_set_retry_read(b);
		return 0;
	}
	*readbytes = tls_queue_take(&t->in, buf, len);
	return 1;
}

/* tls_bio_ctrl - answer OpenSSL's questions about the queues; flushing is the engine's job. */
static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_conn *t = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_PENDING:
		return t != NULL ? (long)t->in.len : 0;
	case BIO_CTRL_WPENDING:
		return t != NULL ? (long)t->out.len : 0;
	default:
		return 0;
	}
}

/* tls_bio_create - a new queue BIO is ready at once; its data is set by tls_conn_new. */
static int tls_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static int tls_bio_index = -1;                 /* our BIO type index, taken once */
static pthread_once_t tls_bio_once = PTHREAD_ONCE_INIT;

/* tls_bio_take_index - reserve a BIO type index (OpenSSL has about 127): once per process. */
static void tls_bio_take_index(void)
{
	tls_bio_index = BIO_get_new_index();
}

/* tls_bio_method - build the BIO_METHOD for our queues; NULL on out-of-memory. */
static BIO_METHOD *tls_bio_method(void)
{
	BIO_METHOD *m;

	if (pthread_once(&tls_bio_once, tls_bio_take_index) != 0 || tls_bio_index < 0)
		return NULL;
	m = BIO_meth_new(tls_bio_index | BIO_TYPE_SOURCE_SINK, "volley-tls");
	if (m == NULL)
		return NULL;
	if (!BIO_meth_set_write_ex(m, tls_bio_write) || !BIO_meth_set_read_ex(m, tls_bio_read) ||
	    !BIO_meth_set_ctrl(m, tls_bio_ctrl) || !BIO_meth_set_create(m, tls_bio_create)) {
		BIO_meth_free(m);
		return NULL;
	}
	return m;
}

/* tls_err_text - the reason of the oldest queued OpenSSL error (or "unknown error"); empties the queue. */
static void tls_err_text(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (r != NULL)
		snprintf(buf, len, "%s", r);
	else if (e != 0)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unknown error");
	ERR_clear_error();
}

/* tls_ctx_fail - format a tls_ctx_new error into err with OpenSSL's reason appended. */
static void tls_ctx_fail(char *err, size_t errlen, const char *what, const char *file)
{
	char why[TLS_ERR_MAX];

	tls_err_text(why, sizeof why);
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "tls: %s %s: %s", what, file, why);
}

/* tls_ctx_trust - load the trusted CAs: ca_file, or the system's default paths. */
static bool tls_ctx_trust(SSL_CTX *s, const char *ca_file, char *err, size_t errlen)
{
	if (ca_file == NULL) {
		if (SSL_CTX_set_default_verify_paths(s) == 1)
			return true;
		tls_ctx_fail(err, errlen, "cannot load", "system CA paths");
		return false;
	}
	if (SSL_CTX_load_verify_locations(s, ca_file, NULL) == 1)
		return true;
	tls_ctx_fail(err, errlen, "cannot load CA file", ca_file);
	return false;
}

/* tls_ctx_identity - load the client certificate chain and key (key_file NULL: in cert_file). */
static bool tls_ctx_identity(SSL_CTX *s, const char *cert_file, const char *key_file,
                             char *err, size_t errlen)
{
	if (cert_file == NULL) {
		if (key_file == NULL)
			return true;
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "tls: key file %s given without a certificate", key_file);
		return false;
	}
	if (key_file == NULL)
		key_file = cert_file;
	if (SSL_CTX_use_certificate_chain_file(s, cert_file) != 1) {
		tls_ctx_fail(err, errlen, "cannot load certificate file", cert_file);
		return false;
	}
	if (SSL_CTX_use_PrivateKey_file(s, key_file, SSL_FILETYPE_PEM) != 1) {
		tls_ctx_fail(err, errlen, "cannot load key file", key_file);
		return false;
	}
	if (SSL_CTX_check_private_key(s) != 1) {
		tls_ctx_fail(err, errlen, "key does not match certificate", cert_file);
		return false;
	}
	return true;
}

/* tls_ctx_options - protocol floor, buffer modes and the external client session cache. */
static bool tls_ctx_options(SSL_CTX *s)
{
	if (SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION) != 1)
		return false;
	SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
	                    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	return true;
}

/* tls_ctx_new - build the shared client context (see tls.h). */
struct tls_ctx *tls_ctx_new(const char *ca_file, bool trust, const char *cert_file,
                            const char *key_file, char *err, size_t errlen)
{
	struct tls_ctx *c = calloc(1, sizeof *c);

	ERR_clear_error();
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (c == NULL || (c->ssl = SSL_CTX_new(TLS_client_method())) == NULL ||
	    (c->bio = tls_bio_method()) == NULL || !tls_ctx_options(c->ssl)) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "tls: cannot create context (out of memory?)");
		goto fail;
	}
	if ((trust && !tls_ctx_trust(c->ssl, ca_file, err, errlen)) ||
	    !tls_ctx_identity(c->ssl, cert_file, key_file, err, errlen))
		goto fail;
	return c;
fail:
	ERR_clear_error();
	tls_ctx_free(c);
	return NULL;
}

/* tls_ctx_free - release the context (connections made from it must be gone). */
void tls_ctx_free(struct tls_ctx *c)
{
	if (c == NULL)
		return;
	SSL_CTX_free(c->ssl);
	BIO_meth_free(c->bio);
	free(c);
}

/* tls_set_host - remember host without a trailing dot or "[IPv6:...]" wrapping; note IP literals. */
static bool tls_set_host(struct tls_conn *t, const char *host)
{
	size_t n = host != NULL ? strnlen(host, TLS_HOST_MAX + 8) : 0;
	unsigned char a[sizeof(struct in6_addr)];

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') { /* RFC 5321 address literal */
		host++;
		n -= 2;
		if (n > 5 && strncasecmp(host, "IPv6:", 5) == 0) {
			host += 5;
			n -= 5;
		}
	} else if (n > 0 && host[n - 1] == '.') {
		n--;
	}
	if (n == 0 || n > TLS_HOST_MAX)
		return false;
	memcpy(t->host, host, n);
	t->host[n] = '\0';
	t->ip = inet_pton(AF_INET, t->host, a) == 1 || inet_pton(AF_INET6, t->host, a) == 1;
	return true;
}

/* tls_conn_verify - set SNI and the verification mode; false when OpenSSL refuses the name. */
static bool tls_conn_verify(struct tls_conn *t, enum tls_verify v)
{
	SSL *s = t->ssl;

	if (!t->ip && SSL_set_tlsext_host_name(s, t->host) != 1)
		return false;
	if (v != TLS_VERIFY) {
		SSL_set_verify(s, SSL_VERIFY_NONE, NULL);
		return true;
	}
	SSL_set_verify(s, SSL_VERIFY_PEER, NULL);
	SSL_set_hostflags(s, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (t->ip)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), t->host) == 1;
	return SSL_set1_host(s, t->host) == 1;
}

/* tls_conn_bio - give the connection its queue BIO (as both read and write side). */
static bool tls_conn_bio(struct tls_ctx *c, struct tls_conn *t)
{
	BIO *b = BIO_new(c->bio);

	if (b == NULL)
		return false;
	BIO_set_data(b, t);
	SSL_set_bio(t->ssl, b, b);
	return true;
}

/* tls_conn_new - start a client connection for host (see tls.h). */
struct tls_conn *tls_conn_new(struct tls_ctx *c, const char *host, enum tls_verify v,
                              void *session)
{
	struct tls_conn *t = calloc(1, sizeof *t);

	if (t == NULL)
		return NULL;
	ERR_clear_error();
	t->ssl = SSL_new(c->ssl);
	if (t->ssl == NULL || !tls_conn_bio(c, t)) {
		ERR_clear_error();
		tls_conn_free(t);
		return NULL;
	}
	SSL_set_connect_state(t->ssl);
	if (!tls_set_host(t, host))
		tls_fail(t, "bad host name for TLS");
	else if (!tls_conn_verify(t, v))
		tls_fail(t, "cannot use host name %s for TLS", t->host);
	else if (session != NULL && SSL_set_session(t->ssl, session) != 1)
		tls_fail(t, "cannot resume TLS session");
	ERR_clear_error();
	return t;
}

/* tls_conn_free - release the connection, its queues and its OpenSSL state.
 * OpenSSL marks the session of a connection freed without a shutdown as not
 * resumable, and the engine's reference (tls_session_get) is the same object.
 * SMTP servers rarely send close_notify after QUIT, so a healthy or orderly
 * closed connection is marked shut down to keep its session usable; a failed one
 * is not (a fatal alert has already invalidated it). */
void tls_conn_free(struct tls_conn *t)
{
	if (t == NULL)
		return;
	if (t->ssl != NULL && t->done && (!t->failed || t->closed))
		SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(t->ssl); /* frees the BIO before the queues it points to */
	free(t->in.p);
	free(t->out.p);
	free(t);
}

/* tls_printable - copy at most TLS_NAME_SHOW octets of s to buf, hostile octets as '?'. */
static void tls_printable(char *buf, size_t len, const unsigned char *s, int n)
{
	size_t i, m = n > 0 ? (size_t)n : 0;

	if (m > TLS_NAME_SHOW)
		m = TLS_NAME_SHOW;
	if (m >= len)
		m = len - 1;
	for (i = 0; i < m; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	buf[i] = '\0';
}

/* tls_cert_name - the first DNS name (else the CN) of the peer's leaf certificate; "" if none. */
static void tls_cert_name(SSL *s, char *buf, size_t len)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(s);
	X509 *x = chain != NULL && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
	GENERAL_NAMES *names;
	int i;

	buf[0] = '\0';
	if (x == NULL)
		return;
	names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && buf[0] == '\0'; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		if (g->type == GEN_DNS)
			tls_printable(buf, len, ASN1_STRING_get0_data(g->d.dNSName),
			              ASN1_STRING_length(g->d.dNSName));
	}
	GENERAL_NAMES_free(names);
	i = X509_NAME_get_index_by_NID(X509_get_subject_name(x), NID_commonName, -1);
	if (buf[0] == '\0' && i >= 0) {
		ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(X509_get_subject_name(x), i));
		tls_printable(buf, len, ASN1_STRING_get0_data(cn), ASN1_STRING_length(cn));
	}
}

/* tls_verify_hint - a short explanation appended to some verification errors. */
static const char *tls_verify_hint(long v)
{
	switch (v) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
		return " (unknown CA)";
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		return " (not trusted)";
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return " (check the clock)";
	default:
		return "";
	}
}

/* tls_fail_verify - explain a certificate the handshake rejected. */
static void tls_fail_verify(struct tls_conn *t, long v)
{
	char name[TLS_NAME_SHOW + 1];

	if (v != X509_V_ERR_HOSTNAME_MISMATCH && v != X509_V_ERR_IP_ADDRESS_MISMATCH) {
		tls_fail(t, "%s%s", X509_verify_cert_error_string(v), tls_verify_hint(v));
		return;
	}
	tls_cert_name(t->ssl, name, sizeof name);
	if (name[0] != '\0')
		tls_fail(t, "certificate name mismatch (wanted %s, certificate is for %s)", t->host, name);
	else
		tls_fail(t, "certificate name mismatch (wanted %s)", t->host);
}

/* tls_fail_ssl - record why an SSL call failed: verification, the error queue, or a close. */
static void tls_fail_ssl(struct tls_conn *t, int e, const char *what)
{
	long v = SSL_get_verify_result(t->ssl);
	unsigned long q = ERR_peek_error();
	char why[TLS_ERR_MAX];

	if (!t->done && (SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER) && v != X509_V_OK) {
		tls_fail_verify(t, v);
	} else if (e == SSL_ERROR_ZERO_RETURN || (q == 0 && e == SSL_ERROR_SYSCALL) ||
	           (ERR_GET_LIB(q) == ERR_LIB_SSL &&
	            ERR_GET_REASON(q) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		tls_fail(t, "connection closed during %s", t->done ? "TLS session" : "TLS handshake");
	} else {
		tls_err_text(why, sizeof why);
		tls_fail(t, "%s: %s", what, why);
	}
	ERR_clear_error();
}

/* tls_handshake - advance the handshake (see tls.h). */
enum tls_rc tls_handshake(struct tls_conn *t)
{
	int r, e;

	if (t->failed)
		return TLS_ERROR;
	if (t->done)
		return TLS_OK;
	ERR_clear_error();
	r = SSL_do_handshake(t->ssl);
	if (r == 1) {
		t->done = true;
		return TLS_OK;
	}
	e = SSL_get_error(t->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		return TLS_WANT_IO;
	}
	tls_fail_ssl(t, e, "handshake failure");
	return TLS_ERROR;
}

/* tls_handshake_done - whether the handshake has finished. */
bool tls_handshake_done(const struct tls_conn *t)
{
	return t->done;
}

/* tls_put_cipher - queue ciphertext received from the peer (see tls.h). */
size_t tls_put_cipher(struct tls_conn *t, const void *buf, size_t len)
{
	size_t n = tls_queue_put(&t->in, buf, len);

	if (n == 0 && len > 0 && t->in.p == NULL)
		tls_fail(t, "out of memory for TLS input");
	return n;
}

/* tls_get_cipher - take up to cap octets of ciphertext to send (see tls.h). */
size_t tls_get_cipher(struct tls_conn *t, void *buf, size_t cap)
{
	return tls_queue_take(&t->out, buf, cap);
}

/* tls_pending_cipher - ciphertext waiting to be sent. */
size_t tls_pending_cipher(const struct tls_conn *t)
{
	return t->out.len;
}

/* tls_ready - finish the handshake first if needed: 1 ready, 0 not yet, -1 failed. */
static int tls_ready(struct tls_conn *t)
{
	if (t->failed)
		return -1;
	if (t->done)
		return 1;
	switch (tls_handshake(t)) {
	case TLS_OK:
		return 1;
	case TLS_ERROR:
		return -1;
	default:
		return 0;
	}
}

/* tls_io_fail - map a failed SSL_read_ex/SSL_write_ex: 0 to retry later, -1 when fatal. */
static long tls_io_fail(struct tls_conn *t, const char *what)
{
	int e = SSL_get_error(t->ssl, 0);

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		ERR_clear_error();
		return 0;
	}
	if (e == SSL_ERROR_ZERO_RETURN) {
		t->closed = true;
		tls_fail(t, "peer closed TLS (close_notify)");
		ERR_clear_error();
		return -1;
	}
	tls_fail_ssl(t, e, what);
	return -1;
}

/* tls_read - decrypt application data (see tls.h). */
long tls_read(struct tls_conn *t, void *buf, size_t cap)
{
	size_t n = 0;
	int r = tls_ready(t);

	if (r <= 0)
		return r;
	if (cap == 0)
		return 0;
	ERR_clear_error();
	if (SSL_read_ex(t->ssl, buf, cap, &n) == 1)
		return (long)n;
	return tls_io_fail(t, "TLS read failed");
}

/* tls_write - encrypt application data, at most one record and only when it fits (see tls.h). */
long tls_write(struct tls_conn *t, const void *buf, size_t len)
{
	size_t n = 0, room;
	int r = tls_ready(t);

	if (r <= 0)
		return r;
	room = TLS_CIPHER_BUF - t->out.len;
	if (len == 0 || room <= TLS_RECORD_SLACK)
		return 0;
	room -= TLS_RECORD_SLACK;
	if (len > room)
		len = room;
	if (len > TLS_PLAIN_MAX)
		len = TLS_PLAIN_MAX;
	ERR_clear_error();
	if (SSL_write_ex(t->ssl, buf, len, &n) == 1)
		return (long)n;
	return tls_io_fail(t, "TLS write failed");
}

/* tls_error - why the connection failed ("" while healthy). */
const char *tls_error(const struct tls_conn *t)
{
	return t->err;
}

/* tls_closed - whether the failure was the peer's orderly close_notify. */
bool tls_closed(const struct tls_conn *t)
{
	return t->closed;
}

/* tls_resumed - whether the handshake resumed the session given to tls_conn_new. */
bool tls_resumed(const struct tls_conn *t)
{
	return t->done && SSL_session_reused(t->ssl) == 1;
}

/* tls_describe - "TLSv1.3 TLS_AES_256_GCM_SHA384" after the handshake, "" before. */
const char *tls_describe(const struct tls_conn *t, char *buf, size_t len)
{
	const char *cipher;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	cipher = t->done ? SSL_get_cipher_name(t->ssl) : NULL;
	if (cipher != NULL)
		snprintf(buf, len, "%s %s", SSL_get_version(t->ssl), cipher);
	return buf;
}

/* tls_session_get - a new reference to the current session if it can be resumed, else NULL. */
void *tls_session_get(struct tls_conn *t)
{
	SSL_SESSION *s = t->done && (!t->failed || t->closed) ? SSL_get0_session(t->ssl) : NULL;

	if (s == NULL || SSL_SESSION_is_resumable(s) != 1 || SSL_SESSION_up_ref(s) != 1)
		return NULL;
	return s;
}

/* tls_session_free - drop a reference from tls_session_get (NULL is fine). */
void tls_session_free(void *session)
{
	SSL_SESSION_free(session);
}

/* tls_release_buffers - drop OpenSSL's record buffers and our empty queues while idle. */
void tls_release_buffers(struct tls_conn *t)
{
	(void)SSL_free_buffers(t->ssl); /* refuses while a record is half read or written */
	tls_queue_trim(&t->in);
	tls_queue_trim(&t->out);
}
