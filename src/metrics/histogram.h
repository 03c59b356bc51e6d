/* A Prometheus histogram with fixed buckets, recorded without a lock: one
 * atomic add for the bucket the value falls in, one for the sum. Counts are
 * kept per interval and made cumulative when read, so _count always equals
 * the +Inf bucket of the same scrape. A histogram is all zeros to start (a
 * static one needs no set-up); its bucket bounds are passed with each call. */
#ifndef SIGHT_METRICS_HISTOGRAM_H
#define SIGHT_METRICS_HISTOGRAM_H

#include <stdatomic.h>
#include <stddef.h>

#include "util/buf.h"

#define HISTOGRAM_MAX_BUCKETS 20

typedef struct {
    const double *le; /* upper bounds, ascending, +Inf not included */
    size_t n;         /* at most HISTOGRAM_MAX_BUCKETS (more are ignored) */
} histogram_bounds;

typedef struct {
    atomic_ullong counts[HISTOGRAM_MAX_BUCKETS + 1]; /* per interval; the last is above every bound */
    atomic_ullong sum_ns;                            /* the sum in nanoseconds (shown in seconds) */
} histogram;

/* Records one value in seconds; negative values and NaN count as 0. */
void histogram_observe(histogram *h, const histogram_bounds *b, double seconds);

typedef struct {
    unsigned long long cumulative[HISTOGRAM_MAX_BUCKETS + 1]; /* [i]: values <= le[i]; [n]: all */
    unsigned long long count;
    double sum;
} histogram_snapshot;
void histogram_read(histogram *h, const histogram_bounds *b, histogram_snapshot *s);

/* The _bucket, _sum and _count lines of one series. labels: "" or
 * `key="value"` pairs (escaped) that go before le. 0, or a buf error. */
int histogram_render(buf *out, histogram *h, const histogram_bounds *b, const char *name, const char *labels);

#endif
