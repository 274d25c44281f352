/* cli.h - command line: options of `volley send`, help texts. */
#ifndef VOLLEY_CLI_H
#define VOLLEY_CLI_H
#include <stdbool.h>
#include <stdint.h>

/* Options of `volley send`. */
struct send_opts {
	const char *job;              /* job file */
	const char *relay;            /* --relay HOST[:PORT], NULL for MX routing */
	const char *results;          /* --results FILE, NULL for JOB.results.jsonl */
	const char *helo;             /* --helo NAME, NULL for the host name */
	unsigned connections;         /* --connections N */
	unsigned threads;             /* --threads N, 0 for one per CPU */
	unsigned max_msgs;            /* --max-messages-per-connection N */
	unsigned max_rcpts;           /* --max-recipients N */
	bool force;                   /* --force: replace an existing results file */
	bool quiet;                   /* --quiet */
	bool no_pipelining;           /* --no-pipelining */
	const char *dns[8];           /* --dns HOST[:PORT], repeatable */
	unsigned ndns;
	unsigned port;                /* --port N (MX mode) */
	unsigned ip_version;          /* --ip-version 4|6, 0 for any */
	unsigned dest_limit;          /* --max-connections-per-destination N */
	const char *tls;              /* --tls none|opportunistic|required|verify, NULL for the default */
	bool tls_wrapper;             /* --tls-wrapper: implicit TLS */
	const char *ca_file;          /* --ca-file FILE */
	const char *tls_cert;         /* --tls-cert FILE */
	const char *tls_key;          /* --tls-key FILE */
	const char *auth_user;        /* --auth USER */
	const char *auth_pass_file;   /* --auth-password-file FILE */
	bool allow_plaintext_auth;    /* --allow-plaintext-auth */
	int64_t timeout[6];           /* --timeout-connect, -greeting, -command, -data, -block, -dot (ms, 0 = default) */
	double timeout_scale;         /* --timeout-scale X (default 1) */
	int64_t retry_initial;        /* --retry-initial D (ms, default 1m) */
	int64_t max_retry_time;       /* --max-retry-time D (ms, default 30m; 0 = no retries) */
	int64_t batch_window;         /* --batch-window D: longest wait to gather fast replies (ms, default 1) */
	int64_t grace;                /* --grace D: after SIGINT/SIGTERM, time for transactions in flight (ms, default 30s) */
	const char *shaping;          /* --shaping FILE, NULL for the built-in rules only */
	bool resume;                  /* --resume: skip recipients with a final result in the results file */
};

/* cli_send - parse `volley send` arguments (argv[0] is "send").
 * Returns 0 to run, 1 when help was printed, 2 on a usage error (printed). */
int cli_send(int argc, char **argv, struct send_opts *o);

/* cli_usage - print the top-level help to f. */
void cli_usage(void *f);

#endif
