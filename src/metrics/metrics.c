#include "metrics/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

static const double BUCKETS[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NBUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])
#define MAX_STATUS_ROWS 128

typedef struct {
    metrics_route route;
    unsigned status;
    unsigned long long n;
} status_row;
typedef struct {
    unsigned long long bucket[NBUCKETS], count;
    double sum;
} histogram;

/* One lock: updates are a handful per file, far below any contention that matters. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static status_row rows[MAX_STATUS_ROWS];
static size_t nrows;
static unsigned long long files[FILE_OUTCOME_COUNT];
static histogram stages[STAGE_COUNT];
static int inflight;
static unsigned long long progress_dropped;
static unsigned long long cuts[CUT_REASON_COUNT];
/* Refusals of the per-key limits, by code (no key label: cardinality). */
static const char *REFUSED[] = {"rate_limited", "quota_exceeded", "concurrency_limited"};
#define NREFUSED (sizeof REFUSED / sizeof REFUSED[0])
static unsigned long long refused[NREFUSED];
static unsigned long long key_lookups[2]; /* [0] the store, [1] the key cache */

static const char *ROUTES[METRIC_ROUTE_COUNT] = {
    [METRIC_ROUTE_PREDICT_V1] = "predict_v1",
    [METRIC_ROUTE_PREDICT_V2] = "predict_v2",
    [METRIC_ROUTE_BATCH_V1] = "batch_v1",
    [METRIC_ROUTE_BATCH_V2] = "batch_v2",
    [METRIC_ROUTE_HEALTHZ] = "healthz",
    [METRIC_ROUTE_READYZ] = "readyz",
    [METRIC_ROUTE_METRICS] = "metrics",
    [METRIC_ROUTE_WEB] = "web",
    [METRIC_ROUTE_OTHER] = "other",
};
static const char *OUTCOMES[FILE_OUTCOME_COUNT] = {"done", "error", "cancelled"};
static const char *STAGES[STAGE_COUNT] = {"decode", "yolo", "ocr", "llm", "file"};
static const char *CUT_REASONS[CUT_REASON_COUNT] = {"header", "body"};

const char *metrics_route_name(metrics_route r) { return r < METRIC_ROUTE_COUNT ? ROUTES[r] : "other"; }

void metrics_request(metrics_route route, unsigned status)
{
    pthread_mutex_lock(&mu);
    size_t i;
    for (i = 0; i < nrows; i++)
        if (rows[i].route == route && rows[i].status == status) break;
    if (i == nrows && nrows < MAX_STATUS_ROWS) rows[nrows++] = (status_row){route, status, 0};
    if (i < nrows) rows[i].n++;
    pthread_mutex_unlock(&mu);
}

void metrics_file(metrics_file_outcome o)
{
    pthread_mutex_lock(&mu);
    files[o]++;
    pthread_mutex_unlock(&mu);
}

void metrics_stage_seconds(metrics_stage s, double sec)
{
    pthread_mutex_lock(&mu);
    histogram *h = &stages[s];
    for (size_t b = 0; b < NBUCKETS; b++)
        if (sec <= BUCKETS[b]) h->bucket[b]++;
    h->count++;
    h->sum += sec;
    pthread_mutex_unlock(&mu);
}

void metrics_inflight_add(int d)
{
    pthread_mutex_lock(&mu);
    inflight += d;
    pthread_mutex_unlock(&mu);
}

void metrics_key_lookup(bool cached)
{
    pthread_mutex_lock(&mu);
    key_lookups[cached]++;
    pthread_mutex_unlock(&mu);
}

void metrics_refused(const char *code)
{
    for (size_t i = 0; i < NREFUSED; i++)
        if (!strcmp(code, REFUSED[i])) {
            pthread_mutex_lock(&mu);
            refused[i]++;
            pthread_mutex_unlock(&mu);
        }
}

void metrics_progress_dropped(void)
{
    pthread_mutex_lock(&mu);
    progress_dropped++;
    pthread_mutex_unlock(&mu);
}

void metrics_conn_cut(metrics_cut_reason r)
{
    pthread_mutex_lock(&mu);
    cuts[r]++;
    pthread_mutex_unlock(&mu);
}

int metrics_inflight(void)
{
    pthread_mutex_lock(&mu);
    int v = inflight;
    pthread_mutex_unlock(&mu);
    return v;
}

unsigned long long metrics_request_count(metrics_route route, unsigned status)
{
    unsigned long long n = 0;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nrows; i++)
        if (rows[i].route == route && rows[i].status == status) n = rows[i].n;
    pthread_mutex_unlock(&mu);
    return n;
}

unsigned long long metrics_file_count(metrics_file_outcome o)
{
    pthread_mutex_lock(&mu);
    unsigned long long n = files[o];
    pthread_mutex_unlock(&mu);
    return n;
}

/* The page is a few hundred lines (MAX_STATUS_ROWS bounds the only variable part). */
#define MAX_METRICS_PAGE (1u << 20)

char *metrics_render(size_t *len_out)
{
    buf b;
    buf_init(&b, MAX_METRICS_PAGE);
    int failed = 0;
    pthread_mutex_lock(&mu);
    failed |= buf_printf(&b, "# HELP sight_http_requests_total HTTP requests answered, by route and status.\n"
                             "# TYPE sight_http_requests_total counter\n");
    for (size_t i = 0; i < nrows; i++)
        failed |= buf_printf(&b, "sight_http_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
                             ROUTES[rows[i].route], rows[i].status, rows[i].n);
    failed |= buf_printf(&b, "# HELP sight_files_total Files finished, by outcome.\n# TYPE sight_files_total counter\n");
    for (int o = 0; o < FILE_OUTCOME_COUNT; o++)
        failed |= buf_printf(&b, "sight_files_total{outcome=\"%s\"} %llu\n", OUTCOMES[o], files[o]);
    failed |= buf_printf(&b, "# HELP sight_stage_duration_seconds Time spent in each stage of a file's work.\n"
                             "# TYPE sight_stage_duration_seconds histogram\n");
    for (int s = 0; s < STAGE_COUNT; s++) {
        const histogram *h = &stages[s];
        for (size_t k = 0; k < NBUCKETS; k++)
            failed |= buf_printf(&b, "sight_stage_duration_seconds_bucket{stage=\"%s\",le=\"%g\"} %llu\n", STAGES[s], BUCKETS[k], h->bucket[k]);
        failed |= buf_printf(&b, "sight_stage_duration_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n", STAGES[s], h->count);
        failed |= buf_printf(&b, "sight_stage_duration_seconds_sum{stage=\"%s\"} %.6f\n", STAGES[s], h->sum);
        failed |= buf_printf(&b, "sight_stage_duration_seconds_count{stage=\"%s\"} %llu\n", STAGES[s], h->count);
    }
    failed |= buf_printf(&b, "# HELP sight_requests_in_flight Prediction requests being received or streamed.\n"
                             "# TYPE sight_requests_in_flight gauge\nsight_requests_in_flight %d\n",
                         inflight);
    failed |= buf_printf(&b, "# HELP sight_stream_progress_dropped_total Progress lines (llm_delta) not sent because the client was behind.\n"
                             "# TYPE sight_stream_progress_dropped_total counter\nsight_stream_progress_dropped_total %llu\n",
                         progress_dropped);
    failed |= buf_printf(&b, "# HELP sight_connections_cut_total Connections cut off because the request headers or body came too slowly.\n"
                             "# TYPE sight_connections_cut_total counter\n");
    for (int r = 0; r < CUT_REASON_COUNT; r++)
        failed |= buf_printf(&b, "sight_connections_cut_total{reason=\"%s\"} %llu\n", CUT_REASONS[r], cuts[r]);
    failed |= buf_printf(&b, "# HELP sight_requests_refused_total Requests refused by a key's rate, quota or concurrency limit.\n"
                             "# TYPE sight_requests_refused_total counter\n");
    for (size_t i = 0; i < NREFUSED; i++)
        failed |= buf_printf(&b, "sight_requests_refused_total{code=\"%s\"} %llu\n", REFUSED[i], refused[i]);
    failed |= buf_printf(&b, "# HELP sight_key_lookups_total API key checks, answered by the in-memory key cache or by the key store.\n"
                             "# TYPE sight_key_lookups_total counter\nsight_key_lookups_total{source=\"cache\"} %llu\n"
                             "sight_key_lookups_total{source=\"store\"} %llu\n",
                         key_lookups[1], key_lookups[0]);
    pthread_mutex_unlock(&mu);
    if (failed) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b, len_out);
}
