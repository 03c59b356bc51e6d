/* What pipeline.c and request.c share about a predict_request: the
 * request's state, and the events and bookkeeping of its files. */
#ifndef SIGHT_PIPELINE_REQUEST_INTERNAL_H
#define SIGHT_PIPELINE_REQUEST_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "pipeline/pipeline.h"

struct predict_request {
    char request_id[40];
    char *query;    /* NULL when absent */
    json_t *params; /* per-request stage options, NULL when none */
    file_job *files;
    size_t nfiles;
    event_queue *events;

    atomic_int refs;
    atomic_bool cancelled;
    pthread_mutex_t mu; /* guards the counters below */
    size_t remaining, succeeded, failed;
    bool *settled;  /* per file: its done/error line is out */
    bool ended;     /* "complete" is out and the queue closed */
    double started; /* monotonic seconds */
    request_usage usage;
    request_meter_fn meter;
    void *meter_ctx;
    void (*meter_free)(void *);
    request_done_fn on_done; /* once, when the last line is queued */
    void *on_done_ctx;
    void (*on_done_free)(void *);

    /* Back-pressure (backlog.c): jobs waiting for the client to read. */
    pthread_mutex_t park_mu;
    struct parked *parked;
    double parked_since; /* monotonic seconds; 0 when nothing is parked */
    void (*requeue)(void *pipe, void *job);
    void *pipe;
};

/* Extra lines a stage streams while it works (e.g. llm_delta). */
typedef struct {
    predict_request *r;
    size_t index;
    bool dropping;
} emit_ctx;

/* A file's data is no longer needed (decoded, or the file is settled). */
void preq_free_file_data(file_job *f);
/* Queues obj (taken) as an event of kind about file i. */
void preq_push(predict_request *r, ev_kind kind, size_t i, json_t *obj);
json_t *preq_file_event(const char *status, size_t index, const file_job *f);
json_t *preq_error_event(size_t index, const file_job *f, const char *code, const char *message);
/* A stage's extra line (ctx: an emit_ctx). */
void preq_emit_line(void *ctx, json_t *event);
/* A video's frame line (ctx: an emit_ctx): never dropped; it waits while the
 * client is behind, so a slow reader holds back decoding. */
void preq_emit_frame(void *ctx, json_t *event);
/* Records file i's outcome with its done (ok) or error event (ev, taken;
 * NULL: none). */
void preq_finish_file(predict_request *r, size_t i, json_t *ev, bool ok);
/* A file's stages are over: its done or error line (t0: when it began). */
void preq_report(predict_request *r, size_t i, double t0, json_t *result, const sight_error *err);

#endif
