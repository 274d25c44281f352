/* batch.c - the reply-rate estimate behind batched waits (see batch.h). */
#include "batch.h"

/* batch_init - start measuring at now_ms, with no estimate yet. */
void batch_init(struct batch *b, uint32_t window_us, int64_t now_us)
{
	b->window_us = window_us;
	b->t0 = now_us;
	b->seen = 0;
	b->per_window = 0;
}

/* batch_note - count replies; at the end of each measuring window, scale the
 * count to replies per batching window. */
void batch_note(struct batch *b, uint32_t replies, int64_t now_us)
{
	b->seen = b->seen > UINT32_MAX - replies ? UINT32_MAX : b->seen + replies;
	int64_t dt = now_us - b->t0;
	if (dt < (int64_t)BATCH_EST_US)
		return;
	uint64_t per = (uint64_t)b->seen * b->window_us / (uint64_t)dt;
	b->per_window = per > UINT32_MAX ? UINT32_MAX : (uint32_t)per;
	b->seen = 0;
	b->t0 = now_us;
}

/* batch_want - three quarters of a window's replies (so the count, not the
 * timer, usually ends the wait), at most half of the sessions waiting; below
 * BATCH_MIN, no batch: arming the timer (a VM exit on these machines) would
 * cost more than the wake-ups it saves. */
uint32_t batch_want(const struct batch *b, uint32_t waiting)
{
	if (b->window_us == 0)
		return 1;
	uint32_t want = b->per_window / 4 * 3 + b->per_window % 4 * 3 / 4;
	if (want > waiting / 2)
		want = waiting / 2;
	return want < BATCH_MIN ? 1 : want;
}
