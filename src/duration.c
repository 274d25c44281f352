/* duration.c - parsing "500ms" / "40s" / "5m" / "1h" durations. */
#include "duration.h"
#include <stdlib.h>
#include <string.h>

/* duration_ms - number plus unit to milliseconds, or -1. */
int64_t duration_ms(const char *s)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	double v = strtod(s, &end);
	if (end == s || !(v > 0))
		return -1;
	double mult;
	if (!strcmp(end, "ms"))
		mult = 1;
	else if (!strcmp(end, "s"))
		mult = 1000;
	else if (!strcmp(end, "m"))
		mult = 60000;
	else if (!strcmp(end, "h"))
		mult = 3600000;
	else
		return -1;
	double ms = v * mult;
	if (ms > (double)DURATION_MAX_MS || ms < 1)
		return -1;
	return (int64_t)(ms + 0.5);
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
