/* duration.c - parsing "500ms" / "40s" / "5m" / "1h" durations. */
#include "duration.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* number - the leading unsigned number of s and where its unit starts; false for none. */
static bool number(const char *s, double *v, const char **unit)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	*v = strtod(s, &end);
	*unit = end;
	return end != s;
}

/* unit_ms - milliseconds per unit, or 0 for an unknown unit. */
static double unit_ms(const char *u)
{
	return !strcmp(u, "ms") ? 1 : !strcmp(u, "s") ? 1000 : !strcmp(u, "m") ? 60000 :
	       !strcmp(u, "h") ? 3600000 : 0;
}

/* duration_ms - number plus unit to milliseconds, or -1. */
int64_t duration_ms(const char *s)
{
	double v, mult;
	const char *unit;
	if (!number(s, &v, &unit) || !(v > 0) || (mult = unit_ms(unit)) == 0)
		return -1;
	double ms = v * mult;
	if (ms > (double)DURATION_MAX_MS || ms < 1)
		return -1;
	return (int64_t)(ms + 0.5);
}

/* duration_ms_or_zero - as duration_ms, and zero ("0", "0s", "0.0m") is 0. */
int64_t duration_ms_or_zero(const char *s)
{
	double v;
	const char *unit;
	if (number(s, &v, &unit) && v == 0 && (!*unit || unit_ms(unit) > 0))
		return 0;
	return duration_ms(s);
}

/* scale_ms - apply --timeout-scale. */
int64_t scale_ms(int64_t ms, double factor)
{
	double v = (double)ms * factor + 0.5;
	if (v < 1)
		return 1;
	if (v > (double)DURATION_MAX_MS)
		return DURATION_MAX_MS;
	return (int64_t)v;
}
