#include "util/work_queue.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define WQ_MAX_THREADS 16

typedef struct wq_job {
    struct wq_job *next;
    wq_fn fn, done;
    void *arg;
} wq_job;

struct work_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* untimed: a worker sleeps until a push or the stop */
    wq_job *head, *tail;
    size_t n, max;
    bool stopping, joined;
    int nthreads;
    pthread_t threads[WQ_MAX_THREADS];
};

static void *worker(void *arg)
{
    work_queue *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stopping) pthread_cond_wait(&q->cv, &q->mu);
        wq_job *j = q->head;
        if (!j) break; /* stopping, and drained */
        q->head = j->next;
        if (!q->head) q->tail = NULL;
        q->n--;
        pthread_mutex_unlock(&q->mu);
        j->fn(j->arg);
        if (j->done) j->done(j->arg);
        free(j);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

work_queue *wq_start(int threads, size_t max)
{
    work_queue *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->max = max ? max : 1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    if (threads < 1) threads = 1;
    if (threads > WQ_MAX_THREADS) threads = WQ_MAX_THREADS;
    for (; q->nthreads < threads; q->nthreads++)
        if (pthread_create(&q->threads[q->nthreads], NULL, worker, q) != 0) break;
    if (!q->nthreads) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
        free(q);
        return NULL;
    }
    return q;
}

int wq_push(work_queue *q, wq_fn fn, wq_fn done, void *arg)
{
    if (!q || !fn) return -1;
    wq_job *j = malloc(sizeof *j);
    if (!j) return -1;
    *j = (wq_job){NULL, fn, done, arg};
    pthread_mutex_lock(&q->mu);
    if (q->stopping || q->n >= q->max) {
        pthread_mutex_unlock(&q->mu);
        free(j);
        return -1;
    }
    if (q->tail) q->tail->next = j;
    else q->head = j;
    q->tail = j;
    q->n++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

void wq_stop(work_queue *q)
{
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    bool joined = q->joined;
    q->joined = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    if (joined) return;
    for (int i = 0; i < q->nthreads; i++) pthread_join(q->threads[i], NULL);
}

void wq_free(work_queue *q)
{
    if (!q) return;
    wq_stop(q);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

int wq_threads(const work_queue *q) { return q ? q->nthreads : 0; }
