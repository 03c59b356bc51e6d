/* Monotonic time, for durations and deadlines (never the wall clock). */
#ifndef SIGHT_UTIL_CLOCK_H
#define SIGHT_UTIL_CLOCK_H
#include <stdint.h>

/* Seconds since an arbitrary start. */
double clock_s(void);
/* Milliseconds since the same start. */
double clock_ms(void);
/* Nanoseconds since the same start. */
int64_t clock_ns(void);
#endif
