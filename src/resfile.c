/* resfile.c - results buffering: fill one buffer while the previous one is written. */
#include "resfile.h"
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

/* resfile_init - allocate the buffers. */
int resfile_init(struct resfile *rf, int fd)
{
	rf->fd = fd;
	rf->nqueue = 0;
	rf->cur = 0;
	rf->inflight = -1;
	rf->inflight_off = 0;
	rf->sync_writes = 0;
	rf->error = 0;
	rf->first_ms = 0;
	for (unsigned i = 0; i < RES_NBUF; i++) {
		rf->len[i] = 0;
		rf->buf[i] = malloc(RES_BUFSZ);
		if (!rf->buf[i])
			return -1;
	}
	return 0;
}

/* resfile_free - release the buffers. */
void resfile_free(struct resfile *rf)
{
	for (unsigned i = 0; i < RES_NBUF; i++) {
		free(rf->buf[i]);
		rf->buf[i] = NULL;
	}
}

/* resfile_write_fd - blocking write of n bytes to fd; 0, or the errno (EIO for a
 * write that wrote nothing). */
int resfile_write_fd(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* write_all - blocking write of n bytes (only when every buffer is busy, or at shutdown). */
static int write_all(struct resfile *rf, const char *p, size_t n)
{
	int e = resfile_write_fd(rf->fd, p, n);
	if (e && !rf->error)
		rf->error = e;
	return e ? -1 : 0;
}

/* is_busy - buffer i is queued or in flight. */
static bool is_busy(const struct resfile *rf, unsigned i)
{
	if ((int)i == rf->inflight)
		return true;
	for (unsigned k = 0; k < rf->nqueue; k++)
		if (rf->queue[k] == i)
			return true;
	return false;
}

/* rotate - queue the current buffer and pick a free one; write directly if none. */
static void rotate(struct resfile *rf)
{
	for (unsigned i = 0; i < RES_NBUF; i++) {
		if ((int)i != rf->cur && !is_busy(rf, i)) {
			rf->queue[rf->nqueue++] = (uint8_t)rf->cur;
			rf->cur = (int)i;
			rf->len[i] = 0;
			return;
		}
	}
	rf->sync_writes++;
	write_all(rf, rf->buf[rf->cur], rf->len[rf->cur]);
	rf->len[rf->cur] = 0;
}

/* resfile_space - tail room of at least need octets (need <= RES_BUFSZ). */
char *resfile_space(struct resfile *rf, size_t need)
{
	if (RES_BUFSZ - rf->len[rf->cur] < need)
		rotate(rf);
	return rf->buf[rf->cur] + rf->len[rf->cur];
}

/* resfile_commit - account for n octets written at the tail. */
void resfile_commit(struct resfile *rf, size_t n, int64_t now_ms)
{
	if (rf->len[rf->cur] == 0)
		rf->first_ms = now_ms;
	rf->len[rf->cur] += n;
}

/* resfile_due - whether the buffer being filled is big or old enough to write. */
bool resfile_due(const struct resfile *rf, int64_t now_ms)
{
	size_t len = rf->len[rf->cur];
	return len >= RES_FLUSH_BYTES || (len > 0 && now_ms - rf->first_ms >= RES_FLUSH_MS);
}

/* resfile_next - next write to start, oldest data first. */
bool resfile_next(struct resfile *rf, bool flush_partial, const char **p, size_t *len)
{
	if (rf->inflight >= 0)
		return false;
	if (rf->nqueue == 0 && flush_partial && rf->len[rf->cur] > 0)
		rotate(rf);
	if (rf->nqueue == 0)
		return false;
	rf->inflight = rf->queue[0];
	for (unsigned k = 1; k < rf->nqueue; k++)
		rf->queue[k - 1] = rf->queue[k];
	rf->nqueue--;
	rf->inflight_off = 0;
	*p = rf->buf[rf->inflight];
	*len = rf->len[rf->inflight];
	return true;
}

/* resfile_done - account for a finished write; short writes continue synchronously. */
void resfile_done(struct resfile *rf, long res)
{
	int b = rf->inflight;
	if (b < 0)
		return;
	if (res < 0) {
		if (!rf->error)
			rf->error = (int)-res;
	} else if ((size_t)res < rf->len[b]) {
		write_all(rf, rf->buf[b] + res, rf->len[b] - (size_t)res);
	}
	rf->len[b] = 0;
	rf->inflight = -1;
}

/* resfile_requeue_inflight - put the in-flight buffer back at the head of the queue. */
void resfile_requeue_inflight(struct resfile *rf)
{
	int b = rf->inflight;
	if (b < 0)
		return;
	for (unsigned k = rf->nqueue; k > 0; k--) /* room: inflight was neither cur nor queued */
		rf->queue[k] = rf->queue[k - 1];
	rf->queue[0] = (uint8_t)b;
	rf->nqueue++;
	rf->inflight = -1;
}

/* resfile_idle - nothing left to write. */
bool resfile_idle(const struct resfile *rf)
{
	return rf->inflight < 0 && rf->nqueue == 0 && rf->len[rf->cur] == 0;
}

/* resfile_drain - synchronous flush of all queued data (no write may be in flight). */
int resfile_drain(struct resfile *rf)
{
	for (unsigned k = 0; k < rf->nqueue; k++) {
		unsigned b = rf->queue[k];
		write_all(rf, rf->buf[b], rf->len[b]);
		rf->len[b] = 0;
	}
	rf->nqueue = 0;
	write_all(rf, rf->buf[rf->cur], rf->len[rf->cur]);
	rf->len[rf->cur] = 0;
	return rf->error ? -1 : 0;
}
