/* Process-wide metrics exposed at GET /metrics in the Prometheus text format.
 * Recording is lock-free (atomic adds): it sits on every request's and every
 * file's path. Labels are fixed sets (routes, codes, pools); never per key. */
#ifndef SIGHT_METRICS_H
#define SIGHT_METRICS_H

#include <stdbool.h>
#include <stddef.h>

/* The label of a request's counter; the HTTP layer maps its own routes onto it. */
typedef enum {
    METRIC_ROUTE_PREDICT_V1 = 0,
    METRIC_ROUTE_PREDICT_V2,
    METRIC_ROUTE_BATCH_V1,
    METRIC_ROUTE_BATCH_V2,
    METRIC_ROUTE_DEEPSTACK,
    METRIC_ROUTE_HEALTHZ,
    METRIC_ROUTE_READYZ,
    METRIC_ROUTE_METRICS,
    METRIC_ROUTE_MODELS,
    METRIC_ROUTE_USAGE,
    METRIC_ROUTE_WEB,
    METRIC_ROUTE_OTHER,
    METRIC_ROUTE_COUNT
} metrics_route;
typedef enum { FILE_DONE = 0,
               FILE_ERROR,
               FILE_CANCELLED,
               FILE_OUTCOME_COUNT } metrics_file_outcome;
typedef enum { CUT_HEADER = 0,
               CUT_BODY,
               CUT_REASON_COUNT } metrics_cut_reason;
typedef enum { STAGE_DECODE = 0,
               STAGE_YOLO,
               STAGE_OCR,
               STAGE_LLM,
               STAGE_FILE,
               STAGE_COUNT } metrics_stage;
/* The pipeline's worker pools: decode and CPU stages, and the llm stage. */
typedef enum { POOL_CPU = 0,
               POOL_LLM,
               POOL_COUNT } metrics_pool;
typedef enum { FETCH_OK = 0,
               FETCH_ERROR,
               FETCH_CANCELLED,
               FETCH_OUTCOME_COUNT } metrics_fetch_outcome;

/* A request answered (or ended) with status after seconds (for a stream: to its last line). */
void metrics_request(metrics_route route, unsigned status, double seconds);
void metrics_file(metrics_file_outcome outcome);
void metrics_stage_seconds(metrics_stage stage, double seconds);
void metrics_inflight_add(int delta);
int metrics_inflight(void);
void metrics_progress_dropped(void);
/* Sliced detection: n model runs (tiles and the full pass) of one image. */
void metrics_slice_runs(long n);
/* A request refused by a per-key limit: code rate_limited, quota_exceeded or concurrency_limited. */
void metrics_refused(const char *code);
/* A limit check Redis could not answer (--redis): admitted anyway, or denied
 * (--limits-on-redis-error deny). */
void metrics_limits_redis_error(bool denied);
/* An API key check answered by the key cache (cached) or the key store. */
void metrics_key_lookup(bool cached);
/* A connection cut off by a request deadline (http/front/conn_guard.c). */
void metrics_conn_cut(metrics_cut_reason reason);
/* Connections opened (+1) and closed (-1). */
void metrics_connections_add(int delta);

/* The threads of a pool (set when the pool starts). */
void metrics_workers(metrics_pool pool, int n);
/* A worker of pool takes a file that waited queue_wait seconds; and is done with it. */
void metrics_job_begin(metrics_pool pool, double queue_wait);
void metrics_job_end(metrics_pool pool);

/* Tokens an LLM provider reported for one answer. */
void metrics_llm_tokens(long long prompt, long long completion);
/* One image URL fetched (or not), from the request to the last byte. */
void metrics_fetch(metrics_fetch_outcome outcome, double seconds);

/* The detection models now served, for sight_model_info (copied). */
typedef struct {
    const char *name, *layout, *task;
} metrics_model;
void metrics_set_models(const metrics_model *models, int n);

const char *metrics_route_name(metrics_route r);

/* Renders everything; returns malloc'd text. */
char *metrics_render(size_t *len_out);

/* Test support: current value of one counter. */
unsigned long long metrics_request_count(metrics_route route, unsigned status);
unsigned long long metrics_file_count(metrics_file_outcome outcome);

#endif
