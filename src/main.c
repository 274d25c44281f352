/* main.c - volley's entry point: `volley send` sets up the run and hands it to the engine. */
#include "addr.h"
#include "budget.h"
#include "cli.h"
#include "clock.h"
#include "dest.h"
#include "dns.h"
#include "duration.h"
#include "engine.h"
#include "job.h"
#include "jobguard.h"
#include "message.h"
#include "resolver.h"
#include "stats.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define VOLLEY_VERSION "0.1.0"
#define FD_SPARE      64u   /* descriptors besides sessions and threads: stdio, job, results, ... */
#define FD_PER_THREAD 4u    /* a thread's ring, its DNS wake-up eventfd, and room */
#define FD_DNS_MIN    256u  /* DNS sockets needed at least over all threads (MX mode); more
                             * are wanted, up to RESOLVER_SLOTS per thread, but without them
                             * a query only waits or fails for a while (retried) */

static volatile sig_atomic_t g_signals;
static volatile sig_atomic_t g_report;

/* on_report - SIGUSR1: print a progress line at the next tick (as dd does). */
static void on_report(int sig)
{
	(void)sig;
	g_report = 1;
}

/* on_signal - first SIGINT/SIGTERM/SIGHUP: stop taking recipients; second SIGINT: exit now. */
static void on_signal(int sig)
{
	if (g_signals++ > 0 && sig == SIGINT)
		_exit(130);
	engine_stop();
}

/* install_signals - SIGINT/SIGTERM/SIGHUP handlers (a closed terminal stops the run
 * cleanly, like SIGTERM, unless SIGHUP was ignored, as under nohup); SIGUSR1 prints a
 * progress line; SIGPIPE ignored (sends use MSG_NOSIGNAL too). */
static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	struct sigaction old;
	if (sigaction(SIGHUP, NULL, &old) == 0 && old.sa_handler != SIG_IGN) /* nohup: stays ignored */
		sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_report;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* helo_ok - a name safe to put after EHLO: LDH labels and dots, or an address literal. */
static bool helo_ok(const char *h)
{
	size_t n = strlen(h);
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		          c == '-' || c == '.' || c == '[' || c == ']' || c == ':';
		if (!ok)
			return false;
	}
	return true;
}

/* pick_helo - --helo, else this host's name, else "localhost". */
static int pick_helo(const char *given, char *out, size_t len)
{
	if (given) {
		if (!helo_ok(given)) {
			fprintf(stderr, "volley send: --helo '%s': not a host name or address literal\n",
			        given);
			return -1;
		}
		snprintf(out, len, "%s", given);
		return 0;
	}
	if (gethostname(out, len) != 0 || !helo_ok(out))
		snprintf(out, len, "localhost");
	return 0;
}

/* open_results - create the results file; refuse to clobber unless forced. */
static int open_results(const char *path, bool force)
{
	struct stat st;
	if (force && lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* --force replaces an earlier results file, never a device, pipe, link or directory */
		fprintf(stderr, "volley send: --force: %s is not a regular file; not replacing it\n",
		        path);
		return -1;
	}
	if (force && unlink(path) != 0 && errno != ENOENT) {
		fprintf(stderr, "volley send: cannot replace %s: %s\n", path, strerror(errno));
		return -1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0 && errno == EEXIST)
		fprintf(stderr, "volley send: results file %s exists; use --force to replace it\n",
		        path);
	else if (fd < 0)
		fprintf(stderr, "volley send: cannot create %s: %s\n", path, strerror(errno));
	return fd;
}

/* count_lines - recipients estimate for the progress line (newlines in the body). */
static uint64_t count_lines(const struct job *j)
{
	uint64_t n = 0;
	const char *p = j->map + j->body_off, *end = j->map + j->size;
	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

/* Everything one `volley send` run holds. */
struct run {
	struct send_opts o;
	struct job job;
	struct message msg;
	struct engine_config cfg;
	char helo[256];
	char results[4200];
	enum smtp_tls_mode smtp_tls;
	char password[256];
	struct resume res;
	struct shaping shaping;
	uint64_t skipped;          /* --resume: recipients already final */
	uint64_t lines;            /* lines in the recipient section, once counted */
	bool lines_known;          /* ... and whether they were */
};

/* run_lines - the recipient section's lines, counted once (one pass over the mapping). */
static uint64_t run_lines(struct run *r)
{
	if (!r->lines_known) {
		r->lines = count_lines(&r->job);
		r->lines_known = true;
	}
	return r->lines;
}

/* open_resume - --resume: open the results file for appending (never truncating) and
 * read which job lines already have a final result. */
static int open_resume(struct run *r)
{
	char err[256];
	int fd = open(r->results, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int rfd = fd >= 0 ? open(r->results, O_RDONLY | O_CLOEXEC) : -1;
	struct stat st;
	if (fd < 0 || rfd < 0 || fstat(rfd, &st) != 0) {
		fprintf(stderr, "volley send: --resume: %s: %s\n", r->results, strerror(errno));
		if (fd >= 0)
			close(fd);
		if (rfd >= 0)
			close(rfd);
		return -1;
	}
	r->res.max_line = r->job.body_line + run_lines(r);
	const char *map = st.st_size > 0 ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE,
	                                        rfd, 0) : NULL;
	close(rfd);
	int rc = map == MAP_FAILED ? -1 : map ? resume_scan(&r->res, map, (size_t)st.st_size, err,
	                                                    sizeof err) : 0;
	if (map && map != MAP_FAILED)
		munmap((void *)map, (size_t)st.st_size);
	if (rc < 0) {
		fprintf(stderr, "volley send: --resume: %s: %s\n", r->results,
		        map == MAP_FAILED ? strerror(errno) : err);
		close(fd);
		return -1;
	}
	if (r->res.torn) { /* end the cut line, so that the lines appended now stand alone */
		fprintf(stderr, "volley send: %s: the last line is cut (the earlier run died while "
		        "writing it); it is ignored and its recipient is sent again\n", r->results);
		if (write(fd, "\n", 1) != 1) {
			fprintf(stderr, "volley send: %s: %s\n", r->results, strerror(errno));
			close(fd);
			return -1;
		}
	}
	if (r->res.bad)
		fprintf(stderr, "volley send: %s:%llu: not a volley result line (%llu such lines, "
		        "ignored)\n", r->results, (unsigned long long)r->res.first_bad,
		        (unsigned long long)r->res.bad);
	return fd;
}

/* check_resume - every final result read must name the recipient on its job line;
 * counts the recipients that will be skipped. */
static int check_resume(struct run *r)
{
	struct job_cursor c;
	struct rcpt rc;
	const char *why;
	char addr[ADDR_MAX_MAILBOX + 1];
	int k;
	job_slices(&r->job, 1, &c);
	while ((k = job_next(&r->job, &c, &rc, &why)) != 0) {
		if (!resume_final(&r->res, rc.line))
			continue;
		const char *s = rc.raw;
		size_t n = rc.raw_len;
		if (k > 0) {
			n = rcpt_addr(&rc, addr);
			s = addr;
		}
		if (!resume_matches(&r->res, rc.line, s, n)) {
			fprintf(stderr, "volley send: --resume: %s names another recipient than %s:%llu "
			        "(%.*s): the results of another job?\n", r->results, r->job.path,
			        (unsigned long long)rc.line, (int)(n > 80 ? 80 : n), s);
			return -1;
		}
		r->skipped++;
	}
	if (r->res.beyond || r->skipped != r->res.final - r->res.twice) {
		fprintf(stderr, "volley send: --resume: %s has final results for %llu job lines that "
		        "are not recipients of %s: the results of another job?\n", r->results,
		        (unsigned long long)(r->res.final - r->res.twice - r->skipped + r->res.beyond),
		        r->job.path);
		return -1;
	}
	return 0;
}

/* setup_relay - resolve --relay once, before the engine starts. */
static int setup_relay(struct run *r, char *err, size_t errlen)
{
	struct engine_config *c = &r->cfg;
	char host[256];
	if (dest_relay(r->o.relay, 25, &c->addr, &c->addr_len, c->relay_server,
	               sizeof c->relay_server, err, errlen) < 0)
		return -1;
	snprintf(host, sizeof host, "%s", r->o.relay);
	char *colon = host[0] == '[' ? strchr(host, ']') : strrchr(host, ':');
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		if (colon)
			*(colon - 1) = '\0';
	} else if (colon && colon == strchr(host, ':')) {
		*colon = '\0';
	}
	snprintf(c->relay_host, sizeof c->relay_host, "%s", host);
	if (c->addr.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&c->addr)->sin6_addr, c->relay_ip,
		          sizeof c->relay_ip);
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&c->addr)->sin_addr, c->relay_ip,
		          sizeof c->relay_ip);
	return 0;
}

/* setup_dns - the DNS servers for MX mode: --dns, or /etc/resolv.conf. */
static int setup_dns(struct run *r, char *err, size_t errlen)
{
	struct dns_servers *d = &r->cfg.dns;
	for (unsigned i = 0; i < r->o.ndns && i < RESOLVER_MAX_SERVERS; i++) {
		if (dest_numeric(r->o.dns[i], 53, &d->addr[i], &d->len[i], err, errlen) < 0)
			return -1;
		d->n++;
	}
	if (d->n > 0)
		return 0;
	char text[8192];
	int fd = open("/etc/resolv.conf", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, text, sizeof text) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0)
		d->n = dns_resolv_conf(text, (size_t)n, d->addr, d->len, RESOLVER_MAX_SERVERS);
	if (d->n == 0) {
		snprintf(err, errlen, "no DNS server: /etc/resolv.conf names none; give --dns HOST[:PORT]");
		return -1;
	}
	return 0;
}

/* read_password - the AUTH password: first line of --auth-password-file, or
 * $VOLLEY_AUTH_PASSWORD. Never from argv, never printed. */
static int read_password(const struct send_opts *o, char *out, size_t cap)
{
	const char *env = getenv("VOLLEY_AUTH_PASSWORD");
	size_t n = 0;
	if (o->auth_pass_file) {
		int fd = open(o->auth_pass_file, O_RDONLY | O_CLOEXEC);
		ssize_t got = fd >= 0 ? read(fd, out, cap - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (got < 0) {
			fprintf(stderr, "volley send: --auth-password-file %s: %s\n", o->auth_pass_file,
			        strerror(errno));
			return -1;
		}
		n = (size_t)got;
		out[n] = '\0';
		n = strcspn(out, "\r\n");
	} else if (env) {
		n = strlen(env) < cap ? strlen(env) : cap - 1;
		memcpy(out, env, n);
	} else {
		fprintf(stderr, "volley send: --auth needs a password: --auth-password-file FILE or "
		        "VOLLEY_AUTH_PASSWORD\n");
		return -1;
	}
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20) {
			fprintf(stderr, "volley send: the password contains a control character\n");
			return -1;
		}
	if (n == 0 || strlen(o->auth_user) > 255 || strpbrk(o->auth_user, "\r\n")) {
		fprintf(stderr, "volley send: empty password, or a user name over 255 octets or with "
		        "a line break\n");
		return -1;
	}
	return 0;
}

/* setup_tls - TLS policy, trust store and credentials. */
static int setup_tls(struct run *r)
{
	struct engine_config *c = &r->cfg;
	const struct send_opts *o = &r->o;
	const char *m = o->tls;
	char err[512];
	if (o->auth_user && !o->relay) {
		fprintf(stderr, "volley send: --auth needs --relay\n");
		return -1;
	}
	c->tls_wrapper = o->tls_wrapper || (o->relay && c->addr.ss_family &&
	                 ntohs(((struct sockaddr_in *)&c->addr)->sin_port) == 465);
	if (!m)
		m = o->relay && o->auth_user ? "verify" : "opportunistic";
	r->smtp_tls = !strcmp(m, "none") ? TLSM_NONE : !strcmp(m, "opportunistic") ?
	              TLSM_OPPORTUNISTIC : !strcmp(m, "required") ? TLSM_REQUIRED : TLSM_VERIFY;
	if (c->tls_wrapper && r->smtp_tls == TLSM_NONE) {
		fprintf(stderr, "volley send: implicit TLS (--tls-wrapper or port 465) with --tls none\n");
		return -1;
	}
	if (o->auth_user && read_password(o, r->password, sizeof r->password) < 0)
		return -1;
	if (o->auth_user)
		prctl(PR_SET_DUMPABLE, 0); /* no core dump (or ptrace by others) can show the password */
	if (r->smtp_tls == TLSM_NONE && !c->tls_wrapper)
		return 0;
	/* Only verification needs trusted CAs; opportunistic and required TLS take any
	 * certificate. A --ca-file given is loaded (and checked) whatever the policy. */
	c->tls = tls_ctx_new(o->ca_file, r->smtp_tls == TLSM_VERIFY || o->ca_file != NULL,
	                     o->tls_cert, o->tls_key, err, sizeof err);
	if (!c->tls) {
		fprintf(stderr, "volley send: %s\n", err);
		return -1;
	}
	return 0;
}

/* prepare - job, message, relay, results file: every check before anything is sent. */
/* thread_count - engine threads: --threads, else one per CPU; never more than connections. */
static unsigned thread_count(const struct send_opts *o)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = o->threads ? o->threads : (cpus > 0 ? (unsigned)cpus : 1);
	return n > o->connections ? o->connections : n;
}

/* check_fds - enough file descriptors for the sessions, rings and DNS sockets: raise
 * the soft limit (up to the hard one) to what a run may use, and refuse before anything
 * is sent when even what it needs is not there (a thread that cannot open its ring
 * would leave its share of the job unsent). */
static int check_fds(const struct send_opts *o)
{
	unsigned threads = thread_count(o);
	rlim_t base = (rlim_t)o->connections + FD_SPARE + (rlim_t)threads * FD_PER_THREAD;
	rlim_t dns = o->relay ? 0 : (rlim_t)threads * RESOLVER_SLOTS;
	rlim_t want = base + dns, need = base + (dns < FD_DNS_MIN ? dns : FD_DNS_MIN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return 0;
	rlim_t hard = rl.rlim_max;
	rlim_t got = hard == RLIM_INFINITY || hard >= want ? want : hard;
	if (got > rl.rlim_cur) {
		rl.rlim_cur = got;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur >= need)
		return 0;
	fprintf(stderr, "volley send: --connections %u with %u threads needs at least %llu file "
	        "descriptors, and the limit is %llu (ulimit -n; hard limit %llu): raise it, or "
	        "lower --connections or --threads\n", o->connections, threads,
	        (unsigned long long)need, (unsigned long long)rl.rlim_cur,
	        (unsigned long long)(hard == RLIM_INFINITY ? 0 : hard));
	return -1;
}

static int prepare(struct run *r)
{
	char err[4400];
	if (check_fds(&r->o) < 0)
		return 2;
	if (job_open(&r->job, r->o.job, err, sizeof err) < 0 ||
	    message_load(&r->msg, r->job.message_path, err, sizeof err) < 0) {
		fprintf(stderr, "volley send: %s\n", err);
		return 2;
	}
	if ((r->o.relay ? setup_relay(r, err, sizeof err) : setup_dns(r, err, sizeof err)) < 0) {
		fprintf(stderr, "volley send: %s\n", err);
		return 2;
	}
	if (pick_helo(r->o.helo, r->helo, sizeof r->helo) < 0 || setup_tls(r) < 0)
		return 2;
	if (shaping_init(&r->shaping, r->o.shaping, err, sizeof err) < 0) {
		fprintf(stderr, "volley send: --shaping: %s\n", err);
		return 2;
	}
	r->cfg.shaping = &r->shaping;
	r->cfg.user_default = r->shaping.def && strcmp(r->shaping.def->file, "<built-in>") != 0;
	if (r->o.results)
		snprintf(r->results, sizeof r->results, "%s", r->o.results);
	else
		snprintf(r->results, sizeof r->results, "%s.results.jsonl", r->o.job);
	if (r->o.resume && r->o.force) {
		fprintf(stderr, "volley send: --resume and --force exclude each other\n");
		return 2;
	}
	if (r->o.resume) {
		r->cfg.results_fd = open_resume(r);
		if (r->cfg.results_fd < 0 || check_resume(r) < 0)
			return 2;
		r->cfg.resume = &r->res;
		return 0;
	}
	r->cfg.results_fd = open_results(r->results, r->o.force);
	return r->cfg.results_fd < 0 ? 2 : 0;
}

/* configure - fill the engine configuration from the options. */
static void configure(struct run *r)
{
	struct engine_config *c = &r->cfg;
	c->job = &r->job;
	c->smtp = (struct smtp_config){
		.helo = r->helo, .from = r->job.from, .from_flags = r->job.from_flags,
		.msg = &r->msg, .max_rcpts = r->o.max_rcpts, .max_msgs = r->o.max_msgs,
		.no_pipelining = r->o.no_pipelining, .tls = r->smtp_tls,
		.auth_user = r->o.auth_user, .auth_pass = r->o.auth_user ? r->password : NULL,
		.allow_plaintext_auth = r->o.allow_plaintext_auth,
	};
	c->connections = r->o.connections;
	c->threads = thread_count(&r->o);
	c->mx = r->o.relay == NULL;
	c->port = r->o.port;
	c->want4 = r->o.ip_version != 6;
	c->want6 = r->o.ip_version != 4;
	c->dest_limit = r->o.dest_limit;
	static const int64_t defaults[6] = { 30000, 300000, 300000, 120000, 180000, 600000 };
	int64_t to[6];
	for (int i = 0; i < 6; i++)
		to[i] = scale_ms(r->o.timeout[i] ? r->o.timeout[i] : defaults[i], r->o.timeout_scale);
	c->to = (struct engine_timeouts){ .connect = to[0], .greeting = to[1], .command = to[2],
		.data = to[3], .block = to[4], .dot = to[5] };
	c->retry_initial = r->o.retry_initial;
	c->max_retry = r->o.max_retry_time;
	c->grace = r->o.grace;
	c->batch_window_us = (uint32_t)r->o.batch_window * 1000u;
}

/* cmd_send - `volley send`. */
static int cmd_send(int argc, char **argv)
{
	static struct run r;
	int rc = cli_send(argc, argv, &r.o);
	if (rc != 0)
		return rc == 1 ? 0 : 2;
	if ((rc = prepare(&r)) != 0)
		return rc;
	configure(&r);
	install_signals();
	jobguard_arm(r.job.map, r.job.size, r.job.path, r.results);
	struct engine_stats *st = calloc(r.cfg.threads, sizeof *st);
	struct progress p = { .st = st, .threads = r.cfg.threads, .t0 = clock_ms_precise(),
		.live = !r.o.quiet && isatty(2), .report = &g_report };
	if (!st)
		return 1;
	p.last = p.t0;
	if (p.live)
		p.total = run_lines(&r) - r.skipped;
	if (r.o.resume && !r.o.quiet)
		printf("volley: resuming: %llu recipients already have a final result in %s\n",
		       (unsigned long long)r.skipped, r.results);
	char err[512];
	rc = engine_run(&r.cfg, st, stats_tick, &p, err, sizeof err);
	if (fsync(r.cfg.results_fd) != 0 && errno != EINVAL)
		fprintf(stderr, "volley send: fsync %s: %s\n", r.results, strerror(errno));
	close(r.cfg.results_fd);
	if (!r.o.quiet) {
		stats_summary(&p, stdout, r.results);
		budget_report(stdout);
	}
	budget_free();
	if (rc != 0)
		fprintf(stderr, "volley send: %s\n", err);
	else if (engine_stopping()) {
		fprintf(stderr, "volley send: interrupted: recipients not attempted have status "
		        "deferred with reply \"not attempted: the run was interrupted\"\n");
		rc = 1;
	}
	free(st);
	tls_ctx_free(r.cfg.tls);
	memset(r.password, 0, sizeof r.password);
	message_free(&r.msg);
	resume_free(&r.res);
	shaping_free(&r.shaping);
	job_close(&r.job);
	return rc == 0 ? 0 : 1;
}

/* main - dispatch the command. */
int main(int argc, char **argv)
{
	if (argc < 2) {
		cli_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		cli_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("volley %s\n", VOLLEY_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "send"))
		return cmd_send(argc - 1, argv + 1);
	fprintf(stderr, "volley: unknown command '%s'\ntry 'volley --help'\n", argv[1]);
	return 2;
}
