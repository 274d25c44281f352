/* engine.h - the per-core sending engine: one thread, one ring, many SMTP sessions. */
#ifndef VOLLEY_ENGINE_H
#define VOLLEY_ENGINE_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "job.h"
#include "message.h"
#include "resolver.h"
#include "resume.h"
#include "shaping.h"
#include "smtp.h"
#include "tls.h"

/* Step deadlines in milliseconds (RFC 5321 4.5.3.2 defaults). */
struct engine_timeouts {
	int64_t connect, greeting, command, data, block, dot;
};

/* Counters one thread publishes for progress and the summary (relaxed atomics). */
struct engine_stats {
	_Atomic uint64_t delivered, bounced, deferred, failed;
	_Atomic uint64_t connections;  /* connection attempts */
	_Atomic uint64_t inflight;     /* recipients taken but without a result */
	_Atomic uint64_t retrying;     /* ... of which wait for a retry */
	_Atomic uint64_t retries;      /* retries scheduled */
	_Atomic uint64_t retry_full;   /* deferred recipients not retried: the retry table was full */
	_Atomic uint64_t untried;      /* results with no attempt: bad lines, or the run stopped first */
	_Atomic uint64_t sync_writes;  /* results writes that had to block */
	_Atomic uint64_t dns_queries;  /* DNS queries sent (retransmissions included) */
	_Atomic uint64_t dns_tcp;      /* ... of which over TCP */
	char ring_mode[40];            /* which io_uring setup the thread got */
};

/* Everything the threads share, read-only once they start. */
struct engine_config {
	const struct job *job;
	struct smtp_config smtp;               /* per-session protocol settings */
	bool mx;                               /* MX routing (no --relay) */
	struct sockaddr_storage addr;          /* relay address */
	socklen_t addr_len;
	char relay_host[256];                  /* relay host as given, for results "mx" */
	char relay_server[80];                 /* relay "ip:port" for results "server" */
	char relay_ip[48];                     /* relay address for results "ip" */
	struct dns_servers dns;                /* MX mode: DNS servers */
	unsigned port;                         /* MX mode: SMTP port */
	bool want4, want6;                     /* MX mode: address families to use */
	unsigned dest_limit;                   /* connections per destination, all threads */
	struct tls_ctx *tls;                   /* TLS context, NULL when TLS is off */
	bool tls_wrapper;                      /* implicit TLS (RFC 8314): TLS from the first byte */
	unsigned threads;                      /* worker threads */
	unsigned connections;                  /* sessions in total */
	int results_fd;                        /* O_APPEND results file */
	struct engine_timeouts to;
	int64_t retry_initial;                 /* ms before the first retry of a deferred recipient */
	int64_t max_retry;                     /* ms after the first attempt to keep retrying; 0 = never */
	uint32_t batch_window_us;              /* longest a fast reply may wait to be handled with others */
	int64_t grace;                         /* ms after a stop for transactions in flight */
	const struct resume *resume;           /* --resume: job lines already final, or NULL */
	const struct shaping *shaping;         /* shaping rules (built-in and --shaping) */
	bool user_default;                     /* the --shaping file has a default rule */
};

/* engine_run - run every thread to completion; stats must hold cfg->threads entries.
 * tick(arg), when given, is called about every 100 ms from the calling thread.
 * Returns 0, or -1 with err set when the run could not complete. */
int engine_run(const struct engine_config *cfg, struct engine_stats *stats,
               void (*tick)(void *), void *arg, char *err, size_t errlen);

/* engine_stop - ask all threads to stop taking new recipients (signal-safe). */
void engine_stop(void);

/* engine_stopping - whether a stop was requested. */
bool engine_stopping(void);

#endif
