/* test_wheel.c - the timer wheel against a brute-force model: never early, at most a tick late. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include "wheel.h"

#define N 2000u

Test(wheel, fires_each_armed_entry_once_never_early_at_most_a_tick_late)
{
	static struct wheel wh;
	static struct wheel_node nodes[N];
	static int64_t want[N];
	uint32_t out[64];
	srand(7);
	wheel_init(&wh, nodes, N, 100, 1000);
	int64_t now = 1000;
	unsigned fired = 0, armed = 0;
	for (unsigned step = 0; step < 20000; step++) {
		uint32_t i = (uint32_t)rand() % N;
		int r = rand() % 10;
		if (r < 6) { /* arm or re-arm: up to 300 s ahead (three turns), sometimes in the past */
			int64_t at = now + (rand() % 300000) - 50;
			if (at <= 0)
				at = 1;
			armed += want[i] == 0;
			want[i] = at;
			wheel_set(&wh, i, at);
		} else if (r < 7) {
			armed -= want[i] != 0;
			want[i] = 0;
			wheel_set(&wh, i, 0);
		}
		now += rand() % 400;
		uint32_t k;
		do {
			k = wheel_expire(&wh, now, out, 64);
			for (uint32_t j = 0; j < k; j++) {
				cr_assert_neq(want[out[j]], 0, "entry %u fired without being armed", out[j]);
				cr_assert_leq(want[out[j]], now, "entry %u fired early", out[j]);
				want[out[j]] = 0;
				fired++;
				armed--;
			}
		} while (k == 64);
		for (uint32_t x = 0; x < N; x++) /* nothing overdue by more than a tick is left */
			cr_assert(want[x] == 0 || want[x] > now - 100, "entry %u overdue", x);
	}
	cr_assert_gt(fired, 1000);
	(void)armed;
}

Test(wheel, disarm_and_rearm_move_the_entry)
{
	static struct wheel wh;
	static struct wheel_node nodes[4];
	uint32_t out[4];
	wheel_init(&wh, nodes, 4, 100, 0);
	wheel_set(&wh, 1, 250);
	wheel_set(&wh, 1, 5000);
	wheel_set(&wh, 2, 260);
	wheel_set(&wh, 2, 0);
	cr_assert_eq(wheel_expire(&wh, 1000, out, 4), 0);
	cr_assert_eq(wheel_expire(&wh, 4999, out, 4), 0);
	cr_assert_eq(wheel_expire(&wh, 5000, out, 4), 1);
	cr_assert_eq(out[0], 1);
	wheel_set(&wh, 3, 200000); /* about two turns ahead */
	cr_assert_eq(wheel_expire(&wh, 199999, out, 4), 0);
	cr_assert_eq(wheel_expire(&wh, 200050, out, 4), 1);
}
