#include "pipeline/pipeline.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics/metrics.h"
#include "pipeline/fanout.h"
#include "pipeline/backlog.h"
#include "pipeline/request_internal.h"
#include "pipeline/video_stages.h"
#include "util/clock.h"
#include "util/json_out.h"
#include "util/log.h"

typedef struct job {
    struct job *next;
    predict_request *req;
    size_t index;
    stage_work *work; /* set once the CPU stages are done and the llm stage is left */
    double t0;        /* when a worker took the file */
    double queued;    /* when it entered its current queue */
    fanout *helps;    /* not a file: a helper for another file's tiles (req is NULL) */
} job;

/* One queue of jobs and the threads that serve it. */
typedef struct {
    job *head, *tail;
    pthread_cond_t cv;
    bool closed; /* no more jobs: threads drain what is queued, cancelled, then exit */
    int nthreads;
    pthread_t *threads;
} job_queue;

/* Idle memory trim: once no file has been worked on for IDLE_TRIM_AFTER_S,
 * and at most every IDLE_TRIM_EVERY_S, a CPU worker gives the free pages held
 * in malloc's arenas back to the system (malloc_trim). */
#define IDLE_TRIM_AFTER_S 1.0
#define IDLE_TRIM_EVERY_S 5.0

struct pipeline {
    pthread_mutex_t mu; /* guards both queues and the fields after them */
    /* cpu: decode, detection, OCR (CPU-bound; --workers threads). llm: the
     * llm stage, which mostly waits on a provider (--llm-concurrency threads). */
    job_queue cpu, llm;
    stage_set stages;
    fetcher *fetch;
    int busy;                    /* jobs being run now, both queues */
    int llm_ready;               /* jobs in the llm queue already decoded (holding their image) */
    bool used_since_trim;        /* a job ran since the last trim */
    double last_done, last_trim; /* monotonic seconds */
};

static void job_done(job *j)
{
    if (j->req) predict_request_unref(j->req);
    free(j);
}

static void enqueue(pipeline *p, job_queue *q, job *first, job *last)
{
    double now = clock_s();
    for (job *x = first; x; x = x == last ? NULL : x->next) x->queued = now;
    pthread_mutex_lock(&p->mu);
    if (q->tail) q->tail->next = first;
    else q->head = first;
    q->tail = last;
    last->next = NULL;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Helpers go ahead of queued files: the file they help is already being
 * worked on. false: the queue is closed (its threads may be gone), nothing queued. */
static bool enqueue_front(pipeline *p, job_queue *q, job *first, job *last)
{
    double now = clock_s();
    for (job *x = first; x; x = x == last ? NULL : x->next) x->queued = now;
    pthread_mutex_lock(&p->mu);
    bool open = !q->closed;
    if (open) {
        last->next = q->head;
        q->head = first;
        if (!q->tail) q->tail = last;
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return open;
}

/* stage_parallel_fn on the CPU workers: up to one helper job per other
 * worker, queued first; the caller works too and waits only for items
 * already taken (see fanout.h), so it cannot deadlock the pool. */
static void run_parallel(void *ctx, size_t n, void (*fn)(void *arg, size_t i), void *arg)
{
    pipeline *p = ctx;
    int helpers = p->cpu.nthreads - 1;
    if ((size_t)helpers > n - 1) helpers = (int)(n - 1);
    fanout *g = n > 1 ? fanout_new(n, fn, arg, helpers) : NULL;
    if (!g) {
        for (size_t i = 0; i < n; i++) fn(arg, i);
        return;
    }
    job *first = NULL, *last = NULL;
    for (int h = 0; h < helpers; h++) {
        job *j = calloc(1, sizeof *j);
        if (!j) {
            fanout_unref(g); /* this helper never comes */
            continue;
        }
        j->helps = g;
        j->next = first;
        first = j;
        if (!last) last = j;
    }
    if (first && !enqueue_front(p, &p->cpu, first, last)) {
        /* Shutting down (an llm thread's file): the caller runs every item. */
        for (job *j = first, *next; j; j = next) {
            next = j == last ? NULL : j->next;
            fanout_unref(g);
            free(j);
        }
    }
    fanout_work(g);
    fanout_wait(g);
    fanout_unref(g);
}

static void enqueue_llm(pipeline *p, job *j)
{
    pthread_mutex_lock(&p->mu);
    if (j->work) p->llm_ready++;
    pthread_mutex_unlock(&p->mu);
    enqueue(p, &p->llm, j, j);
}

/* Whether the llm queue already holds a decoded image for each llm thread. */
static bool llm_backlog_full(pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    bool full = p->llm_ready >= p->llm.nthreads;
    pthread_mutex_unlock(&p->mu);
    return full;
}

/* A cancelled request's file: skip the work, still account for it. */
static bool skip_cancelled(predict_request *r, size_t i, job *j)
{
    if (!atomic_load(&r->cancelled)) return false;
    metrics_file(FILE_CANCELLED);
    preq_free_file_data(&r->files[i]);
    preq_finish_file(r, i, NULL, false);
    job_done(j);
    return true;
}

/* Decode and the CPU stages of job j; NULL with err filled on failure. */
static stage_work *begin_job(pipeline *p, job *j, const stage_call *call, sight_error *err)
{
    predict_request *r = j->req;
    j->t0 = clock_s();
    preq_push(r, EV_PROCESSING, j->index, preq_file_event("processing", j->index, &r->files[j->index]));
    stage_work *w = stages_begin(&p->stages, call, err);
    preq_free_file_data(&r->files[j->index]); /* decoded now: give the memory back early */
    return w;
}

/* A video holds its CPU worker from its first frame to its last; its frame
 * lines wait for a slow client, which holds back its decoding. */
static void run_video_job(pipeline *p, job *j)
{
    predict_request *r = j->req;
    file_job *f = &r->files[j->index];
    sight_error err = {0};
    emit_ctx ec = {r, j->index, false};
    stage_call call = {.query = r->query, .params = r->params, .file = f, .cancelled = &r->cancelled, .emit = preq_emit_frame, .emit_ctx = &ec};
    j->t0 = clock_s();
    preq_push(r, EV_PROCESSING, j->index, preq_file_event("processing", j->index, f));
    json_t *result = video_stages_run(&p->stages, &call, &err);
    preq_free_file_data(f);
    preq_report(r, j->index, j->t0, result, &err);
    job_done(j);
}

/* On a CPU worker: decode and the CPU stages; a file that asks for the llm
 * stage moves on to the llm queue (when there are threads for it). */
static void run_cpu_job(pipeline *p, job *j)
{
    if (j->helps) {
        fanout_work(j->helps);
        fanout_unref(j->helps);
        free(j);
        return;
    }
    predict_request *r = j->req;
    size_t i = j->index;
    file_job *f = &r->files[i];
    if (skip_cancelled(r, i, j)) return;
    /* Its client is behind: the file waits (backlog.c) rather than add to
     * what is held for it. */
    if (backlog_park(r, j)) return;
    if (skip_cancelled(r, i, j)) return;
    if (video_stages_is_video(f)) {
        /* is_llm included: a video's one LLM call (about its contact sheet)
         * runs inline at its end, on this worker (video_stages.c). */
        run_video_job(p, j);
        return;
    }
    bool to_llm = f->is_llm && !f->llm_refused && p->llm.nthreads > 0;
    /* Files waiting on a slow provider must not each hold a decoded image
     * (32 files of 12 MP would be over 1 GB): once every llm thread has one
     * ready, the next goes over undecoded and its llm thread decodes it. */
    if (to_llm && llm_backlog_full(p)) {
        enqueue_llm(p, j);
        return;
    }
    sight_error err = {0};
    emit_ctx ec = {r, i, false};
    stage_call call = {r->query, r->params, f, &r->cancelled, preq_emit_line, &ec, run_parallel, p};
    stage_work *w = begin_job(p, j, &call, &err);
    if (w && to_llm && stages_llm_left(w)) {
        j->work = w;
        enqueue_llm(p, j);
        return;
    }
    json_t *result = w ? stages_finish(&p->stages, &call, w, &err) : NULL;
    preq_report(r, i, j->t0, result, &err);
    job_done(j);
}

/* On an llm thread: the llm stage of a file (decoding it first when it came
 * over undecoded). */
static void run_llm_job(pipeline *p, job *j)
{
    predict_request *r = j->req;
    size_t i = j->index;
    sight_error err = {0};
    emit_ctx ec = {r, i, false};
    stage_call call = {r->query, r->params, &r->files[i], &r->cancelled, preq_emit_line, &ec, run_parallel, p};
    if (!j->work) {
        if (skip_cancelled(r, i, j)) return;
        /* Not started yet: it waits for a client that is behind, as on a CPU worker. */
        if (backlog_park(r, j)) return;
        if (skip_cancelled(r, i, j)) return;
        if (!(j->work = begin_job(p, j, &call, &err))) {
            preq_report(r, i, j->t0, NULL, &err);
            job_done(j);
            return;
        }
    }
    /* A cancelled request fails fast here: run_stage checks before calling out. */
    json_t *result = stages_finish(&p->stages, &call, j->work, &err);
    j->work = NULL;
    preq_report(r, i, j->t0, result, &err);
    job_done(j);
}

/* Waits on q with p->mu held. A CPU worker (trims) that finds the pipeline
 * idle long enough trims the heap: after a burst, the arenas of the many
 * connection and worker threads hold free pages malloc would keep for good. */
static void wait_for_job(pipeline *p, job_queue *q, bool trims)
{
    if (!trims || !p->used_since_trim) {
        pthread_cond_wait(&q->cv, &p->mu);
        return;
    }
    double now = clock_s();
    double at = p->last_done + IDLE_TRIM_AFTER_S;
    if (at < p->last_trim + IDLE_TRIM_EVERY_S) at = p->last_trim + IDLE_TRIM_EVERY_S;
    if (now >= at && p->busy == 0) {
        p->used_since_trim = false;
        p->last_trim = now;
        pthread_mutex_unlock(&p->mu);
        malloc_trim(0);
        log_debug("pipeline idle: heap trimmed in %.1f ms", (clock_s() - now) * 1000.0);
        pthread_mutex_lock(&p->mu);
        return;
    }
    /* Not yet, or other files are still being worked on: always sleep (never
     * spin with the lock held), and look again then or at the next job. */
    if (at <= now) at = now + IDLE_TRIM_AFTER_S;
    struct timespec dl = {(time_t)at, (long)((at - (double)(time_t)at) * 1e9)};
    pthread_cond_timedwait(&q->cv, &p->mu, &dl);
}

static void serve(pipeline *p, job_queue *q, void (*run)(pipeline *, job *), bool trims)
{
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!q->head && !q->closed) wait_for_job(p, q, trims);
        job *j = q->head;
        if (!j) break;
        q->head = j->next;
        if (!q->head) q->tail = NULL;
        if (j->work) p->llm_ready--; /* only llm jobs carry work */
        bool closed = q->closed;
        p->busy++;
        pthread_mutex_unlock(&p->mu);
        if (closed && j->req) predict_request_cancel(j->req);
        metrics_job_begin(q == &p->cpu ? POOL_CPU : POOL_LLM, clock_s() - j->queued);
        log_set_request(j->req ? predict_request_id(j->req) : NULL); /* j is gone after run */
        run(p, j);
        log_set_request(NULL);
        metrics_job_end(q == &p->cpu ? POOL_CPU : POOL_LLM);
        pthread_mutex_lock(&p->mu);
        p->busy--;
        p->used_since_trim = true;
        p->last_done = clock_s();
    }
    pthread_mutex_unlock(&p->mu);
}

static void *cpu_worker(void *arg)
{
    pipeline *p = arg;
    serve(p, &p->cpu, run_cpu_job, true);
    return NULL;
}

static void *llm_worker(void *arg)
{
    pipeline *p = arg;
    serve(p, &p->llm, run_llm_job, false);
    return NULL;
}

static int start_threads(pipeline *p, job_queue *q, metrics_pool pool, int n, void *(*fn)(void *))
{
    /* Monotonic, like clock_s(): the idle trim's timed waits use it. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (n <= 0) return 0;
    q->threads = calloc((size_t)n, sizeof *q->threads);
    if (!q->threads) return -1;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&q->threads[i], NULL, fn, p) != 0) return -1;
        q->nthreads++;
    }
    metrics_workers(pool, q->nthreads);
    return 0;
}

pipeline *pipeline_start(int workers, int llm_workers, const stage_set *stages, fetcher *fetch)
{
    pipeline *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    p->stages = *stages;
    p->fetch = fetch;
    int rc = start_threads(p, &p->cpu, POOL_CPU, workers, cpu_worker);
    if (rc == 0) rc = start_threads(p, &p->llm, POOL_LLM, stages->llm ? llm_workers : 0, llm_worker);
    if (rc != 0 || p->cpu.nthreads == 0) {
        pipeline_stop(p);
        return NULL;
    }
    return p;
}

/* A file that failed before any stage could run (its download). */
static void fail_file(predict_request *r, size_t i, const sight_error *err)
{
    file_job *f = &r->files[i];
    bool cancelled = !strcmp(err->code, "cancelled");
    json_t *ev = NULL;
    if (!cancelled) {
        preq_push(r, EV_PROCESSING, i, preq_file_event("processing", i, f));
        ev = preq_error_event(i, f, err->code, err->message);
    }
    metrics_file(cancelled ? FILE_CANCELLED : FILE_ERROR);
    preq_finish_file(r, i, ev, false);
}

typedef struct {
    pipeline *p;
    job *j;
} fetch_ctx;

/* The fetcher's callback: queue the file, or report why it cannot be. */
static void on_fetched(void *ctx, uint8_t *data, size_t len, const sight_error *err)
{
    fetch_ctx *fc = ctx;
    job *j = fc->j;
    pipeline *p = fc->p;
    free(fc);
    if (err) {
        fail_file(j->req, j->index, err);
        job_done(j);
        return;
    }
    file_job *f = &j->req->files[j->index];
    f->data = data;
    f->len = len;
    pthread_mutex_lock(&j->req->mu);
    j->req->usage.bytes_in += (int64_t)len;
    pthread_mutex_unlock(&j->req->mu);
    enqueue(p, &p->cpu, j, j);
}

/* A parked job (backlog.c) goes back to the CPU queue. */
static void requeue(void *pipe, void *j) { enqueue(pipe, &((pipeline *)pipe)->cpu, j, j); }

int pipeline_submit(pipeline *p, predict_request *r)
{
    if (r->nfiles == 0) return -1; /* callers refuse empty requests (422) before this */
    /* Allocate everything first so a failure queues nothing. */
    job **jobs = calloc(r->nfiles, sizeof *jobs);
    fetch_ctx **fcs = calloc(r->nfiles, sizeof *fcs);
    bool ok = jobs && fcs;
    for (size_t i = 0; ok && i < r->nfiles; i++) {
        ok = (jobs[i] = malloc(sizeof **jobs)) != NULL;
        if (ok) *jobs[i] = (job){NULL, r, i, NULL, 0, 0, NULL};
        if (ok && r->files[i].url) ok = p->fetch && (fcs[i] = malloc(sizeof **fcs)) != NULL;
    }
    if (!ok) {
        for (size_t i = 0; jobs && fcs && i < r->nfiles; i++) {
            free(jobs[i]);
            free(fcs[i]);
        }
        free(jobs);
        free(fcs);
        return -1;
    }
    for (size_t i = 0; i < r->nfiles; i++) predict_request_ref(r);
    backlog_init(r, requeue, p);
    /* Uploaded files go to the workers in request order; fetched ones when they arrive. */
    job *first = NULL, *last = NULL;
    for (size_t i = 0; i < r->nfiles; i++) {
        if (r->files[i].url) continue;
        if (last) last->next = jobs[i];
        else first = jobs[i];
        last = jobs[i];
    }
    if (first) enqueue(p, &p->cpu, first, last);
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

static void stop_queue(pipeline *p, job_queue *q)
{
    pthread_mutex_lock(&p->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < q->nthreads; i++) pthread_join(q->threads[i], NULL);
    free(q->threads);
    pthread_cond_destroy(&q->cv);
}

void pipeline_stop(pipeline *p)
{
    if (!p) return;
    /* CPU workers first: until they are gone they may still hand files on to
     * the llm queue, whose threads then see them cancelled. */
    stop_queue(p, &p->cpu);
    stop_queue(p, &p->llm);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
