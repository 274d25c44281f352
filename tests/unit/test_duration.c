/* test_duration.c - durations with units, and the timeout scale. */
#include <criterion/criterion.h>
#include "duration.h"

Test(duration, units)
{
	cr_assert_eq(duration_ms("500ms"), 500);
	cr_assert_eq(duration_ms("40s"), 40000);
	cr_assert_eq(duration_ms("5m"), 300000);
	cr_assert_eq(duration_ms("1h"), 3600000);
	cr_assert_eq(duration_ms("1.5s"), 1500);
	cr_assert_eq(duration_ms("0.5ms"), -1, "below a millisecond");
	cr_assert_eq(duration_ms("1ms"), 1);
}

Test(duration, rejects)
{
	const char *bad[] = {"", "5", "s", "5x", "5 s", " 5s", "-5s", "+5s", "0s", "0.0001ms",
	                     "8d", "200h", "5sec", "nan s", "inf s", "1e9h", NULL};
	for (int i = 0; bad[i]; i++)
		cr_assert_eq(duration_ms(bad[i]), -1, "accepted '%s'", bad[i]);
	cr_assert_eq(duration_ms(NULL), -1);
}

Test(duration, scale)
{
	cr_assert_eq(scale_ms(300000, 0.01), 3000);
	cr_assert_eq(scale_ms(10, 0.0001), 1);
	cr_assert_eq(scale_ms(DURATION_MAX_MS, 10), DURATION_MAX_MS);
	cr_assert_eq(scale_ms(2000, 1.0), 2000);
}

Test(duration, zero_where_allowed)
{
	const char *zero[] = {"0", "0s", "0ms", "0.0m", "0h", NULL};
	for (int i = 0; zero[i]; i++)
		cr_assert_eq(duration_ms_or_zero(zero[i]), 0, "'%s'", zero[i]);
	const char *bad[] = {"", "-0", "+0", " 0", "0x", "0 s", "0sec", NULL};
	for (int i = 0; bad[i]; i++)
		cr_assert_eq(duration_ms_or_zero(bad[i]), -1, "accepted '%s'", bad[i]);
	cr_assert_eq(duration_ms_or_zero("40s"), 40000);
	cr_assert_eq(duration_ms_or_zero(NULL), -1);
}
