/* Monotonic time, for durations and deadlines (never the wall clock). */
#ifndef SIGHT_UTIL_CLOCK_H
#define SIGHT_UTIL_CLOCK_H
#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Seconds since an arbitrary start. */
double clock_s(void);
/* Milliseconds since the same start. */
double clock_ms(void);
/* Nanoseconds since the same start. */
int64_t clock_ns(void);

/* The wall clock, in milliseconds since 1970: for timestamps that are
 * stored or shown (a job's created_at, a webhook's next try), never for a
 * duration or a wait. */
int64_t clock_unix_ms(void);

/* Timed waits on the monotonic clock: a wall clock stepped back would stall
 * a pthread_cond_timedwait on CLOCK_REALTIME (a probe that never runs), one
 * stepped forward would end it early (a commit that times out at once).
 * clock_cond_init makes cv's timed waits use CLOCK_MONOTONIC; returns
 * pthread_cond_init's result. */
int clock_cond_init(pthread_cond_t *cv);
/* The deadline s seconds from now, for a timed wait on such a cv. */
struct timespec clock_deadline(double s);
#endif
