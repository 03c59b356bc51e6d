#include "metrics/histogram.h"

#include <math.h>

static size_t nbounds(const histogram_bounds *b)
{
    return b->n > HISTOGRAM_MAX_BUCKETS ? HISTOGRAM_MAX_BUCKETS : b->n;
}

void histogram_observe(histogram *h, const histogram_bounds *b, double seconds)
{
    if (!(seconds > 0)) seconds = 0; /* NaN too */
    /* A linear scan: at most 20 comparisons, cheaper than the atomic adds. */
    size_t i = 0, n = nbounds(b);
    while (i < n && seconds > b->le[i]) i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    /* 2^64 ns is 584 years: the sum cannot wrap in practice; one absurd value is capped. */
    double ns = seconds * 1e9;
    atomic_fetch_add_explicit(&h->sum_ns, ns < 1e18 ? (unsigned long long)llround(ns) : 1000000000000000000ULL,
                              memory_order_relaxed);
}

void histogram_read(histogram *h, const histogram_bounds *b, histogram_snapshot *s)
{
    unsigned long long run = 0;
    size_t n = nbounds(b);
    for (size_t i = 0; i <= n; i++) {
        run += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        s->cumulative[i] = run;
    }
    s->count = run;
    s->sum = (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9;
}

int histogram_render(buf *out, histogram *h, const histogram_bounds *b, const char *name, const char *labels)
{
    histogram_snapshot s;
    histogram_read(h, b, &s);
    const char *sep = labels[0] ? "," : "";
    int failed = 0;
    for (size_t i = 0; i < nbounds(b); i++)
        failed |= buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, b->le[i], s.cumulative[i]);
    failed |= buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, s.count);
    if (labels[0])
        failed |= buf_printf(out, "%s_sum{%s} %.12g\n%s_count{%s} %llu\n", name, labels, s.sum, name, labels, s.count);
    else
        failed |= buf_printf(out, "%s_sum %.12g\n%s_count %llu\n", name, s.sum, name, s.count);
    return failed;
}
