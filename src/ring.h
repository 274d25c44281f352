/* ring.h - io_uring setup with run-time feature probes, one ring per thread. */
#ifndef VOLLEY_RING_H
#define VOLLEY_RING_H
#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>

/* Constants newer than liburing 2.3's headers. */
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif
#ifndef IORING_ASYNC_CANCEL_FD
#define IORING_ASYNC_CANCEL_FD (1U << 1)
#endif

#define RING_MAX_CQ 65536u       /* IORING_MAX_CQ_ENTRIES: a larger CQ is refused (EINVAL) */

/* A thread's ring and what the kernel granted. */
struct ring {
	struct io_uring u;       /* the ring */
	unsigned setup_flags;    /* IORING_SETUP_* in force */
	bool defer_taskrun;      /* completions run only when we enter with GETEVENTS */
	bool lazy_wake;          /* a waiter for N completions sleeps until N (see ring_submit_wait) */
};

/* ring_init - create a ring with sq_entries, trying the best flags first.
 * Must run on the thread that will submit. Returns 0, or -1 with err set. */
int ring_init(struct ring *r, unsigned sq_entries, unsigned cq_entries, char *err, size_t errlen);

/* ring_sqe - a free SQE, submitting queued ones first if the SQ is full (never NULL). */
struct io_uring_sqe *ring_sqe(struct ring *r);

/* ring_submit_wait - submit, then sleep until `want` completions are posted or
 * timeout_us has passed. Without lazy_wake, want <= 1 or timeout_us 0: until the
 * first completion, no timer. Returns io_uring_enter's result; a timeout is 0. */
int ring_submit_wait(struct ring *r, unsigned want, unsigned timeout_us);

/* ring_mode - a short description of the setup flags in force, for logs. */
const char *ring_mode(const struct ring *r);

/* ring_exit - tear down. */
void ring_exit(struct ring *r);

#endif
