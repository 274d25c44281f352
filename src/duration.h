/* duration.h - durations with units on the command line: "500ms", "40s", "5m", "1h" (pure). */
#ifndef VOLLEY_DURATION_H
#define VOLLEY_DURATION_H
#include <stdint.h>

#define DURATION_MAX_MS (7LL * 24 * 3600 * 1000) /* a week: longer is a mistake */

/* duration_ms - parse a positive number (decimals allowed) with a unit ms, s, m or h into
 * milliseconds. Returns -1 for a missing or unknown unit, garbage, zero, or over DURATION_MAX_MS. */
int64_t duration_ms(const char *s);

/* duration_ms_or_zero - as duration_ms, but zero, with a unit or without ("0", "0s"), is 0. */
int64_t duration_ms_or_zero(const char *s);

/* scale_ms - ms * factor, rounded, at least 1, capped at DURATION_MAX_MS. */
int64_t scale_ms(int64_t ms, double factor);

#endif
