/* cli.c - parsing `volley send` options; every option is listed in the help. */
#include "cli.h"
#include "batch.h"
#include "bounds.h"
#include "duration.h"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char send_help1[] =
"usage: volley send [options] JOB\n"
"\n"
"Deliver the message of JOB to every recipient and write one result line per\n"
"recipient (JSON Lines) to the results file.\n"
"\n"
"options:\n"
"  --relay HOST[:PORT]      send everything through this server (name, IPv4,\n"
"                           or [IPv6]:PORT); default port 25. Without --relay,\n"
"                           each recipient goes to its domain's MX hosts.\n"
"  --dns HOST[:PORT]        DNS server for MX mode (IPv4 or [IPv6]:PORT; may be\n"
"                           repeated; default: the nameservers of /etc/resolv.conf)\n"
"  --port N                 SMTP port of the MX hosts (default 25)\n"
"  --ip-version 4|6|any     address families used for MX hosts (default any:\n"
"                           each host's IPv6 addresses first, then IPv4)\n"
"  --max-connections-per-destination N\n"
"                           concurrent connections to one MX set, over all\n"
"                           threads (default 20)\n"
"  --connections N          concurrent SMTP sessions in total (default 100);\n"
"                           each needs a file descriptor: volley raises its\n"
"                           soft limit up to the hard one (ulimit -Hn), and\n"
"                           refuses to start if that is not enough\n"
"  --threads N              engine threads, one io_uring ring each\n"
"                           (default: one per CPU)\n"
"  --results FILE           results file (default: JOB.results.jsonl)\n"
"  --force                  replace FILE if it is a regular file (default: refuse)\n"
"  --max-messages-per-connection N\n"
"                           transactions per connection before QUIT (default 1000)\n"
"  --max-recipients N       recipients sharing one transaction (default 100,\n"
"                           at most 1000)\n"
"  --helo NAME              name sent with EHLO/HELO (default: this host's name)\n"
"  --tls MODE               none, opportunistic (STARTTLS when offered, any\n"
"                           certificate, plaintext if the handshake fails),\n"
"                           required (TLS, any certificate) or verify (TLS, the\n"
"                           certificate must be valid for the host). Default:\n"
"                           verify for --relay with --auth, else opportunistic\n"
"  --tls-wrapper            implicit TLS from the first byte (RFC 8314); the\n"
"                           default for --relay HOST:465\n"
"  --ca-file FILE           trusted CAs (default: the system store)\n"
"  --tls-cert FILE, --tls-key FILE\n"
"                           client certificate and key\n"
"  --auth USER              authenticate to the relay (AUTH PLAIN or LOGIN); the\n"
"                           password comes from --auth-password-file or the\n"
"                           environment variable VOLLEY_AUTH_PASSWORD, never argv\n"
"  --auth-password-file FILE  file whose first line is the password\n"
"  --allow-plaintext-auth   allow AUTH on a connection without TLS\n"
"  --no-pipelining          never pipeline commands, even when offered\n";

static const char send_help2[] =
"  --timeout-connect D      deadlines of each step (RFC 5321 4.5.3.2 defaults):\n"
"  --timeout-greeting D     connect 30s, greeting 5m, EHLO/MAIL/RCPT and other\n"
"  --timeout-command D      commands 5m, DATA 2m, each block of data 3m, the\n"
"  --timeout-data D         final dot 10m. D is a number with a unit: 500ms,\n"
"  --timeout-block D        40s, 5m, 1h\n"
"  --timeout-dot D\n"
"  --timeout-scale X        multiply every deadline by X (e.g. 0.01 in tests)\n"
"  --retry-initial D        first retry of a deferred recipient after D (default\n"
"                           1m); each further retry waits twice as long, +-25%\n"
"  --max-retry-time D       keep retrying for D after a recipient's first attempt\n"
"                           (default 30m); then its result is deferred with the\n"
"                           last reply. 0 disables retries\n"
"  --shaping FILE           per-destination and per-provider limits (see\n"
"                           docs/shaping.md); the built-in provider rules apply\n"
"                           unless FILE overrides them\n"
"  --resume                 append to the existing results file and send only to\n"
"                           recipients without a final result (delivered,\n"
"                           bounced or failed) in it\n"
"  --grace D                after SIGINT, SIGTERM or SIGHUP, let transactions\n"
"                           in flight finish for up to D (default 30s); a\n"
"                           second SIGINT exits at once\n"
"  --batch-window D         when replies arrive fast, a thread may let them\n"
"                           gather for up to D (default 1ms, at most 100ms) and\n"
"                           handle them together; 0 handles each at once\n"
"  --quiet                  no progress line and no summary\n"
"  -h, --help               this help\n"
"\n"
"exit status: 0 the run completed (whatever each recipient's outcome),\n"
"2 usage or job error, 1 the run could not complete.\n";

/* send_help - print the help of `volley send` (two literals: C17 bounds one at 4095 octets). */
static void send_help(FILE *f)
{
	fputs(send_help1, f);
	fputs(send_help2, f);
}

/* cli_usage - top-level help. */
void cli_usage(void *f)
{
	fprintf(f,
	        "usage: volley COMMAND [options]\n"
	        "\n"
	        "commands:\n"
	        "  send [options] JOB   deliver a job (see `volley send --help`)\n"
	        "\n"
	        "options:\n"
	        "  -h, --help           this help\n"
	        "  --version            print the version\n"
	        "\n");
	send_help(f);
}

/* num - parse an unsigned option value within [lo, hi]. */
static int num(const char *name, const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (!*v || *end || errno || x < lo || x > hi || v[0] == '-') {
		fprintf(stderr, "volley send: %s: expected a number from %u to %u, got '%s'\n",
		        name, lo, hi, v);
		return -1;
	}
	*out = (unsigned)x;
	return 0;
}

enum { O_RELAY = 256, O_CONN, O_THREADS, O_RESULTS, O_FORCE, O_MAXMSG, O_MAXRCPT, O_HELO,
       O_QUIET, O_NOPIPE, O_DNS, O_PORT, O_IPV, O_DESTLIM, O_TLS, O_WRAP, O_CA, O_CERT,
       O_KEY, O_AUTH, O_PASSFILE, O_PLAINAUTH, O_TO_CONNECT, O_TO_GREETING, O_TO_COMMAND,
       O_TO_DATA, O_TO_BLOCK, O_TO_DOT, O_TO_SCALE, O_RETRY_INIT, O_RETRY_MAX, O_GRACE, O_BATCH,
       O_SHAPING, O_RESUME };

static const struct option send_long[] = {
	{"relay", required_argument, 0, O_RELAY},
	{"connections", required_argument, 0, O_CONN},
	{"threads", required_argument, 0, O_THREADS},
	{"results", required_argument, 0, O_RESULTS},
	{"force", no_argument, 0, O_FORCE},
	{"max-messages-per-connection", required_argument, 0, O_MAXMSG},
	{"max-recipients", required_argument, 0, O_MAXRCPT},
	{"helo", required_argument, 0, O_HELO},
	{"quiet", no_argument, 0, O_QUIET},
	{"no-pipelining", no_argument, 0, O_NOPIPE},
	{"dns", required_argument, 0, O_DNS},
	{"port", required_argument, 0, O_PORT},
	{"ip-version", required_argument, 0, O_IPV},
	{"max-connections-per-destination", required_argument, 0, O_DESTLIM},
	{"tls", required_argument, 0, O_TLS},
	{"tls-wrapper", no_argument, 0, O_WRAP},
	{"ca-file", required_argument, 0, O_CA},
	{"tls-cert", required_argument, 0, O_CERT},
	{"tls-key", required_argument, 0, O_KEY},
	{"auth", required_argument, 0, O_AUTH},
	{"auth-password-file", required_argument, 0, O_PASSFILE},
	{"allow-plaintext-auth", no_argument, 0, O_PLAINAUTH},
	{"timeout-connect", required_argument, 0, O_TO_CONNECT},
	{"timeout-greeting", required_argument, 0, O_TO_GREETING},
	{"timeout-command", required_argument, 0, O_TO_COMMAND},
	{"timeout-data", required_argument, 0, O_TO_DATA},
	{"timeout-block", required_argument, 0, O_TO_BLOCK},
	{"timeout-dot", required_argument, 0, O_TO_DOT},
	{"timeout-scale", required_argument, 0, O_TO_SCALE},
	{"retry-initial", required_argument, 0, O_RETRY_INIT},
	{"max-retry-time", required_argument, 0, O_RETRY_MAX},
	{"grace", required_argument, 0, O_GRACE},
	{"batch-window", required_argument, 0, O_BATCH},
	{"shaping", required_argument, 0, O_SHAPING},
	{"resume", no_argument, 0, O_RESUME},
	{"help", no_argument, 0, 'h'},
	{0, 0, 0, 0},
};

static const char *const timeout_names[] = { "--timeout-connect", "--timeout-greeting",
	"--timeout-command", "--timeout-data", "--timeout-block", "--timeout-dot" };

/* dur - parse a duration option (a number with a unit); min_ms is the least accepted. */
static int dur(const char *name, const char *v, int64_t min_ms, int64_t *out)
{
	int64_t ms = min_ms == 0 ? duration_ms_or_zero(v) : duration_ms(v);
	if (ms < min_ms) {
		fprintf(stderr, "volley send: %s: expected a duration such as 500ms, 40s, 5m or 1h%s, "
		        "got '%s'\n", name, min_ms > 0 ? " (above 0)" : "", v);
		return -1;
	}
	*out = ms;
	return 0;
}

/* apply - store one parsed option; -1 on a bad value. */
static int apply(int c, const char *v, struct send_opts *o)
{
	switch (c) {
	case O_RELAY: o->relay = v; return 0;
	case O_CONN: return num("--connections", v, 1, ENGINE_MAX_SESSIONS, &o->connections);
	case O_THREADS: return num("--threads", v, 1, ENGINE_MAX_THREADS, &o->threads);
	case O_RESULTS: o->results = v; return 0;
	case O_FORCE: o->force = true; return 0;
	case O_MAXMSG: return num("--max-messages-per-connection", v, 1, 1000000000u, &o->max_msgs);
	case O_MAXRCPT: return num("--max-recipients", v, 1, SMTP_MAX_RCPTS, &o->max_rcpts);
	case O_HELO: o->helo = v; return 0;
	case O_QUIET: o->quiet = true; return 0;
	case O_NOPIPE: o->no_pipelining = true; return 0;
	case O_DNS:
		if (o->ndns == sizeof o->dns / sizeof o->dns[0]) {
			fprintf(stderr, "volley send: --dns: at most %zu servers\n",
			        sizeof o->dns / sizeof o->dns[0]);
			return -1;
		}
		o->dns[o->ndns++] = v;
		return 0;
	case O_PORT: return num("--port", v, 1, 65535, &o->port);
	case O_IPV:
		if (!strcmp(v, "any")) {
			o->ip_version = 0;
			return 0;
		}
		if (!strcmp(v, "4") || !strcmp(v, "6")) {
			o->ip_version = (unsigned)(v[0] - '0');
			return 0;
		}
		fprintf(stderr, "volley send: --ip-version: expected 4, 6 or any, got '%s'\n", v);
		return -1;
	case O_DESTLIM: return num("--max-connections-per-destination", v, 1, ENGINE_MAX_SESSIONS,
	                           &o->dest_limit);
	case O_TLS:
		if (strcmp(v, "none") && strcmp(v, "opportunistic") && strcmp(v, "required") &&
		    strcmp(v, "verify")) {
			fprintf(stderr, "volley send: --tls: expected none, opportunistic, required or "
			        "verify, got '%s'\n", v);
			return -1;
		}
		o->tls = v;
		return 0;
	case O_WRAP: o->tls_wrapper = true; return 0;
	case O_CA: o->ca_file = v; return 0;
	case O_CERT: o->tls_cert = v; return 0;
	case O_KEY: o->tls_key = v; return 0;
	case O_AUTH: o->auth_user = v; return 0;
	case O_PASSFILE: o->auth_pass_file = v; return 0;
	case O_PLAINAUTH: o->allow_plaintext_auth = true; return 0;
	case O_TO_CONNECT: case O_TO_GREETING: case O_TO_COMMAND: case O_TO_DATA:
	case O_TO_BLOCK: case O_TO_DOT:
		return dur(timeout_names[c - O_TO_CONNECT], v, 1, &o->timeout[c - O_TO_CONNECT]);
	case O_RETRY_INIT: return dur("--retry-initial", v, 1, &o->retry_initial);
	case O_RETRY_MAX: return dur("--max-retry-time", v, 0, &o->max_retry_time);
	case O_GRACE: return dur("--grace", v, 0, &o->grace);
	case O_BATCH:
		if (dur("--batch-window", v, 0, &o->batch_window) < 0)
			return -1;
		if (o->batch_window > BATCH_MAX_WINDOW_MS) {
			fprintf(stderr, "volley send: --batch-window: at most %ums, got '%s'\n",
			        BATCH_MAX_WINDOW_MS, v);
			return -1;
		}
		return 0;
	case O_SHAPING: o->shaping = v; return 0;
	case O_RESUME: o->resume = true; return 0;
	case O_TO_SCALE: {
		char *end;
		o->timeout_scale = strtod(v, &end);
		if (end == v || *end || !(o->timeout_scale > 0) || o->timeout_scale > 1000) {
			fprintf(stderr, "volley send: --timeout-scale: expected a factor above 0 and at "
			        "most 1000, got '%s'\n", v);
			return -1;
		}
		return 0;
	}
	default: return -1;
	}
}

/* cli_send - parse the options of `volley send`. */
int cli_send(int argc, char **argv, struct send_opts *o)
{
	memset(o, 0, sizeof *o);
	o->connections = 100;
	o->max_msgs = 1000;
	o->max_rcpts = 100;
	o->port = 25;
	o->timeout_scale = 1.0;
	o->dest_limit = 20;
	o->retry_initial = 60000;
	o->max_retry_time = 30 * 60000;
	o->grace = 30000;
	o->batch_window = 1;
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":h", send_long, NULL)) != -1) {
		if (c == 'h') {
			send_help(stdout);
			return 1;
		}
		if (c == '?' || c == ':') {
			fprintf(stderr, "volley send: %s '%s'\n%s",
			        c == ':' ? "missing value for" : "unknown option",
			        argv[optind - 1], "try 'volley send --help'\n");
			return 2;
		}
		if (apply(c, optarg, o) < 0)
			return 2;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "volley send: %s\ntry 'volley send --help'\n",
		        optind >= argc ? "missing JOB" : "more than one JOB given");
		return 2;
	}
	o->job = argv[optind];
	return 0;
}
