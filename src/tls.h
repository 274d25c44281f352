/* tls.h - the TLS pump: OpenSSL over memory BIOs, no socket (the engine moves ciphertext on its ring). */
#ifndef VOLLEY_TLS_H
#define VOLLEY_TLS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_CIPHER_BUF  (17u * 1024u)  /* ciphertext staged for sending: one full record + slack */

/* How much checking a connection gets. */
enum tls_verify {
	TLS_NOVERIFY,        /* encrypt, accept any certificate (opportunistic, required) */
	TLS_VERIFY,          /* chain to a trusted CA and host name must match (verify) */
};

/* Shared settings: one per run (per policy), read-only once threads start. */
struct tls_ctx;

/* tls_ctx_new - build a client context: TLS 1.2+, trusted CAs when `trust` (ca_file, or
 * the system's when ca_file is NULL; the system bundle costs ~30 ms to parse, and only
 * verification needs it), optional client certificate/key, client session cache in
 * external mode (see tls_session_*). Returns NULL with err set ("tls: cannot load CA
 * file X: ...") on error. */
struct tls_ctx *tls_ctx_new(const char *ca_file, bool trust, const char *cert_file,
                            const char *key_file, char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *c);

/* Result of driving a connection. */
enum tls_rc {
	TLS_OK = 0,          /* progress made or done; check tls_handshake_done / outputs */
	TLS_WANT_IO = 1,     /* needs more ciphertext from the peer (and/or has some to send) */
	TLS_CLOSED = 2,      /* reserved: a close_notify shows as tls_read() -1 with tls_closed() */
	TLS_ERROR = -1,      /* fatal: tls_error() says why */
};

/* One TLS connection: an SSL object with a pair of memory BIOs. */
struct tls_conn;

/* tls_conn_new - start a client connection for host (SNI; verified name under TLS_VERIFY),
 * resuming session (may be NULL; see tls_session_get). An IP literal (bare or "[...]")
 * gets no SNI and is checked against the certificate's IP addresses. NULL on
 * out-of-memory; an unusable host (empty, too long) fails the first tls_handshake. */
struct tls_conn *tls_conn_new(struct tls_ctx *c, const char *host, enum tls_verify v,
                              void *session);
void tls_conn_free(struct tls_conn *t);

/* tls_handshake - advance the handshake. */
enum tls_rc tls_handshake(struct tls_conn *t);
bool tls_handshake_done(const struct tls_conn *t);

/* tls_put_cipher - ciphertext received from the peer; returns octets taken (all, unless
 * the internal buffer is full: then feed the rest later). */
size_t tls_put_cipher(struct tls_conn *t, const void *buf, size_t len);

/* tls_get_cipher - ciphertext to send to the peer, up to cap octets; returns octets. */
size_t tls_get_cipher(struct tls_conn *t, void *buf, size_t cap);

/* tls_pending_cipher - ciphertext waiting to be sent. */
size_t tls_pending_cipher(const struct tls_conn *t);

/* tls_read - decrypted application data, up to cap; returns octets (0: none yet) or -1.
 * Call it until it returns 0: each call yields at most one record. -1 with tls_closed()
 * true is the peer's orderly close_notify (tls_error: "peer closed TLS (close_notify)"). */
long tls_read(struct tls_conn *t, void *buf, size_t cap);

/* tls_write - encrypt application data; returns octets taken (may be fewer than len when
 * the ciphertext buffer is full: send it, then retry) or -1. Takes at most one record
 * (16 KiB) per call, and only when the whole record fits: 0 means "drain, then retry". */
long tls_write(struct tls_conn *t, const void *buf, size_t len);

/* tls_error - why the connection failed, for a result line ("" while healthy): "certificate
 * has expired", "certificate name mismatch (wanted mx.example.org, certificate is for
 * *.example.net)", "unable to get local issuer certificate (unknown CA)", "handshake
 * failure: wrong version number", "connection closed during TLS handshake". */
const char *tls_error(const struct tls_conn *t);

/* tls_describe - "TLSv1.3 TLS_AES_256_GCM_SHA384" after the handshake. */
const char *tls_describe(const struct tls_conn *t, char *buf, size_t len);

/* tls_session_get - a resumable session after the handshake (caller owns a reference,
 * release with tls_session_free), or NULL. Under TLS 1.3 the server's tickets arrive
 * after the handshake: ask after the first tls_read that returned data (the EHLO reply). */
void *tls_session_get(struct tls_conn *t);
void tls_session_free(void *session);

/* tls_release_buffers - drop OpenSSL's record buffers while the connection is idle. */
void tls_release_buffers(struct tls_conn *t);

/* tls_closed - whether the connection ended with the peer's close_notify. */
bool tls_closed(const struct tls_conn *t);

/* tls_resumed - whether the handshake resumed the session given to tls_conn_new. */
bool tls_resumed(const struct tls_conn *t);

#endif
