/* Process-wide counters exposed at GET /metrics in the Prometheus text format. */
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
    METRIC_ROUTE_HEALTHZ,
    METRIC_ROUTE_READYZ,
    METRIC_ROUTE_METRICS,
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

void metrics_request(metrics_route route, unsigned status);
void metrics_file(metrics_file_outcome outcome);
void metrics_stage_seconds(metrics_stage stage, double seconds);
void metrics_inflight_add(int delta);
int metrics_inflight(void);
void metrics_progress_dropped(void);
/* A request refused by a per-key limit: code rate_limited, quota_exceeded or concurrency_limited. */
void metrics_refused(const char *code);
/* An API key check answered by the key cache (cached) or the key store. */
void metrics_key_lookup(bool cached);
/* A connection cut off by a request deadline (http/conn_guard.c). */
void metrics_conn_cut(metrics_cut_reason reason);

const char *metrics_route_name(metrics_route r);

/* Renders everything; returns malloc'd text. */
char *metrics_render(size_t *len_out);

/* Test support: current value of one counter. */
unsigned long long metrics_request_count(metrics_route route, unsigned status);
unsigned long long metrics_file_count(metrics_file_outcome outcome);

#endif
