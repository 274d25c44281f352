/* test_tls.c - unit tests for tls.c: a real OpenSSL server in-process, bytes shuttled by hand, no sockets. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <malloc.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAS_ASAN 1
#endif
#endif
#ifndef HAS_ASAN
#define HAS_ASAN 0
#endif
#if defined(__SANITIZE_ADDRESS__) || HAS_ASAN
size_t __sanitizer_get_current_allocated_bytes(void); /* libasan; gcc 12 ships no header for it */
#endif

#define PUMP_MAX     1000u          /* shuttle rounds before a test gives up */
#define PAYLOAD      (100u * 1024u) /* octets in the round-trip payloads */
#define FUZZ_ROUNDS  400u           /* garbage inputs tried per fuzz test */
#define PATH_MAX_T   256u           /* octets in a temporary file path */
#define DAY          (24L * 3600L)  /* seconds in a day, for validity periods */
#define IDLE_CONNS   50u            /* idle connections measured together */
#define IDLE_BYTES_MAX (40u * 1024u) /* heap per idle connection (measured ~26 KB; budget 64 KiB) */

/* Throwaway keys and certificates, made fresh for every test. */
static struct {
	char dir[PATH_MAX_T / 2];           /* mkdtemp directory */
	char ca_file[PATH_MAX_T];           /* PEM of the trusted CA */
	char cli_cert[PATH_MAX_T];          /* client certificate, signed by the CA */
	char cli_key[PATH_MAX_T];           /* its key */
	char bad_key[PATH_MAX_T];           /* a key that matches no certificate */
	EVP_PKEY *ca_key, *ca2_key, *srv_key, *cli_key_p, *bad_key_p;
	X509 *ca;                           /* trusted CA */
	X509 *ca2;                          /* a CA the client does not know */
	X509 *good;                         /* mx.test, 192.0.2.1, 2001:db8::1, by the CA */
	X509 *expired;                      /* mx.test, by the CA, expired yesterday */
	X509 *wrong;                        /* other.test, by the CA */
	X509 *self;                         /* mx.test, self-signed */
	X509 *unknown;                      /* mx.test, by the unknown CA */
	X509 *client;                       /* client.test, by the CA */
} g;

/* One client (our tls_conn) wired to one in-process OpenSSL server. */
struct pair {
	struct tls_conn *c;                 /* the client under test */
	SSL *s;                             /* the server */
	BIO *s_in, *s_out;                  /* the server's memory BIOs */
	bool s_done, s_failed;              /* server handshake state */
	unsigned short_puts;                /* times tls_put_cipher took less than offered */
};

/* clean - assert that the thread's OpenSSL error queue is empty. */
static void clean(const char *after)
{
	unsigned long e = ERR_peek_error();
	char buf[256] = "";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof buf);
	cr_assert_eq(e, 0ul, "error queue not empty after %s: %s", after, buf);
}

/* add_ext - add one X509v3 extension given in openssl.cnf syntax. */
static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v;
	X509_EXTENSION *e;

	X509V3_set_ctx(&v, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v, nid, value);
	cr_assert_not_null(e, "extension %s", value);
	cr_assert_eq(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* make_cert - a certificate for cn (san: NULL for none) valid from..to days from now. */
static X509 *make_cert(const char *cn, const char *san, EVP_PKEY *key, X509 *issuer,
                       EVP_PKEY *issuer_key, bool ca, long from, long to)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *name = X509_get_subject_name(x);

	cr_assert_not_null(x);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from * DAY);
	X509_gmtime_adj(X509_getm_notAfter(x), to * DAY);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name);
	add_ext(x, issuer != NULL ? issuer : x, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (ca)
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	if (san != NULL)
		add_ext(x, issuer != NULL ? issuer : x, NID_subject_alt_name, san);
	cr_assert_gt(X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()), 0);
	return x;
}

/* write_pem - write a certificate or a key as PEM to dir/name, remembering the path in out. */
static void write_pem(char *out, const char *name, X509 *x, EVP_PKEY *k)
{
	FILE *f;

	snprintf(out, PATH_MAX_T, "%s/%s", g.dir, name);
	f = fopen(out, "w");
	cr_assert_not_null(f, "cannot create %s", out);
	if (x != NULL)
		cr_assert_eq(PEM_write_X509(f, x), 1);
	else
		cr_assert_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	cr_assert_eq(fclose(f), 0);
}

/* setup - make the keys, the certificates and the temporary files. */
static void setup(void)
{
	g.ca_key = EVP_EC_gen("P-256");
	g.ca2_key = EVP_EC_gen("P-256");
	g.srv_key = EVP_EC_gen("P-256");
	g.cli_key_p = EVP_EC_gen("P-256");
	g.bad_key_p = EVP_EC_gen("P-256");
	cr_assert(g.ca_key && g.ca2_key && g.srv_key && g.cli_key_p && g.bad_key_p);
	g.ca = make_cert("Volley Test CA", NULL, g.ca_key, NULL, NULL, true, -1, 30);
	g.ca2 = make_cert("Unknown Test CA", NULL, g.ca2_key, NULL, NULL, true, -1, 30);
	g.good = make_cert("mx.test", "DNS:mx.test,IP:192.0.2.1,IP:2001:db8::1", g.srv_key, g.ca, g.ca_key, false, -1, 30);
	g.expired = make_cert("mx.test", "DNS:mx.test", g.srv_key, g.ca, g.ca_key, false, -3, -1);
	g.wrong = make_cert("Other Server", "DNS:other.test", g.srv_key, g.ca, g.ca_key, false, -1, 30);
	g.self = make_cert("mx.test", "DNS:mx.test", g.srv_key, NULL, NULL, false, -1, 30);
	g.unknown = make_cert("mx.test", "DNS:mx.test", g.srv_key, g.ca2, g.ca2_key, false, -1, 30);
	g.client = make_cert("client.test", "DNS:client.test", g.cli_key_p, g.ca, g.ca_key, false, -1, 30);
	snprintf(g.dir, sizeof g.dir, "/tmp/volley-tls-XXXXXX");
	cr_assert_not_null(mkdtemp(g.dir));
	write_pem(g.ca_file, "ca.pem", g.ca, NULL);
	write_pem(g.cli_cert, "client.pem", g.client, NULL);
	write_pem(g.cli_key, "client.key", NULL, g.cli_key_p);
	write_pem(g.bad_key, "bad.key", NULL, g.bad_key_p);
}

/* teardown - remove the temporary files and free everything setup made. */
static void teardown(void)
{
	unlink(g.ca_file);
	unlink(g.cli_cert);
	unlink(g.cli_key);
	unlink(g.bad_key);
	rmdir(g.dir);
	X509 *certs[] = { g.ca, g.ca2, g.good, g.expired, g.wrong, g.self, g.unknown, g.client };
	for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++)
		X509_free(certs[i]);
	EVP_PKEY *keys[] = { g.ca_key, g.ca2_key, g.srv_key, g.cli_key_p, g.bad_key_p };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		EVP_PKEY_free(keys[i]);
}

TestSuite(tls, .init = setup, .fini = teardown);

/* server_ctx - an OpenSSL server presenting cert (max_version 0: no ceiling). */
static SSL_CTX *server_ctx(X509 *cert, int max_version)
{
	SSL_CTX *s = SSL_CTX_new(TLS_server_method());

	cr_assert_not_null(s);
	cr_assert_eq(SSL_CTX_use_certificate(s, cert), 1);
	cr_assert_eq(SSL_CTX_use_PrivateKey(s, g.srv_key), 1);
	if (max_version != 0)
		cr_assert_eq(SSL_CTX_set_max_proto_version(s, max_version), 1);
	return s;
}

/* client_ctx - our client context trusting the test CA. */
static struct tls_ctx *client_ctx(void)
{
	char err[256] = "";
	struct tls_ctx *c = tls_ctx_new(g.ca_file, true, NULL, NULL, err, sizeof err);

	cr_assert_not_null(c, "tls_ctx_new: %s", err);
	clean("tls_ctx_new");
	return c;
}

/* pair_new - a fresh client for host and a server SSL from sctx. */
static void pair_new(struct pair *p, SSL_CTX *sctx, struct tls_ctx *cctx, const char *host,
                     enum tls_verify v, void *session)
{
	memset(p, 0, sizeof *p);
	p->c = tls_conn_new(cctx, host, v, session);
	cr_assert_not_null(p->c);
	clean("tls_conn_new");
	p->s = SSL_new(sctx);
	p->s_in = BIO_new(BIO_s_mem());
	p->s_out = BIO_new(BIO_s_mem());
	cr_assert(p->s && p->s_in && p->s_out);
	SSL_set_bio(p->s, p->s_in, p->s_out);
	SSL_set_accept_state(p->s);
}

/* pair_free - free both ends. */
static void pair_free(struct pair *p)
{
	tls_conn_free(p->c);
	SSL_free(p->s);
	ERR_clear_error();
}

/* move - shuttle ciphertext both ways once; returns octets moved. */
static size_t move(struct pair *p)
{
	unsigned char buf[TLS_CIPHER_BUF];
	size_t n, total = 0;
	char *data = NULL;
	long avail;

	while ((n = tls_get_cipher(p->c, buf, sizeof buf)) > 0) {
		cr_assert_eq(BIO_write(p->s_in, buf, (int)n), (int)n);
		total += n;
	}
	cr_assert_eq(tls_pending_cipher(p->c), 0u);
	avail = BIO_get_mem_data(p->s_out, &data);
	if (avail > 0) {
		n = tls_put_cipher(p->c, data, (size_t)avail);
		cr_assert_leq(n, TLS_CIPHER_BUF);
		if (n < (size_t)avail)
			p->short_puts++;
		if (n > 0)
			cr_assert_eq(BIO_read(p->s_out, buf, (int)n), (int)n);
		total += n;
	}
	return total;
}

/* server_step - advance the server's handshake, if it is still running. */
static void server_step(struct pair *p)
{
	int r;

	if (p->s_done || p->s_failed)
		return;
	r = SSL_do_handshake(p->s);
	if (r == 1)
		p->s_done = true;
	else if (SSL_get_error(p->s, r) != SSL_ERROR_WANT_READ)
		p->s_failed = true;
	ERR_clear_error(); /* the server's errors are not the client's */
}

/* handshake - run both handshakes to the end; returns the client's last result. */
static enum tls_rc handshake(struct pair *p)
{
	enum tls_rc rc = TLS_WANT_IO;

	for (unsigned i = 0; i < PUMP_MAX; i++) {
		rc = tls_handshake(p->c);
		clean("tls_handshake");
		server_step(p);
		size_t moved = move(p);
		if (rc == TLS_ERROR && moved == 0)
			return rc;
		if (rc == TLS_OK && moved == 0 && (p->s_done || p->s_failed))
			return rc;
	}
	cr_assert_fail("handshake did not finish in %u rounds", PUMP_MAX);
	return TLS_ERROR;
}

/* connect_ok - make a pair and assert that its handshake succeeds. */
static void connect_ok(struct pair *p, SSL_CTX *sctx, struct tls_ctx *cctx, const char *host,
                       enum tls_verify v, void *session)
{
	pair_new(p, sctx, cctx, host, v, session);
	cr_assert_eq(handshake(p), TLS_OK, "handshake failed: %s", tls_error(p->c));
	cr_assert(tls_handshake_done(p->c));
	cr_assert(p->s_done, "server handshake did not finish");
	cr_assert_str_eq(tls_error(p->c), "");
}

/* connect_fail - make a pair whose handshake must fail; returns the reason. */
static const char *connect_fail(struct pair *p, SSL_CTX *sctx, struct tls_ctx *cctx,
                                const char *host, enum tls_verify v)
{
	pair_new(p, sctx, cctx, host, v, NULL);
	cr_assert_eq(handshake(p), TLS_ERROR, "handshake succeeded against a bad certificate");
	cr_assert_not(tls_handshake_done(p->c));
	cr_assert_eq(tls_handshake(p->c), TLS_ERROR, "a failed connection must stay failed");
	cr_assert_eq(tls_read(p->c, (char[8]){ 0 }, 8), -1);
	cr_assert_eq(tls_write(p->c, "x", 1), -1);
	clean("failed handshake");
	return tls_error(p->c);
}

/* client_read_all - tls_read until want octets arrived into buf; server output shuttled as needed. */
static void client_read_all(struct pair *p, unsigned char *buf, size_t want)
{
	size_t got = 0;

	for (unsigned i = 0; i < PUMP_MAX && got < want; i++) {
		long n;
		move(p);
		while ((n = tls_read(p->c, buf + got, want - got)) > 0)
			got += (size_t)n;
		cr_assert_eq(n, 0, "tls_read: %s", tls_error(p->c));
		clean("tls_read");
	}
	cr_assert_eq(got, want, "got %zu of %zu octets", got, want);
}

/* server_send - the server writes len octets (its memory BIO never fills). */
static void server_send(struct pair *p, const void *buf, size_t len)
{
	size_t n = 0;

	cr_assert_eq(SSL_write_ex(p->s, buf, len, &n), 1);
	cr_assert_eq(n, len);
}

/* server_recv_all - read everything the server can decrypt now into buf at *got. */
static void server_recv_all(struct pair *p, unsigned char *buf, size_t cap, size_t *got)
{
	size_t n = 0;

	while (*got < cap && SSL_read_ex(p->s, buf + *got, cap - *got, &n) == 1)
		*got += n;
	ERR_clear_error();
}

/* fill_pattern - a payload that catches reordered or dropped octets. */
static void fill_pattern(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)((i * 131u + seed + (i >> 8)) & 0xffu);
}

Test(tls, ctx_default_paths_and_bad_files)
{
	char err[256] = "x";
	struct tls_ctx *c = tls_ctx_new(NULL, true, NULL, NULL, err, sizeof err);

	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(err, "");
	tls_ctx_free(c);
	cr_assert_null(tls_ctx_new("/nonexistent/ca.pem", true, NULL, NULL, err, sizeof err));
	cr_assert(strncmp(err, "tls: cannot load CA file /nonexistent/ca.pem: ", 46) == 0, "%s", err);
	cr_assert_null(tls_ctx_new(g.ca_file, true, "/nonexistent/c.pem", NULL, err, sizeof err));
	cr_assert(strstr(err, "cannot load certificate file /nonexistent/c.pem") != NULL, "%s", err);
	cr_assert_null(tls_ctx_new(g.ca_file, true, g.cli_cert, g.bad_key, err, sizeof err));
	cr_assert(strstr(err, "mismatch") != NULL, "%s", err);
	cr_assert_null(tls_ctx_new(g.ca_file, true, NULL, g.cli_key, err, sizeof err));
	cr_assert(strstr(err, "without a certificate") != NULL, "%s", err);
	clean("tls_ctx_new failures");
}

Test(tls, noverify_accepts_self_signed)
{
	SSL_CTX *s = server_ctx(g.self, 0);
	struct tls_ctx *c = client_ctx();
	struct pair p;
	char d[128];

	connect_ok(&p, s, c, "mx.test", TLS_NOVERIFY, NULL);
	cr_assert_str_eq(SSL_get_servername(p.s, TLSEXT_NAMETYPE_host_name), "mx.test");
	tls_describe(p.c, d, sizeof d);
	cr_assert(strncmp(d, "TLSv1.3 TLS_", 12) == 0, "describe: '%s'", d);
	cr_assert_not(tls_resumed(p.c));
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, verify_accepts_good_chain_and_name)
{
	SSL_CTX *s = server_ctx(g.good, 0);
	struct tls_ctx *c = client_ctx();
	struct pair p;

	connect_ok(&p, s, c, "mx.test", TLS_VERIFY, NULL);
	cr_assert_eq(SSL_get_verify_result(p.s), X509_V_OK);
	pair_free(&p);
	connect_ok(&p, s, c, "MX.Test.", TLS_VERIFY, NULL); /* case and trailing dot */
	cr_assert_str_eq(SSL_get_servername(p.s, TLSEXT_NAMETYPE_host_name), "MX.Test");
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, verify_ip_literal_no_sni)
{
	SSL_CTX *s = server_ctx(g.good, 0);
	struct tls_ctx *c = client_ctx();
	struct pair p;
	const char *why;

	connect_ok(&p, s, c, "192.0.2.1", TLS_VERIFY, NULL);
	cr_assert_null(SSL_get_servername(p.s, TLSEXT_NAMETYPE_host_name), "SNI sent for an IP");
	pair_free(&p);
	connect_ok(&p, s, c, "[192.0.2.1]", TLS_VERIFY, NULL); /* RFC 5321 address literal */
	cr_assert_null(SSL_get_servername(p.s, TLSEXT_NAMETYPE_host_name), "SNI sent for an IP");
	pair_free(&p);
	connect_ok(&p, s, c, "[IPv6:2001:DB8::1]", TLS_VERIFY, NULL);
	cr_assert_null(SSL_get_servername(p.s, TLSEXT_NAMETYPE_host_name), "SNI sent for an IP");
	pair_free(&p);
	why = connect_fail(&p, s, c, "192.0.2.2", TLS_VERIFY);
	cr_assert(strstr(why, "name mismatch (wanted 192.0.2.2") != NULL, "reason: %s", why);
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, verify_rejects_expired)
{
	SSL_CTX *s = server_ctx(g.expired, 0);
	struct tls_ctx *c = client_ctx();
	struct pair p;

	cr_assert_str_eq(connect_fail(&p, s, c, "mx.test", TLS_VERIFY), "certificate has expired");
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, verify_rejects_wrong_name)
{
	SSL_CTX *s = server_ctx(g.wrong, 0);
	struct tls_ctx *c = client_ctx();
	struct pair p;

	cr_assert_str_eq(connect_fail(&p, s, c, "mx.test", TLS_VERIFY),
	                 "certificate name mismatch (wanted mx.test, certificate is for other.test)");
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, verify_rejects_unknown_ca)
{
	SSL_CTX *s = server_ctx(g.unknown, 0);
	struct tls_ctx *c = client_ctx();
	struct pair p;

	cr_assert_str_eq(connect_fail(&p, s, c, "mx.test", TLS_VERIFY),
	                 "unable to get local issuer certificate (unknown CA)");
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, verify_rejects_self_signed)
{
	SSL_CTX *s = server_ctx(g.self, 0);
	struct tls_ctx *c = client_ctx();
	struct pair p;
	char want[128];

	snprintf(want, sizeof want, "%s (not trusted)",
	         X509_verify_cert_error_string(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT));
	cr_assert_str_eq(connect_fail(&p, s, c, "mx.test", TLS_VERIFY), want);
	cr_assert(strstr(want, "self") != NULL);
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, client_certificate_presented)
{
	SSL_CTX *s = server_ctx(g.good, 0);
	char err[256] = "";
	struct tls_ctx *c = tls_ctx_new(g.ca_file, true, g.cli_cert, g.cli_key, err, sizeof err);
	struct pair p;
	unsigned char buf[4];

	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(X509_STORE_add_cert(SSL_CTX_get_cert_store(s), g.ca), 1);
	SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	connect_ok(&p, s, c, "mx.test", TLS_VERIFY, NULL);
	server_send(&p, "ok\r\n", 4);
	client_read_all(&p, buf, 4);
	X509 *peer = SSL_get0_peer_certificate(p.s);
	cr_assert_not_null(peer, "server saw no client certificate");
	cr_assert_eq(X509_cmp(peer, g.client), 0);
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, client_to_server_100k_with_full_buffer)
{
	SSL_CTX *s = server_ctx(g.good, 0);
	struct tls_ctx *c = client_ctx();
	static unsigned char out[PAYLOAD], in[PAYLOAD];
	size_t off = 0, got = 0;
	unsigned full = 0, partial = 0;
	struct pair p;

	fill_pattern(out, sizeof out, 7);
	connect_ok(&p, s, c, "mx.test", TLS_VERIFY, NULL);
	for (unsigned i = 0; i < PUMP_MAX && off < sizeof out; i++) {
		long n = tls_write(p.c, out + off, sizeof out - off);
		clean("tls_write");
		cr_assert_geq(n, 0, "tls_write: %s", tls_error(p.c));
		if ((size_t)n < sizeof out - off)
			partial++;
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		full++; /* the ciphertext buffer is full: send it, then retry */
		cr_assert_gt(tls_pending_cipher(p.c), 0u);
		move(&p);
		server_recv_all(&p, in, sizeof in, &got);
	}
	move(&p);
	server_recv_all(&p, in, sizeof in, &got);
	cr_assert_eq(off, sizeof out);
	cr_assert_eq(got, sizeof in, "server got %zu octets", got);
	cr_assert(memcmp(in, out, sizeof in) == 0, "payload corrupted");
	cr_assert_gt(full, 0u, "the ciphertext buffer never filled");
	cr_assert_gt(partial, 0u, "no partial write");
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, server_to_client_100k_with_full_input)
{
	SSL_CTX *s = server_ctx(g.good, 0);
	struct tls_ctx *c = client_ctx();
	static unsigned char out[PAYLOAD], in[PAYLOAD];
	struct pair p;

	fill_pattern(out, sizeof out, 11);
	connect_ok(&p, s, c, "mx.test", TLS_VERIFY, NULL);
	for (size_t off = 0; off < sizeof out; off += 1000)
		server_send(&p, out + off, sizeof out - off < 1000 ? sizeof out - off : 1000);
	client_read_all(&p, in, sizeof in);
	cr_assert(memcmp(in, out, sizeof in) == 0, "payload corrupted");
	cr_assert_gt(p.short_puts, 0u, "tls_put_cipher never refused input");
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, release_buffers_between_exchanges)
{
	SSL_CTX *s = server_ctx(g.good, 0);
	struct tls_ctx *c = client_ctx();
	struct pair p;
	unsigned char buf[16];
	size_t got = 0;

	connect_ok(&p, s, c, "mx.test", TLS_VERIFY, NULL);
	for (int round = 0; round < 3; round++) {
		tls_release_buffers(p.c);
		clean("tls_release_buffers");
		server_send(&p, "250 ok\r\n", 8);
		client_read_all(&p, buf, 8);
		cr_assert(memcmp(buf, "250 ok\r\n", 8) == 0);
		tls_release_buffers(p.c);
		cr_assert_eq(tls_write(p.c, "QUIT\r\n", 6), 6);
		move(&p);
		got = 0;
		server_recv_all(&p, buf, 6, &got);
		cr_assert_eq(got, 6u);
		cr_assert(memcmp(buf, "QUIT\r\n", 6) == 0);
	}
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, write_after_full_buffer_needs_no_retry)
{
	SSL_CTX *s = server_ctx(g.good, 0);
	struct tls_ctx *c = client_ctx();
	static unsigned char big[PAYLOAD], in[PAYLOAD];
	struct pair p;
	size_t got = 0, sent = 0;
	long n;

	fill_pattern(big, sizeof big, 3);
	connect_ok(&p, s, c, "mx.test", TLS_VERIFY, NULL);
	n = tls_write(p.c, big, sizeof big);
	cr_assert_gt(n, 0);
	cr_assert_leq(n, 16384, "more than one record taken: %ld", n);
	cr_assert_leq(tls_pending_cipher(p.c), TLS_CIPHER_BUF);
	sent = (size_t)n;
	cr_assert_eq(tls_write(p.c, big + sent, sizeof big - sent), 0, "buffer should be full");
	move(&p);
	/* 0 leaves no half-written record behind: different, shorter data is fine */
	cr_assert_eq(tls_write(p.c, "NOOP\r\n", 6), 6, "%s", tls_error(p.c));
	clean("tls_write after a full buffer");
	move(&p);
	server_recv_all(&p, in, sizeof in, &got);
	cr_assert_eq(got, sent + 6);
	cr_assert(memcmp(in, big, sent) == 0 && memcmp(in + sent, "NOOP\r\n", 6) == 0);
	cr_assert_eq(tls_write(p.c, big, 0), 0);
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

/* heap_bytes - bytes allocated on the heap now (ASan's count under ASan, glibc's otherwise). */
static size_t heap_bytes(void)
{
#if defined(__SANITIZE_ADDRESS__) || HAS_ASAN
	return __sanitizer_get_current_allocated_bytes();
#else
	return mallinfo2().uordblks;
#endif
}

Test(tls, idle_connection_memory)
{
	SSL_CTX *s = server_ctx(g.good, 0);
	struct tls_ctx *c = client_ctx();
	static struct tls_conn *idle[IDLE_CONNS];
	unsigned char buf[8];
	struct pair p;
	size_t base = 0, per;

	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF); /* count the client only */
	for (int i = -1; i < (int)IDLE_CONNS; i++) { /* i = -1 warms caches up */
		connect_ok(&p, s, c, "mx.test", TLS_VERIFY, NULL);
		server_send(&p, "250 ok\r\n", 8);
		client_read_all(&p, buf, 8);
		cr_assert_eq(tls_write(p.c, "QUIT\r\n", 6), 6);
		move(&p);
		SSL_free(p.s);
		tls_release_buffers(p.c);
		if (i < 0) {
			tls_conn_free(p.c);
			base = heap_bytes();
		} else {
			idle[i] = p.c;
		}
	}
	per = (heap_bytes() - base) / IDLE_CONNS;
	cr_log_info("idle TLS connection: %zu heap bytes", per);
	cr_assert_gt(per, 1024u, "measurement broken: %zu", per);
	cr_assert_lt(per, IDLE_BYTES_MAX, "idle connection costs %zu bytes", per);
	for (size_t i = 0; i < IDLE_CONNS; i++)
		tls_conn_free(idle[i]);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, describe_format)
{
	SSL_CTX *s13 = server_ctx(g.good, 0), *s12 = server_ctx(g.good, TLS1_2_VERSION);
	struct tls_ctx *c = client_ctx();
	struct pair p;
	char d[128] = "junk";

	pair_new(&p, s13, c, "mx.test", TLS_VERIFY, NULL);
	cr_assert_str_eq(tls_describe(p.c, d, sizeof d), "", "describe before the handshake");
	pair_free(&p);
	connect_ok(&p, s13, c, "mx.test", TLS_VERIFY, NULL);
	tls_describe(p.c, d, sizeof d);
	cr_assert(strncmp(d, "TLSv1.3 TLS_AES_", 16) == 0 || strncmp(d, "TLSv1.3 TLS_CHACHA", 18) == 0,
	          "describe: '%s'", d);
	cr_assert_eq(strchr(d + 8, ' '), NULL, "one space only: '%s'", d);
	cr_assert_eq(tls_describe(p.c, d, 4), d);
	cr_assert_str_eq(d, "TLS", "truncated describe");
	pair_free(&p);
	connect_ok(&p, s12, c, "mx.test", TLS_VERIFY, NULL);
	tls_describe(p.c, d, sizeof d);
	cr_assert(strncmp(d, "TLSv1.2 ECDHE-ECDSA-", 20) == 0, "describe: '%s'", d);
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s13);
	SSL_CTX_free(s12);
}

/* resume_check - connect, fetch the session after the first reply, resume it; for one protocol ceiling. */
static void resume_check(int max_version)
{
	SSL_CTX *s = server_ctx(g.good, max_version);
	struct tls_ctx *c = client_ctx();
	struct pair p;
	unsigned char buf[11];
	void *sess;

	connect_ok(&p, s, c, "mx.test", TLS_VERIFY, NULL);
	cr_assert_not(tls_resumed(p.c));
	server_send(&p, "220 ready\r\n", 11); /* TLS 1.3 tickets travel before this */
	client_read_all(&p, buf, 11);
	sess = tls_session_get(p.c);
	cr_assert_not_null(sess, "no resumable session");
	pair_free(&p);
	connect_ok(&p, s, c, "mx.test", TLS_VERIFY, sess);
	cr_assert(tls_resumed(p.c), "session not reused (server %d)", SSL_session_reused(p.s));
	cr_assert(SSL_session_reused(p.s), "server did not resume");
	pair_free(&p);
	connect_ok(&p, s, c, "mx.test", TLS_VERIFY, NULL);
	cr_assert_not(tls_resumed(p.c), "resumed without a session");
	pair_free(&p);
	tls_session_free(sess);
	tls_session_free(NULL);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, session_resumption_tls13)
{
	resume_check(0);
}

Test(tls, session_resumption_tls12)
{
	resume_check(TLS1_2_VERSION);
}

Test(tls, no_session_before_handshake)
{
	struct tls_ctx *c = client_ctx();
	struct tls_conn *t = tls_conn_new(c, "mx.test", TLS_VERIFY, NULL);

	cr_assert_not_null(t);
	cr_assert_null(tls_session_get(t));
	cr_assert_not(tls_resumed(t));
	tls_conn_free(t);
	tls_ctx_free(c);
}

/* hello_then - start a client, take its ClientHello, answer with raw bytes; returns the result. */
static enum tls_rc hello_then(struct tls_ctx *c, struct tls_conn **out, const void *reply, size_t len)
{
	unsigned char hello[TLS_CIPHER_BUF];
	struct tls_conn *t = tls_conn_new(c, "mx.test", TLS_VERIFY, NULL);

	cr_assert_not_null(t);
	cr_assert_eq(tls_handshake(t), TLS_WANT_IO);
	cr_assert_gt(tls_get_cipher(t, hello, sizeof hello), 5u);
	cr_assert_eq(hello[0], 0x16, "not a handshake record");
	cr_assert_eq(tls_put_cipher(t, reply, len), len);
	*out = t;
	enum tls_rc rc = tls_handshake(t);
	clean("tls_handshake on raw input");
	return rc;
}

Test(tls, garbage_instead_of_server_hello)
{
	static const char junk[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
	struct tls_ctx *c = client_ctx();
	struct tls_conn *t;

	cr_assert_eq(hello_then(c, &t, junk, sizeof junk - 1), TLS_ERROR);
	cr_assert(strncmp(tls_error(t), "handshake failure: ", 19) == 0, "reason: %s", tls_error(t));
	cr_assert_gt(strlen(tls_error(t)), 19u, "reason: %s", tls_error(t));
	tls_conn_free(t);
	tls_ctx_free(c);
}

Test(tls, close_notify_instead_of_server_hello)
{
	static const unsigned char alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00 };
	struct tls_ctx *c = client_ctx();
	struct tls_conn *t;

	cr_assert_eq(hello_then(c, &t, alert, sizeof alert), TLS_ERROR);
	cr_assert_str_eq(tls_error(t), "connection closed during TLS handshake");
	tls_conn_free(t);
	tls_ctx_free(c);
}

Test(tls, fatal_alert_instead_of_server_hello)
{
	static const unsigned char alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28 };
	struct tls_ctx *c = client_ctx();
	struct tls_conn *t;

	cr_assert_eq(hello_then(c, &t, alert, sizeof alert), TLS_ERROR);
	cr_assert(strstr(tls_error(t), "handshake failure") != NULL, "reason: %s", tls_error(t));
	cr_assert_str_neq(tls_error(t), "handshake failure: ");
	tls_conn_free(t);
	tls_ctx_free(c);
}

/* lcg - a tiny deterministic random number generator for the fuzz tests. */
static uint32_t lcg(uint32_t *state)
{
	*state = *state * 1664525u + 1013904223u;
	return *state >> 8;
}

Test(tls, random_server_hello_never_crashes)
{
	struct tls_ctx *c = client_ctx();
	static unsigned char junk[4096];
	uint32_t st = 12345;
	unsigned errors = 0;

	for (unsigned i = 0; i < FUZZ_ROUNDS; i++) {
		size_t len = 1 + lcg(&st) % sizeof junk;
		struct tls_conn *t;
		for (size_t k = 0; k < len; k++)
			junk[k] = (unsigned char)lcg(&st);
		if (i % 2 == 0 && len > 9) { /* a plausible handshake record header, then noise */
			junk[0] = 0x16, junk[1] = 0x03, junk[2] = 0x03;
			junk[3] = (unsigned char)((len - 5) >> 8), junk[4] = (unsigned char)(len - 5);
			junk[5] = 0x02; /* ServerHello, its length consistent, version TLS 1.2 */
			junk[6] = 0, junk[7] = (unsigned char)((len - 9) >> 8);
			junk[8] = (unsigned char)(len - 9);
			if (len > 11)
				junk[9] = 0x03, junk[10] = 0x03;
			if (len > 44)
				junk[43] = (unsigned char)(lcg(&st) % 33u); /* session id length */
		}
		enum tls_rc rc = hello_then(c, &t, junk, len);
		cr_assert(rc == TLS_ERROR || rc == TLS_WANT_IO, "round %u: rc %d", i, rc);
		if (rc == TLS_ERROR) {
			errors++;
			cr_assert_gt(strlen(tls_error(t)), 0u);
		}
		tls_conn_free(t);
	}
	cr_assert_gt(errors, FUZZ_ROUNDS / 2, "garbage accepted too often (%u errors)", errors);
	tls_ctx_free(c);
}

Test(tls, garbage_after_handshake_fails_read)
{
	SSL_CTX *s = server_ctx(g.good, 0);
	struct tls_ctx *c = client_ctx();
	static const unsigned char rec[] = { 0x17, 0x03, 0x03, 0x00, 0x20, 1, 2, 3, 4, 5, 6, 7, 8,
	                                     9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
	                                     23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
	struct pair p;
	unsigned char buf[64];

	connect_ok(&p, s, c, "mx.test", TLS_VERIFY, NULL);
	server_send(&p, "220\r\n", 5);
	client_read_all(&p, buf, 5);
	cr_assert_eq(tls_put_cipher(p.c, rec, sizeof rec), sizeof rec);
	cr_assert_eq(tls_read(p.c, buf, sizeof buf), -1);
	clean("tls_read of garbage");
	cr_assert(strncmp(tls_error(p.c), "TLS read failed: ", 17) == 0, "reason: %s", tls_error(p.c));
	cr_assert_not(tls_closed(p.c));
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, close_notify_from_server)
{
	SSL_CTX *s = server_ctx(g.good, 0);
	struct tls_ctx *c = client_ctx();
	struct pair p;
	unsigned char buf[64];
	long n;

	connect_ok(&p, s, c, "mx.test", TLS_VERIFY, NULL);
	server_send(&p, "221 bye\r\n", 9);
	SSL_shutdown(p.s);
	ERR_clear_error();
	move(&p);
	client_read_all(&p, buf, 9);
	cr_assert(memcmp(buf, "221 bye\r\n", 9) == 0);
	n = tls_read(p.c, buf, sizeof buf);
	clean("tls_read at close_notify");
	cr_assert_eq(n, -1);
	cr_assert(tls_closed(p.c));
	cr_assert_str_eq(tls_error(p.c), "peer closed TLS (close_notify)");
	cr_assert_eq(tls_read(p.c, buf, sizeof buf), -1, "closed stays closed");
	pair_free(&p);
	tls_ctx_free(c);
	SSL_CTX_free(s);
}

Test(tls, bounds_and_bad_hosts)
{
	struct tls_ctx *c = client_ctx();
	struct tls_conn *t = tls_conn_new(c, "mx.test", TLS_NOVERIFY, NULL);
	static unsigned char big[3u * TLS_CIPHER_BUF];
	char host[300];

	cr_assert_not_null(t);
	cr_assert_eq(tls_pending_cipher(t), 0u);
	cr_assert_eq(tls_get_cipher(t, big, sizeof big), 0u);
	cr_assert_eq(tls_put_cipher(t, big, sizeof big), TLS_CIPHER_BUF, "input not bounded");
	cr_assert_eq(tls_put_cipher(t, big, 1), 0u, "full input took more");
	tls_release_buffers(t); /* with a full input queue: must keep it */
	cr_assert_eq(tls_put_cipher(t, big, 1), 0u);
	cr_assert_eq(tls_read(t, big, 0), -1, "zeros are not a ServerHello");
	cr_assert_eq(tls_handshake(t), TLS_ERROR);
	tls_conn_free(t);
	memset(host, 'a', sizeof host - 1);
	host[sizeof host - 1] = '\0';
	const char *bad[] = { "", ".", "[]", NULL, host };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		t = tls_conn_new(c, bad[i], TLS_VERIFY, NULL);
		cr_assert_not_null(t);
		cr_assert_eq(tls_handshake(t), TLS_ERROR, "host %zu accepted", i);
		cr_assert_str_eq(tls_error(t), "bad host name for TLS");
		cr_assert_eq(tls_pending_cipher(t), 0u, "ClientHello sent for a bad host");
		tls_conn_free(t);
	}
	clean("bad hosts");
	tls_ctx_free(c);
}
