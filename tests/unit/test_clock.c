#include <errno.h>
#include <pthread.h>

#include "check.h"
#include "util/clock.h"

/* A timed wait on a clock_cond_init cv with a clock_deadline ends after about
 * that long on the monotonic clock: not at once (a deadline read on another
 * clock would be decades in the past or future), not late. */
int main(void)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    CHECK_EQ_INT(clock_cond_init(&cv), 0);
    pthread_mutex_lock(&mu);
    double t0 = clock_s();
    struct timespec dl = clock_deadline(0.05);
    int rc = 0;
    while (rc == 0) rc = pthread_cond_timedwait(&cv, &mu, &dl);
    double waited = clock_s() - t0;
    pthread_mutex_unlock(&mu);
    CHECK_EQ_INT(rc, ETIMEDOUT);
    CHECK(waited >= 0.049);
    CHECK(waited < 2.0);
    /* A deadline in the past (or now) returns at once. */
    pthread_mutex_lock(&mu);
    dl = clock_deadline(0);
    t0 = clock_s();
    CHECK_EQ_INT(pthread_cond_timedwait(&cv, &mu, &dl), ETIMEDOUT);
    CHECK(clock_s() - t0 < 0.5);
    pthread_mutex_unlock(&mu);
    /* Nanoseconds stay normalised for a fractional wait. */
    dl = clock_deadline(1.999999);
    CHECK(dl.tv_nsec >= 0 && dl.tv_nsec < 1000000000);
    pthread_cond_destroy(&cv);
    return check_report("clock");
}
