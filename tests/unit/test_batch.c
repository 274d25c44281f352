/* test_batch.c - the reply-rate estimate behind batched waits. */
#include <criterion/criterion.h>
#include "batch.h"

#define T0 1000000 /* µs: any start */

/* feed - `per_ms` replies every ms for `ms` ms, from *now (µs) on. */
static void feed(struct batch *b, int64_t *now, uint32_t per_ms, unsigned ms)
{
	for (unsigned i = 0; i < ms; i++) {
		*now += 1000;
		batch_note(b, per_ms, *now);
	}
}

/* measured - a fresh estimator with a window of window_us, fed per_ms replies a ms for ms ms. */
static struct batch measured(uint32_t window_us, uint32_t per_ms, unsigned ms, int64_t *now)
{
	struct batch b;
	*now = T0;
	batch_init(&b, window_us, *now);
	feed(&b, now, per_ms, ms);
	return b;
}

Test(batch, off_means_one)
{
	int64_t now;
	struct batch b = measured(0, 100, 100, &now);
	cr_assert_eq(batch_want(&b, 100), 1);
}

Test(batch, no_estimate_yet_means_one)
{
	int64_t now;
	struct batch b = measured(1000, 100, BATCH_EST_US / 1000 - 1, &now);
	cr_assert_eq(batch_want(&b, 100), 1, "a rate is known only after a measuring window");
}

Test(batch, three_quarters_of_a_window)
{
	int64_t now;
	struct batch b = measured(1000, 40, 40, &now); /* 1 ms window, 40 replies per ms */
	cr_assert_eq(b.per_window, 40);
	cr_assert_eq(batch_want(&b, 1000), 30);
	b = measured(2000, 40, 40, &now);              /* 2 ms window: 80 per window */
	cr_assert_eq(batch_want(&b, 1000), 60);
}

Test(batch, small_batches_are_not_worth_a_timer)
{
	int64_t now;
	struct batch b = measured(1000, 20, 40, &now); /* 15 per window */
	cr_assert_eq(b.per_window, 20);
	cr_assert_eq(batch_want(&b, 1000), 1);
	b = measured(1000, 40, 40, &now);
	cr_assert_eq(batch_want(&b, 2 * BATCH_MIN - 2), 1, "half of the waiting is below BATCH_MIN");
	cr_assert_eq(batch_want(&b, 2 * BATCH_MIN), BATCH_MIN);
}

Test(batch, at_most_half_of_the_waiting_sessions)
{
	int64_t now;
	struct batch b = measured(1000, 50, 40, &now);
	cr_assert_eq(batch_want(&b, 100), 37);
	cr_assert_eq(batch_want(&b, 40), 20);
	cr_assert_eq(batch_want(&b, 3), 1, "one of three: no batching");
	cr_assert_eq(batch_want(&b, 0), 1);
}

Test(batch, slow_replies_are_not_batched)
{
	int64_t now;
	struct batch b = measured(1000, 0, 0, &now);
	for (unsigned i = 0; i < 100; i++) { /* one reply every 10 ms */
		now += 10000;
		batch_note(&b, 1, now);
	}
	cr_assert_eq(batch_want(&b, 100), 1);
}

Test(batch, follows_a_change_within_one_measuring_window)
{
	int64_t now;
	struct batch b = measured(1000, 40, 64, &now);
	cr_assert_gt(batch_want(&b, 1000), 1);
	feed(&b, &now, 0, 2 * BATCH_EST_US / 1000); /* the server stops answering */
	cr_assert_eq(batch_want(&b, 1000), 1);
	feed(&b, &now, 40, 2 * BATCH_EST_US / 1000); /* and starts again */
	cr_assert_eq(batch_want(&b, 1000), 30);
}

Test(batch, a_long_gap_does_not_overflow)
{
	int64_t now;
	struct batch b = measured(BATCH_MAX_WINDOW_MS * 1000, 0, 0, &now);
	batch_note(&b, UINT32_MAX, now + 1);
	batch_note(&b, UINT32_MAX, now + BATCH_EST_US);
	cr_assert_eq(b.seen, 0);
	cr_assert_gt(b.per_window, 0);
	cr_assert_eq(batch_want(&b, 40), 20);
	batch_note(&b, 3, now + 1000000000000LL); /* idle for days */
	cr_assert_eq(batch_want(&b, 1000), 1);
}
