/* clock.h - monotonic time in milliseconds (vDSO, no syscall). */
#ifndef VOLLEY_CLOCK_H
#define VOLLEY_CLOCK_H
#include <stdint.h>

/* clock_ms - monotonic milliseconds, coarse (a few ms resolution). */
int64_t clock_ms(void);

/* clock_ms_precise - monotonic milliseconds, precise. */
int64_t clock_ms_precise(void);

/* clock_us - monotonic microseconds, precise. */
int64_t clock_us(void);

#endif
