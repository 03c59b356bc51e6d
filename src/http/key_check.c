#include "http/key_check.h"

#include "metrics/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kc_job {
    struct key_checker *k;
    char key[KEYSTORE_KEY_MAX + 2];
    kc_fn fn; /* or run this instead of verifying */
    void *ctx;
    void (*ctx_free)(void *);
    bool done;
    bool released;      /* the request let go: the completion frees it */
    front_conn *waiter; /* suspended on it; resumed when done */
    key_verdict verdict;
    int64_t id;        /* a valid key's id */
    key_limits limits; /* and its own limits (limits/limiter.h applies the defaults) */
};

struct key_checker {
    keystore *ks;
    key_cache *cache;
    work_queue *wq;
    pthread_mutex_t mu;
    pthread_cond_t ended; /* pending fell to 0 while stopping (kc_stop waits on it) */
    int pending;          /* jobs queued or running */
    bool stop;
};

static void job_free(kc_job *j)
{
    if (j->ctx_free) j->ctx_free(j->ctx);
    free(j);
}

/* On a work-queue thread. */
static void job_run(void *arg)
{
    kc_job *j = arg;
    key_checker *k = j->k;
    pthread_mutex_lock(&k->mu);
    bool skip = j->released;
    pthread_mutex_unlock(&k->mu);
    if (skip) return;
    if (j->fn) j->fn(k->ks, j->ctx);
    else {
        j->verdict = key_cache_verify(k->cache, j->key, &j->id, &j->limits);
        metrics_key_lookup(false); /* once made: a test may wait for it before stopping the store */
    }
}

/* The job's completion, right after job_run: resumes the waiting connection. */
static void job_done(void *arg)
{
    kc_job *j = arg;
    key_checker *k = j->k;
    pthread_mutex_lock(&k->mu);
    j->done = true;
    if (j->waiter) front_resume(j->waiter);
    j->waiter = NULL;
    bool release = j->released;
    pthread_mutex_unlock(&k->mu);
    /* Outside the lock: ctx_free may release a limit (a Redis round trip),
     * which must not stall every other check and kc_wait. */
    if (release) job_free(j);
    pthread_mutex_lock(&k->mu);
    if (--k->pending == 0 && k->stop) pthread_cond_broadcast(&k->ended);
    pthread_mutex_unlock(&k->mu);
}

key_checker *kc_start(keystore *ks, key_cache *cache, work_queue *wq)
{
    if (!wq) return NULL;
    key_checker *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    k->ks = ks;
    k->cache = cache;
    k->wq = wq;
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->ended, NULL);
    return k;
}

void kc_stop(key_checker *k)
{
    if (!k) return;
    pthread_mutex_lock(&k->mu);
    k->stop = true;
    while (k->pending > 0) pthread_cond_wait(&k->ended, &k->mu);
    pthread_mutex_unlock(&k->mu);
}

void kc_free(key_checker *k)
{
    if (!k) return;
    kc_stop(k);
    pthread_cond_destroy(&k->ended);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

/* The queue drains rather than cancels, so every job queued ends done. */
static kc_job *enqueue(key_checker *k, kc_job *j)
{
    pthread_mutex_lock(&k->mu);
    bool ok = !k->stop;
    if (ok) k->pending++;
    pthread_mutex_unlock(&k->mu);
    if (ok && wq_push(k->wq, job_run, job_done, j) == 0) return j;
    if (ok) {
        pthread_mutex_lock(&k->mu);
        if (--k->pending == 0 && k->stop) pthread_cond_broadcast(&k->ended);
        pthread_mutex_unlock(&k->mu);
    }
    job_free(j);
    return NULL;
}

kc_job *kc_submit(key_checker *k, const char *key)
{
    if (!k) return NULL;
    kc_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->k = k;
    snprintf(j->key, sizeof j->key, "%s", key);
    return enqueue(k, j);
}

kc_job *kc_submit_call(key_checker *k, kc_fn fn, void *ctx, void (*ctx_free)(void *))
{
    kc_job *j = k ? calloc(1, sizeof *j) : NULL;
    if (!j) {
        if (ctx_free) ctx_free(ctx);
        return NULL;
    }
    j->k = k;
    j->fn = fn;
    j->ctx = ctx;
    j->ctx_free = ctx_free;
    return enqueue(k, j);
}

void *kc_ctx(kc_job *j) { return j->ctx; }

bool kc_wait(kc_job *j, front_conn *c)
{
    key_checker *k = j->k;
    pthread_mutex_lock(&k->mu);
    bool done = j->done;
    if (!done) {
        /* Under the lock the completion takes to resume: it cannot finish in between. */
        front_suspend(c);
        j->waiter = c;
    }
    pthread_mutex_unlock(&k->mu);
    return done;
}

key_verdict kc_verdict(const kc_job *j) { return j->verdict; }

void kc_key(const kc_job *j, int64_t *id, key_limits *limits)
{
    *id = j->id;
    *limits = j->limits;
}

void kc_release(kc_job *j)
{
    if (!j) return;
    key_checker *k = j->k;
    pthread_mutex_lock(&k->mu);
    bool done = j->done;
    j->released = true;
    pthread_mutex_unlock(&k->mu);
    if (done) job_free(j);
}
