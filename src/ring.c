/* ring.c - io_uring setup: SINGLE_ISSUER+DEFER_TASKRUN where the kernel has them, clean fallbacks. */
#include "ring.h"
#include <stdio.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

/* required_ops - opcodes the engine cannot run without. */
static const struct { int op; const char *name; } required_ops[] = {
	{IORING_OP_CONNECT, "CONNECT"}, {IORING_OP_RECV, "RECV"},
	{IORING_OP_SENDMSG, "SENDMSG"}, {IORING_OP_WRITE, "WRITE"},
	{IORING_OP_TIMEOUT, "TIMEOUT"}, {IORING_OP_CLOSE, "CLOSE"},
	{IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}, {IORING_OP_FSYNC, "FSYNC"},
};

/* probe_ops - check the kernel supports every required opcode. */
static int probe_ops(struct ring *r, char *err, size_t errlen)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(&r->u);
	if (!p) {
		snprintf(err, errlen, "io_uring: cannot probe opcodes (kernel too old?)");
		return -1;
	}
	for (size_t i = 0; i < sizeof required_ops / sizeof required_ops[0]; i++) {
		if (!io_uring_opcode_supported(p, required_ops[i].op)) {
			snprintf(err, errlen, "io_uring: kernel lacks opcode %s (need Linux 5.19 or newer)",
			         required_ops[i].name);
			io_uring_free_probe(p);
			return -1;
		}
	}
	io_uring_free_probe(p);
	return 0;
}

/* probe_cancel_fd - closing a session cancels its operations by file (Linux 5.19);
 * older kernels refuse the flag with EINVAL, and sessions could not be closed. */
static int probe_cancel_fd(struct ring *r, char *err, size_t errlen)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->u);
	struct io_uring_cqe *cqe = NULL;
	if (!sqe) {
		snprintf(err, errlen, "io_uring: no submission entry for the cancel probe");
		return -1;
	}
	io_uring_prep_cancel_fd(sqe, r->u.ring_fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, 0);
	int rc = io_uring_submit_and_wait(&r->u, 1);
	if (rc >= 0)
		rc = io_uring_peek_cqe(&r->u, &cqe);
	int res = rc == 0 && cqe ? cqe->res : rc;
	if (cqe)
		io_uring_cqe_seen(&r->u, cqe);
	if (res == -EINVAL) {
		snprintf(err, errlen, "io_uring: kernel cannot cancel by file (need Linux 5.19 or newer)");
		return -1;
	}
	return 0;
}

/* ring_init - try flag sets from best to plainest. */
int ring_init(struct ring *r, unsigned sq_entries, unsigned cq_entries, char *err, size_t errlen)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
		IORING_SETUP_SUBMIT_ALL,
		0,
	};
	int rc = -1;
	memset(r, 0, sizeof *r);
	for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof p);
		p.flags = tries[i] | IORING_SETUP_CQSIZE;
		p.cq_entries = cq_entries;
		rc = io_uring_queue_init_params(sq_entries, &r->u, &p);
		if (rc == 0) {
			r->setup_flags = tries[i];
			r->defer_taskrun = (tries[i] & IORING_SETUP_DEFER_TASKRUN) != 0;
			/* Completions that arrive by poll (a reply on a socket) wake a deferred-
			 * task-run waiter only once as many are queued as it waits for since
			 * Linux 6.10; no feature bit says so, and MIN_TIMEOUT (6.12) is the
			 * nearest one that does. Older kernels wake per completion, so a
			 * batched wait would only add a timer there. */
			r->lazy_wake = r->defer_taskrun && (p.features & IORING_FEAT_MIN_TIMEOUT);
			if (!(p.features & IORING_FEAT_NODROP)) {
				snprintf(err, errlen, "io_uring: kernel lacks IORING_FEAT_NODROP (need 5.5+)");
				io_uring_queue_exit(&r->u);
				return -1;
			}
			if (probe_ops(r, err, errlen) == 0 && probe_cancel_fd(r, err, errlen) == 0)
				return 0;
			io_uring_queue_exit(&r->u);
			return -1;
		}
		if (rc != -EINVAL)
			break;
	}
	snprintf(err, errlen, "io_uring_setup: %s", strerror(-rc));
	return -1;
}

/* ring_sqe - never NULL: flush the SQ when it is full. */
struct io_uring_sqe *ring_sqe(struct ring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->u);
	while (!sqe) {
		io_uring_submit(&r->u);
		sqe = io_uring_get_sqe(&r->u);
	}
	return sqe;
}

/* flush_sq - publish queued SQEs to the kernel; how many are pending. */
static unsigned flush_sq(struct io_uring *u)
{
	struct io_uring_sq *sq = &u->sq;
	unsigned tail = sq->sqe_tail;
	if (sq->sqe_head != tail) {
		sq->sqe_head = tail;
		io_uring_smp_store_release(sq->ktail, tail);
	}
	return tail - *sq->khead;
}

/* ring_submit_wait - one io_uring_enter: submit, then wait (see ring.h). */
int ring_submit_wait(struct ring *r, unsigned want, unsigned timeout_us)
{
	if (want <= 1 || timeout_us == 0 || !r->lazy_wake)
		return io_uring_submit_and_wait(&r->u, 1);
	struct __kernel_timespec ts = { .tv_sec = timeout_us / 1000000u,
	                                .tv_nsec = (long long)(timeout_us % 1000000u) * 1000 };
	struct io_uring_getevents_arg arg = { .ts = (uint64_t)(uintptr_t)&ts };
	int rc = io_uring_enter2((unsigned)r->u.ring_fd, flush_sq(&r->u), want,
	                         IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
	                         (sigset_t *)(void *)&arg, sizeof arg);
	return rc == -ETIME ? 0 : rc;
}

/* ring_mode - which flag set won. */
const char *ring_mode(const struct ring *r)
{
	if (r->setup_flags & IORING_SETUP_DEFER_TASKRUN)
		return "single-issuer+defer-taskrun";
	if (r->setup_flags & IORING_SETUP_COOP_TASKRUN)
		return "coop-taskrun";
	return "plain";
}

/* ring_exit - tear down the ring. */
void ring_exit(struct ring *r)
{
	io_uring_queue_exit(&r->u);
}
