/* resfile.h - a thread's results buffers: lines accumulate, full buffers are written in order. */
#ifndef VOLLEY_RESFILE_H
#define VOLLEY_RESFILE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RES_NBUF   4u              /* buffers per thread */
#define RES_BUFSZ  (256u * 1024u)  /* octets per buffer */
#define RES_FLUSH_BYTES (32u * 1024u) /* a partial buffer is written once it holds this much */
#define RES_FLUSH_MS    10         /* ... or once its oldest line is this old (the crash window) */
#define RES_SYNC_MS     1000       /* thread 0 puts the results file on disk this often (power loss) */
#define RES_SETTLE_MS   2000       /* after a ring failure, how long to wait for a write in flight */

/* Per-thread results writer state. The engine moves the bytes (a ring WRITE). */
struct resfile {
	int fd;                        /* results file, O_APPEND */
	char *buf[RES_NBUF];           /* buffers */
	size_t len[RES_NBUF];          /* octets used in each */
	uint8_t queue[RES_NBUF];       /* filled buffers waiting, oldest first */
	unsigned nqueue;               /* entries in queue */
	int cur;                       /* buffer being filled */
	int inflight;                  /* buffer being written, or -1 */
	size_t inflight_off;           /* octets of it already written */
	uint64_t sync_writes;          /* times all buffers were busy and we wrote directly */
	int error;                     /* first write error (errno), 0 if none */
	int64_t first_ms;              /* when the current buffer got its first line, 0 if empty */
};

/* resfile_init - allocate buffers for fd. Returns 0 or -1. */
int resfile_init(struct resfile *rf, int fd);

/* resfile_free - release buffers. */
void resfile_free(struct resfile *rf);

/* resfile_space - room for at least need octets at the tail; may rotate buffers. */
char *resfile_space(struct resfile *rf, size_t need);

/* resfile_commit - n octets were written at the pointer resfile_space returned, at now_ms. */
void resfile_commit(struct resfile *rf, size_t n, int64_t now_ms);

/* resfile_due - the partial buffer should be written now (size or age). */
bool resfile_due(const struct resfile *rf, int64_t now_ms);

/* resfile_next - the next bytes to write when no write is in flight; false if none.
 * flush_partial also hands out the buffer being filled. */
bool resfile_next(struct resfile *rf, bool flush_partial, const char **p, size_t *len);

/* resfile_done - the in-flight write finished with result res (bytes or -errno). */
void resfile_done(struct resfile *rf, long res);

/* resfile_requeue_inflight - the in-flight write's outcome will never be known (the
 * ring failed): queue its buffer again, first, for resfile_drain. A line written twice
 * beats a line lost, whose recipient --resume would send again. */
void resfile_requeue_inflight(struct resfile *rf);

/* resfile_idle - nothing buffered and nothing in flight. */
bool resfile_idle(const struct resfile *rf);

/* resfile_write_fd - blocking write of n bytes to fd (no buffers: the main thread's
 * fallback). Returns 0, or the errno. */
int resfile_write_fd(int fd, const char *p, size_t n);

/* resfile_drain - write everything synchronously (shutdown path). Returns 0 or -1. */
int resfile_drain(struct resfile *rf);

#endif
