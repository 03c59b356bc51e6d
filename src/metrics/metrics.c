#include "metrics/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/histogram.h"
#include "metrics/process.h"
#include "util/buf.h"

/* Bucket bounds, in seconds. Stages and files: a decode of a few ms to an LLM
 * answer of a minute. Requests: a health check to a long stream. Queue wait:
 * none at all when idle, seconds under a backlog. Fetches: a loopback
 * server's milliseconds to --url-timeout. */
static const double STAGE_LE[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static const double REQUEST_LE[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                    1, 2.5, 5, 10, 30, 60, 120, 300};
static const double QUEUE_LE[] = {0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                  0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static const double FETCH_LE[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define BOUNDS(a)                 \
    {                             \
        a, sizeof a / sizeof a[0] \
    }
static const histogram_bounds STAGE_B = BOUNDS(STAGE_LE), REQUEST_B = BOUNDS(REQUEST_LE), QUEUE_B = BOUNDS(QUEUE_LE),
                              FETCH_B = BOUNDS(FETCH_LE);

/* Every counter by route and status code (100-599): a fixed table, so that
 * counting is one atomic add; the page shows the rows that are not zero. */
#define STATUS_MIN 100
#define STATUS_MAX 599
static atomic_ullong requests[METRIC_ROUTE_COUNT][STATUS_MAX - STATUS_MIN + 1];
static histogram request_seconds[METRIC_ROUTE_COUNT];
static atomic_ullong files[FILE_OUTCOME_COUNT];
static histogram stages[STAGE_COUNT];
static atomic_int inflight;
static atomic_ullong progress_dropped;
static atomic_ullong slice_images, slice_runs;
static atomic_ullong cuts[CUT_REASON_COUNT];
static atomic_llong connections;
static atomic_int workers[POOL_COUNT], busy[POOL_COUNT];
static histogram queue_wait[POOL_COUNT];
static atomic_ullong llm_tokens[2]; /* prompt, completion */
static histogram fetches[FETCH_OUTCOME_COUNT];
/* Refusals of the per-key limits, by code (no key label: cardinality). */
static const char *REFUSED[] = {"rate_limited", "quota_exceeded", "concurrency_limited"};
#define NREFUSED (sizeof REFUSED / sizeof REFUSED[0])
static atomic_ullong refused[NREFUSED];
/* Limit checks that Redis could not answer (--redis): [0] admitted anyway, [1] refused. */
static atomic_ullong redis_errors[2];
static atomic_ullong key_lookups[2]; /* [0] the store, [1] the key cache */

/* The models change only at start and on a reload: a lock is fine. */
#define MAX_MODELS 64
typedef struct {
    char name[64], layout[24], task[24];
} model_row;
static pthread_mutex_t models_mu = PTHREAD_MUTEX_INITIALIZER;
static model_row models[MAX_MODELS];
static int nmodels;

static const char *ROUTES[METRIC_ROUTE_COUNT] = {
    [METRIC_ROUTE_PREDICT_V1] = "predict_v1",
    [METRIC_ROUTE_PREDICT_V2] = "predict_v2",
    [METRIC_ROUTE_BATCH_V1] = "batch_v1",
    [METRIC_ROUTE_BATCH_V2] = "batch_v2",
    [METRIC_ROUTE_DEEPSTACK] = "deepstack",
    [METRIC_ROUTE_HEALTHZ] = "healthz",
    [METRIC_ROUTE_READYZ] = "readyz",
    [METRIC_ROUTE_METRICS] = "metrics",
    [METRIC_ROUTE_MODELS] = "models",
    [METRIC_ROUTE_USAGE] = "usage",
    [METRIC_ROUTE_WEB] = "web",
    [METRIC_ROUTE_OTHER] = "other",
};
static const char *OUTCOMES[FILE_OUTCOME_COUNT] = {"done", "error", "cancelled"};
static const char *STAGES[STAGE_COUNT] = {"decode", "yolo", "ocr", "llm", "file"};
static const char *CUT_REASONS[CUT_REASON_COUNT] = {"header", "body"};
static const char *POOLS[POOL_COUNT] = {"cpu", "llm"};
static const char *FETCH_OUTCOMES[FETCH_OUTCOME_COUNT] = {"ok", "error", "cancelled"};

#define ADD(counter, n) atomic_fetch_add_explicit(&(counter), (n), memory_order_relaxed)
#define GET(counter) atomic_load_explicit(&(counter), memory_order_relaxed)

const char *metrics_route_name(metrics_route r)
{
    return r < METRIC_ROUTE_COUNT ? ROUTES[r] : "other";
}

void metrics_request(metrics_route route, unsigned status, double seconds)
{
    if (route >= METRIC_ROUTE_COUNT) route = METRIC_ROUTE_OTHER;
    if (status >= STATUS_MIN && status <= STATUS_MAX) ADD(requests[route][status - STATUS_MIN], 1);
    histogram_observe(&request_seconds[route], &REQUEST_B, seconds);
}

void metrics_file(metrics_file_outcome o) { ADD(files[o], 1); }
void metrics_stage_seconds(metrics_stage s, double sec) { histogram_observe(&stages[s], &STAGE_B, sec); }
void metrics_inflight_add(int d) { ADD(inflight, d); }
int metrics_inflight(void) { return GET(inflight); }
void metrics_progress_dropped(void) { ADD(progress_dropped, 1); }
void metrics_slice_runs(long n)
{
    ADD(slice_images, 1);
    ADD(slice_runs, (unsigned long long)n);
}
void metrics_conn_cut(metrics_cut_reason r) { ADD(cuts[r], 1); }
void metrics_connections_add(int d) { ADD(connections, d); }
void metrics_workers(metrics_pool p, int n) { atomic_store(&workers[p], n); }
void metrics_job_end(metrics_pool p) { ADD(busy[p], -1); }
void metrics_fetch(metrics_fetch_outcome o, double sec) { histogram_observe(&fetches[o], &FETCH_B, sec); }

void metrics_job_begin(metrics_pool p, double wait)
{
    ADD(busy[p], 1);
    histogram_observe(&queue_wait[p], &QUEUE_B, wait);
}

void metrics_limits_redis_error(bool denied) { ADD(redis_errors[denied], 1); }
void metrics_key_lookup(bool cached) { ADD(key_lookups[cached], 1); }

void metrics_refused(const char *code)
{
    for (size_t i = 0; i < NREFUSED; i++)
        if (!strcmp(code, REFUSED[i])) ADD(refused[i], 1);
}

void metrics_llm_tokens(long long prompt, long long completion)
{
    /* As the provider reported them: a negative count is nonsense, not a refund. */
    if (prompt > 0) ADD(llm_tokens[0], (unsigned long long)prompt);
    if (completion > 0) ADD(llm_tokens[1], (unsigned long long)completion);
}

void metrics_set_models(const metrics_model *m, int n)
{
    pthread_mutex_lock(&models_mu);
    nmodels = 0;
    for (int i = 0; i < n && nmodels < MAX_MODELS; i++) {
        model_row *r = &models[nmodels++];
        snprintf(r->name, sizeof r->name, "%s", m[i].name ? m[i].name : "");
        snprintf(r->layout, sizeof r->layout, "%s", m[i].layout ? m[i].layout : "");
        snprintf(r->task, sizeof r->task, "%s", m[i].task ? m[i].task : "");
    }
    pthread_mutex_unlock(&models_mu);
}

unsigned long long metrics_request_count(metrics_route route, unsigned status)
{
    return route < METRIC_ROUTE_COUNT && status >= STATUS_MIN && status <= STATUS_MAX
        ? GET(requests[route][status - STATUS_MIN])
        : 0;
}

unsigned long long metrics_file_count(metrics_file_outcome o) { return GET(files[o]); }

/* A label value as the text format wants it: backslash, quote and newline escaped. */
static void label_value(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') out[o++] = '\\';
        if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
            continue;
        }
        out[o++] = *s;
    }
    out[o] = 0;
}

static int header(buf *b, const char *name, const char *type, const char *help)
{
    return buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int render_histograms(buf *b)
{
    int failed = header(b, "sight_request_duration_seconds", "histogram",
                        "Time from a request's headers to its last byte sent (a stream's last line), by route.");
    char labels[96];
    for (int r = 0; r < METRIC_ROUTE_COUNT; r++) {
        snprintf(labels, sizeof labels, "route=\"%s\"", ROUTES[r]);
        failed |= histogram_render(b, &request_seconds[r], &REQUEST_B, "sight_request_duration_seconds", labels);
    }
    failed |= header(b, "sight_stage_duration_seconds", "histogram", "Time spent in each stage of a file's work.");
    for (int s = 0; s < STAGE_COUNT; s++) {
        snprintf(labels, sizeof labels, "stage=\"%s\"", STAGES[s]);
        failed |= histogram_render(b, &stages[s], &STAGE_B, "sight_stage_duration_seconds", labels);
    }
    failed |= header(b, "sight_queue_wait_seconds", "histogram",
                     "Time a file waited in a pool's queue before a worker took it.");
    for (int p = 0; p < POOL_COUNT; p++) {
        snprintf(labels, sizeof labels, "pool=\"%s\"", POOLS[p]);
        failed |= histogram_render(b, &queue_wait[p], &QUEUE_B, "sight_queue_wait_seconds", labels);
    }
    failed |= header(b, "sight_fetch_duration_seconds", "histogram",
                     "Time to fetch an image URL of a v2 request, redirects included, by outcome.");
    for (int o = 0; o < FETCH_OUTCOME_COUNT; o++) {
        snprintf(labels, sizeof labels, "outcome=\"%s\"", FETCH_OUTCOMES[o]);
        failed |= histogram_render(b, &fetches[o], &FETCH_B, "sight_fetch_duration_seconds", labels);
    }
    return failed;
}

static int render_counters(buf *b)
{
    int failed = header(b, "sight_http_requests_total", "counter", "HTTP requests answered, by route and status.");
    for (int r = 0; r < METRIC_ROUTE_COUNT; r++)
        for (unsigned s = STATUS_MIN; s <= STATUS_MAX; s++) {
            unsigned long long n = GET(requests[r][s - STATUS_MIN]);
            if (n) failed |= buf_printf(b, "sight_http_requests_total{route=\"%s\",status=\"%u\"} %llu\n", ROUTES[r], s, n);
        }
    failed |= header(b, "sight_files_total", "counter", "Files finished, by outcome.");
    for (int o = 0; o < FILE_OUTCOME_COUNT; o++)
        failed |= buf_printf(b, "sight_files_total{outcome=\"%s\"} %llu\n", OUTCOMES[o], GET(files[o]));
    failed |= header(b, "sight_stream_progress_dropped_total", "counter",
                     "Progress lines (llm_delta) not sent because the client was behind.");
    failed |= buf_printf(b, "sight_stream_progress_dropped_total %llu\n", GET(progress_dropped));
    failed |= header(b, "sight_slice_images_total", "counter", "Images detected in tiles (\"slice\").");
    failed |= buf_printf(b, "sight_slice_images_total %llu\n", GET(slice_images));
    failed |= header(b, "sight_slice_runs_total", "counter",
                     "Model runs of sliced images: their tiles and full passes.");
    failed |= buf_printf(b, "sight_slice_runs_total %llu\n", GET(slice_runs));
    failed |= header(b, "sight_connections_cut_total", "counter",
                     "Connections cut off because the request headers or body came too slowly.");
    for (int r = 0; r < CUT_REASON_COUNT; r++)
        failed |= buf_printf(b, "sight_connections_cut_total{reason=\"%s\"} %llu\n", CUT_REASONS[r], GET(cuts[r]));
    failed |= header(b, "sight_requests_refused_total", "counter",
                     "Requests refused by a key's rate, quota or concurrency limit, by code.");
    for (size_t i = 0; i < NREFUSED; i++)
        failed |= buf_printf(b, "sight_requests_refused_total{code=\"%s\"} %llu\n", REFUSED[i], GET(refused[i]));
    failed |= header(b, "sight_limits_redis_errors_total", "counter",
                     "Limit checks Redis could not answer (--redis), by what the request got.");
    failed |= buf_printf(b, "sight_limits_redis_errors_total{action=\"allowed\"} %llu\nsight_limits_redis_errors_total{action=\"denied\"} %llu\n",
                         GET(redis_errors[0]), GET(redis_errors[1]));
    failed |= header(b, "sight_key_lookups_total", "counter",
                     "API key checks, answered by the in-memory key cache or by the key store.");
    failed |= buf_printf(b, "sight_key_lookups_total{source=\"cache\"} %llu\nsight_key_lookups_total{source=\"store\"} %llu\n",
                         GET(key_lookups[1]), GET(key_lookups[0]));
    failed |= header(b, "sight_llm_tokens_total", "counter", "Tokens the LLM provider reported, prompt and completion.");
    failed |= buf_printf(b, "sight_llm_tokens_total{direction=\"prompt\"} %llu\nsight_llm_tokens_total{direction=\"completion\"} %llu\n",
                         GET(llm_tokens[0]), GET(llm_tokens[1]));
    return failed;
}

static int render_gauges(buf *b)
{
    int failed = header(b, "sight_requests_in_flight", "gauge", "Prediction requests being received or streamed.");
    failed |= buf_printf(b, "sight_requests_in_flight %d\n", GET(inflight));
    failed |= header(b, "sight_connections_open", "gauge", "HTTP connections open now.");
    failed |= buf_printf(b, "sight_connections_open %lld\n", GET(connections));
    failed |= header(b, "sight_workers", "gauge", "Worker threads of each pool, as configured.");
    for (int p = 0; p < POOL_COUNT; p++)
        failed |= buf_printf(b, "sight_workers{pool=\"%s\"} %d\n", POOLS[p], GET(workers[p]));
    failed |= header(b, "sight_workers_busy", "gauge", "Worker threads working on a file now.");
    for (int p = 0; p < POOL_COUNT; p++)
        failed |= buf_printf(b, "sight_workers_busy{pool=\"%s\"} %d\n", POOLS[p], GET(busy[p]));
    failed |= header(b, "sight_model_info", "gauge", "A detection model served, with its output layout and task; always 1.");
    pthread_mutex_lock(&models_mu);
    for (int i = 0; i < nmodels; i++) {
        char name[130], layout[50], task[50];
        label_value(name, sizeof name, models[i].name);
        label_value(layout, sizeof layout, models[i].layout);
        label_value(task, sizeof task, models[i].task);
        failed |= buf_printf(b, "sight_model_info{name=\"%s\",layout=\"%s\",task=\"%s\"} 1\n", name, layout, task);
    }
    pthread_mutex_unlock(&models_mu);
    failed |= header(b, "sight_build_info", "gauge", "The running build; always 1.");
    failed |= buf_printf(b, "sight_build_info{version=\"%s\"} 1\n", SIGHT_VERSION);
    return failed;
}

/* The page is some hundreds of lines; the status rows (at most routes x 500)
 * are the only part that varies. */
#define MAX_METRICS_PAGE (4u << 20)

char *metrics_render(size_t *len_out)
{
    buf b;
    buf_init(&b, MAX_METRICS_PAGE);
    int failed = render_counters(&b);
    failed |= render_gauges(&b);
    failed |= render_histograms(&b);
    failed |= process_render(&b);
    if (failed) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b, len_out);
}
