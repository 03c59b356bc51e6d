/* A prediction request: its files, the events its answer is made of,
 * and the bookkeeping that ends it with "complete" once every file is
 * settled (pipeline.c runs the files). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "pipeline/backlog.h"
#include "pipeline/request_internal.h"
#include "util/block_reuse.h"
#include "util/clock.h"
#include "util/json_out.h"
#include "util/log.h"

static void free_files(file_job *files, size_t n)
{
    for (size_t i = 0; files && i < n; i++) {
        free(files[i].filename);
        free(files[i].model);
        free(files[i].url);
        block_free(files[i].data); /* an upload's pages serve the next (block_reuse.h) */
    }
    free(files);
}

predict_request *predict_request_new(const char *request_id, char *query, json_t *params, file_job *files,
                                     size_t nfiles)
{
    predict_request *r = calloc(1, sizeof *r);
    if (r) r->events = eq_new();
    if (r) r->settled = calloc(nfiles ? nfiles : 1, sizeof *r->settled);
    if (!r || !r->events || !r->settled || (nfiles && !files)) {
        if (r) eq_free(r->events);
        if (r) free(r->settled);
        free(r);
        free(query);
        json_decref(params);
        free_files(files, nfiles);
        return NULL;
    }
    snprintf(r->request_id, sizeof r->request_id, "%s", request_id);
    r->query = query;
    r->params = params;
    r->files = files;
    r->nfiles = r->remaining = nfiles;
    atomic_init(&r->refs, 1);
    atomic_init(&r->cancelled, false);
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->park_mu, NULL);
    r->started = clock_s();
    r->usage.files = (int64_t)nfiles;
    for (size_t i = 0; i < nfiles; i++) r->usage.bytes_in += (int64_t)files[i].len;
    return r;
}

void predict_request_set_meter(predict_request *r, request_meter_fn fn, void *ctx, void (*free_ctx)(void *))
{
    r->meter = fn;
    r->meter_ctx = ctx;
    r->meter_free = free_ctx;
}

void predict_request_set_on_done(predict_request *r, request_done_fn fn, void *ctx, void (*free_ctx)(void *))
{
    r->on_done = fn;
    r->on_done_ctx = ctx;
    r->on_done_free = free_ctx;
}

double predict_request_held_since(predict_request *r)
{
    pthread_mutex_lock(&r->park_mu);
    double t = r->parked_since;
    pthread_mutex_unlock(&r->park_mu);
    return t;
}

const char *predict_request_id(const predict_request *r) { return r->request_id; }
size_t predict_request_nfiles(const predict_request *r) { return r->nfiles; }
event_queue *predict_request_events(predict_request *r) { return r->events; }

void predict_request_ref(predict_request *r) { atomic_fetch_add(&r->refs, 1); }

void preq_free_file_data(file_job *f)
{
    block_free(f->data);
    f->data = NULL;
    f->len = 0;
}

void predict_request_unref(predict_request *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1) return;
    free_files(r->files, r->nfiles);
    free(r->settled);
    free(r->query);
    json_decref(r->params);
    eq_free(r->events);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->park_mu);
    if (r->meter_free) r->meter_free(r->meter_ctx);
    if (r->on_done_free) r->on_done_free(r->on_done_ctx);
    free(r);
}

void predict_request_cancel(predict_request *r)
{
    atomic_store(&r->cancelled, true);
    /* A video's frame lines wait for the reader no longer. */
    eq_stop_waits(r->events);
    /* Files parked for a slow client go back to be skipped: nothing else
     * would ever settle them. */
    if (r->requeue) backlog_release(r);
}

void preq_push(predict_request *r, ev_kind kind, size_t i, json_t *obj)
{
    /* Written once, by whoever answers (event_queue.h). */
    if (!obj) log_req(LOG_ERROR, r->request_id, "could not make an event (out of memory)");
    else eq_push(r->events, (stream_event){.kind = kind, .index = i, .obj = obj});
}

/* The request's last event. */
static void push_end(predict_request *r, ev_end end, json_t *obj)
{
    if (!obj) log_req(LOG_ERROR, r->request_id, "could not make the last event (out of memory)");
    else eq_push(r->events, (stream_event){.kind = EV_END, .end = end, .index = EV_NO_FILE, .obj = obj});
}

json_t *preq_file_event(const char *status, size_t index, const file_job *f)
{
    return json_pack("{s:s,s:I,s:o}", "status", status, "index", (json_int_t)index, "filename",
                     json_string_lossy(f->filename, f->filename_len));
}

json_t *preq_error_event(size_t index, const file_job *f, const char *code, const char *message)
{
    json_t *ev = preq_file_event("error", index, f);
    json_object_set_new(ev, "error", json_pack("{s:s,s:o}", "code", code, "message", json_string_lossy(message, strlen(message))));
    return ev;
}

/* Progress lines are worth sending only to a client that keeps up. Once the
 * events waiting unread in a request's queue hold this many bytes (see
 * event_queue.c) they are dropped, which bounds what a client that stops
 * reading can make the server hold (the done line still carries the whole
 * answer). */
#define PROGRESS_MAX_QUEUED (1u << 20)


void preq_emit_line(void *ctx, json_t *event)
{
    emit_ctx *ec = ctx;
    const file_job *f = &ec->r->files[ec->index];
    /* Once one is dropped, the file's later ones go too: the deltas a client
     * does see always join up into a prefix of the answer. */
    if (ec->dropping) {
        json_decref(event);
        metrics_progress_dropped();
        return;
    }
    json_object_set_new(event, "index", json_integer((json_int_t)ec->index));
    json_object_set_new(event, "filename", json_string_lossy(f->filename, f->filename_len));
    const char *st = json_string_value(json_object_get(event, "status"));
    stream_event ev = {.kind = st && !strcmp(st, "llm_delta") ? EV_LLM_DELTA : EV_PROGRESS, .index = ec->index, .obj = event};
    if (eq_push_unless_behind(ec->r->events, ev, PROGRESS_MAX_QUEUED) == 1) {
        ec->dropping = true;
        metrics_progress_dropped();
        log_req(LOG_INFO, ec->r->request_id, "client is %u KiB behind; no more progress lines for file %zu",
                PROGRESS_MAX_QUEUED >> 10, ec->index);
    }
}

/* Frame lines wait (the decoder with them) while this much is unread. */
#define FRAMES_MAX_QUEUED (256u << 10)

void preq_emit_frame(void *ctx, json_t *event)
{
    emit_ctx *ec = ctx;
    const file_job *f = &ec->r->files[ec->index];
    /* Other lines of a video (is_llm's llm_delta) go as they do for an image. */
    const char *st = json_string_value(json_object_get(event, "status"));
    if (st && strcmp(st, "frame")) {
        preq_emit_line(ctx, event);
        return;
    }
    /* status, index and filename first, as on every line. */
    json_t *line = preq_file_event("frame", ec->index, f);
    const char *k;
    json_t *v;
    json_object_foreach(event, k, v)
        if (strcmp(k, "status")) json_object_set(line, k, v);
    json_decref(event);
    /* Asleep until the client has read its way under the budget. A client
     * that stops reading is closed after --client-timeout, which cancels the
     * request and so ends this wait (predict_request_cancel). */
    eq_wait_room(ec->r->events, FRAMES_MAX_QUEUED);
    preq_push(ec->r, EV_FRAME, ec->index, line);
}

/* The request's work is over (r->mu held). */
static void work_done(predict_request *r)
{
    eq_close(r->events);
    r->ended = true;
    request_done_fn fn = r->on_done;
    r->on_done = NULL;
    if (fn) fn(r->on_done_ctx);
}

/* The "complete" line, then EOF. Called with r->mu held. The meter runs
 * first: a client that has seen "complete" can rely on the use being
 * recorded (it only blocks this request's own threads). */
static void close_stream(predict_request *r)
{
    r->usage.succeeded = (int64_t)r->succeeded;
    r->usage.failed = (int64_t)r->failed;
    int metered = r->meter ? r->meter(r->meter_ctx, &r->usage) : 0;
    r->meter = NULL;
    if (metered != 0) {
        /* Not "complete": that promises the use is in the ledger. */
        push_end(r, END_LEDGER_UNAVAILABLE, json_pack("{s:s,s:{s:s,s:s}}", "status", "error", "error", "code", "ledger_unavailable", "message", "the results were sent but their use could not be recorded in time"));
        work_done(r);
        return;
    }
    json_t *c = json_pack("{s:s,s:I,s:I,s:I,s:f}", "status", "complete", "total", (json_int_t)r->nfiles,
                          "succeeded", (json_int_t)r->succeeded, "failed", (json_int_t)r->failed,
                          "time_ms", (clock_s() - r->started) * 1000.0);
    push_end(r, END_COMPLETE, c);
    work_done(r);
}

/* Records file i's outcome with its line (ev; NULL = none, for a cancelled
 * file) and closes the stream with "complete" after the last file. Pushing
 * under r->mu keeps the line and the bookkeeping together, so that
 * predict_request_end sees each file either settled with its line sent or not
 * at all; an outcome that arrives after it is dropped. */
void preq_finish_file(predict_request *r, size_t i, json_t *ev, bool ok)
{
    pthread_mutex_lock(&r->mu);
    if (r->ended || r->settled[i]) {
        pthread_mutex_unlock(&r->mu);
        json_decref(ev);
        return;
    }
    r->settled[i] = true;
    if (ev && ok) stages_count_result(&r->usage, json_object_get(ev, "result"));
    if (ev) preq_push(r, ok ? EV_DONE : EV_ERROR, i, ev);
    if (ok) r->succeeded++;
    else r->failed++;
    if (--r->remaining == 0) close_stream(r);
    pthread_mutex_unlock(&r->mu);
}

void predict_request_end(predict_request *r, const char *code, const char *message)
{
    predict_request_cancel(r);
    pthread_mutex_lock(&r->mu);
    if (!r->ended) {
        for (size_t i = 0; i < r->nfiles; i++) {
            if (r->settled[i]) continue;
            r->settled[i] = true;
            r->failed++;
            r->remaining--;
            preq_push(r, EV_ERROR, i, preq_error_event(i, &r->files[i], code, message));
        }
        close_stream(r);
    }
    pthread_mutex_unlock(&r->mu);
}

/* A file's stages are over: its done or error line. */
void preq_report(predict_request *r, size_t i, double t0, json_t *result, const sight_error *err)
{
    file_job *f = &r->files[i];
    if (result) {
        json_t *ev = preq_file_event("done", i, f);
        json_object_set_new(ev, "result", result);
        metrics_file(FILE_DONE);
        preq_finish_file(r, i, ev, true);
    } else {
        metrics_file(strcmp(err->code, "cancelled") ? FILE_ERROR : FILE_CANCELLED);
        preq_finish_file(r, i, preq_error_event(i, f, err->code, err->message), false);
    }
    metrics_stage_seconds(STAGE_FILE, clock_s() - t0);
}
