#include "pipeline/pipeline.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics/metrics.h"
#include "util/json_out.h"
#include "util/log.h"

typedef struct job {
    struct job *next;
    predict_request *req;
    size_t index;
} job;

struct pipeline {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    bool stopping;
    int nworkers;
    pthread_t *threads;
    stage_set stages;
    fetcher *fetch;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

predict_request *predict_request_new(void)
{
    predict_request *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->events = eq_new();
    if (!r->events) { free(r); return NULL; }
    atomic_init(&r->refs, 1);
    atomic_init(&r->cancelled, false);
    pthread_mutex_init(&r->mu, NULL);
    r->started = now_s();
    return r;
}

void predict_request_ref(predict_request *r) { atomic_fetch_add(&r->refs, 1); }

static void free_file_data(file_job *f)
{
    free(f->data);
    f->data = NULL;
    f->len = 0;
}

void predict_request_unref(predict_request *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1) return;
    for (size_t i = 0; i < r->nfiles; i++) {
        free(r->files[i].filename);
        free(r->files[i].url);
        free_file_data(&r->files[i]);
    }
    free(r->files);
    free(r->query);
    json_decref(r->params);
    eq_free(r->events);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int predict_request_add_file(predict_request *r, file_job job)
{
    file_job *nf = realloc(r->files, (r->nfiles + 1) * sizeof *nf);
    if (!nf) return -1;
    r->files = nf;
    r->files[r->nfiles++] = job;
    return 0;
}

void predict_request_cancel(predict_request *r) { atomic_store(&r->cancelled, true); }

static void push_line(predict_request *r, json_t *obj)
{
    size_t len;
    char *line = json_line(obj, &len);
    if (line) eq_push(r->events, line, len);
    else log_error("request %s: could not serialise an event", r->request_id);
}

static json_t *file_event(const char *status, size_t index, const file_job *f)
{
    return json_pack("{s:s,s:I,s:o}", "status", status, "index", (json_int_t)index, "filename",
                     json_string_lossy(f->filename, f->filename_len));
}

/* Progress lines are worth sending only to a client that keeps up. Past this
 * many unread bytes in a request's queue they are dropped, which bounds what a
 * client that stops reading can make the server hold (the done line still
 * carries the whole answer). */
#define PROGRESS_MAX_QUEUED (1u << 20)

/* Extra lines a stage streams while it works (e.g. llm_delta). */
typedef struct { predict_request *r; size_t index; bool dropping; } emit_ctx;

static void emit_line(void *ctx, json_t *event)
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
    size_t len;
    char *line = json_line(event, &len);
    if (!line) return;
    if (eq_push_unless_behind(ec->r->events, line, len, PROGRESS_MAX_QUEUED) == 1) {
        ec->dropping = true;
        metrics_progress_dropped();
        log_info("request %s: client is %u KiB behind; no more progress lines for file %zu", ec->r->request_id,
                 PROGRESS_MAX_QUEUED >> 10, ec->index);
    }
}

/* Records one file's outcome; the last file closes the stream with "complete". */
static void finish_file(predict_request *r, bool ok)
{
    pthread_mutex_lock(&r->mu);
    if (ok) r->succeeded++;
    else r->failed++;
    bool last = --r->remaining == 0;
    pthread_mutex_unlock(&r->mu);
    if (!last) return;
    json_t *c = json_pack("{s:s,s:I,s:I,s:I,s:f}", "status", "complete", "total", (json_int_t)r->nfiles,
                          "succeeded", (json_int_t)r->succeeded, "failed", (json_int_t)r->failed,
                          "time_ms", (now_s() - r->started) * 1000.0);
    push_line(r, c);
    eq_close(r->events);
}

static void run_job(pipeline *p, predict_request *r, size_t i)
{
    file_job *f = &r->files[i];
    if (atomic_load(&r->cancelled)) {
        /* Nobody is listening: skip the work, still account for the file. */
        metrics_file(FILE_CANCELLED);
        free_file_data(f);
        finish_file(r, false);
        return;
    }
    double t0 = now_s();
    push_line(r, file_event("processing", i, f));
    stage_error err = {{0}, {0}};
    emit_ctx ec = {r, i, false};
    stage_call call = {r->query, r->params, f, &r->cancelled, emit_line, &ec};
    json_t *result = stages_run_file(&p->stages, &call, &err);
    free_file_data(f);  /* the bytes are not needed any more; give the memory back early */
    if (result) {
        json_t *ev = file_event("done", i, f);
        json_object_set_new(ev, "result", result);
        push_line(r, ev);
        metrics_file(FILE_DONE);
    } else {
        json_t *ev = file_event("error", i, f);
        json_object_set_new(ev, "error", json_pack("{s:s,s:o}", "code", err.code, "message",
                                                   json_string_lossy(err.message, strlen(err.message))));
        push_line(r, ev);
        metrics_file(strcmp(err.code, "cancelled") ? FILE_ERROR : FILE_CANCELLED);
    }
    metrics_stage_seconds(STAGE_FILE, now_s() - t0);
    finish_file(r, result != NULL);
}

static void *worker(void *arg)
{
    pipeline *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->stopping) pthread_cond_wait(&p->cv, &p->mu);
        job *j = p->head;
        if (j) {
            p->head = j->next;
            if (!p->head) p->tail = NULL;
        }
        bool stop = p->stopping;
        pthread_mutex_unlock(&p->mu);
        if (!j) break;
        if (stop) predict_request_cancel(j->req);
        run_job(p, j->req, j->index);
        predict_request_unref(j->req);
        free(j);
    }
    return NULL;
}

pipeline *pipeline_start(int workers, const stage_set *stages, fetcher *fetch)
{
    pipeline *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->stages = *stages;
    p->fetch = fetch;
    p->threads = calloc((size_t)workers, sizeof *p->threads);
    if (!p->threads) { free(p); return NULL; }
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) break;
        p->nworkers++;
    }
    if (p->nworkers == 0) { pipeline_stop(p); return NULL; }
    return p;
}

static void enqueue(pipeline *p, job *first, job *last)
{
    pthread_mutex_lock(&p->mu);
    if (p->tail) p->tail->next = first;
    else p->head = first;
    p->tail = last;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* A file that failed before any stage could run (its download). */
static void fail_file(predict_request *r, size_t i, const stage_error *err)
{
    file_job *f = &r->files[i];
    bool cancelled = !strcmp(err->code, "cancelled");
    if (!cancelled) {
        push_line(r, file_event("processing", i, f));
        json_t *ev = file_event("error", i, f);
        json_object_set_new(ev, "error", json_pack("{s:s,s:o}", "code", err->code, "message",
                                                   json_string_lossy(err->message, strlen(err->message))));
        push_line(r, ev);
    }
    metrics_file(cancelled ? FILE_CANCELLED : FILE_ERROR);
    finish_file(r, false);
}

typedef struct { pipeline *p; job *j; } fetch_ctx;

/* The fetcher's callback: queue the file, or report why it cannot be. */
static void on_fetched(void *ctx, uint8_t *data, size_t len, const stage_error *err)
{
    fetch_ctx *fc = ctx;
    job *j = fc->j;
    pipeline *p = fc->p;
    free(fc);
    if (err) {
        fail_file(j->req, j->index, err);
        predict_request_unref(j->req);
        free(j);
        return;
    }
    file_job *f = &j->req->files[j->index];
    f->data = data;
    f->len = len;
    enqueue(p, j, j);
}

int pipeline_submit(pipeline *p, predict_request *r)
{
    r->remaining = r->nfiles;
    if (r->nfiles == 0) return -1;  /* callers refuse empty requests (422) before this */
    /* Allocate everything first so a failure queues nothing. */
    job **jobs = calloc(r->nfiles, sizeof *jobs);
    fetch_ctx **fcs = calloc(r->nfiles, sizeof *fcs);
    bool ok = jobs && fcs;
    for (size_t i = 0; ok && i < r->nfiles; i++) {
        ok = (jobs[i] = malloc(sizeof **jobs)) != NULL;
        if (ok) *jobs[i] = (job){NULL, r, i};
        if (ok && r->files[i].url) ok = p->fetch && (fcs[i] = malloc(sizeof **fcs)) != NULL;
    }
    if (!ok) {
        for (size_t i = 0; jobs && fcs && i < r->nfiles; i++) { free(jobs[i]); free(fcs[i]); }
        free(jobs);
        free(fcs);
        return -1;
    }
    for (size_t i = 0; i < r->nfiles; i++) predict_request_ref(r);
    /* Uploaded files go to the workers in request order; fetched ones when they arrive. */
    job *first = NULL, *last = NULL;
    for (size_t i = 0; i < r->nfiles; i++) {
        if (r->files[i].url) continue;
        if (last) last->next = jobs[i];
        else first = jobs[i];
        last = jobs[i];
    }
    if (first) enqueue(p, first, last);
    for (size_t i = 0; i < r->nfiles; i++) {
        if (!r->files[i].url) continue;
        *fcs[i] = (fetch_ctx){p, jobs[i]};
        fetcher_add(p->fetch, r->files[i].url, &r->cancelled, on_fetched, fcs[i]);
    }
    free(jobs);
    free(fcs);
    return 0;
}

const stage_set *pipeline_stages(const pipeline *p) { return &p->stages; }

void pipeline_stop(pipeline *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
