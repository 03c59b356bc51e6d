#include "util/bg_queue.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct task {
    struct task *next;
    bg_fn fn;
    void *arg;
} task;

struct bg_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    task *head, *tail;
    size_t n, max;
    bool stopping;
    int nthreads;
    pthread_t threads[8];
};

static void *run(void *arg)
{
    bg_queue *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stopping) pthread_cond_wait(&q->cv, &q->mu);
        task *t = q->head;
        if (!t) break; /* stopping, and drained */
        q->head = t->next;
        if (!q->head) q->tail = NULL;
        q->n--;
        pthread_mutex_unlock(&q->mu);
        t->fn(t->arg);
        free(t);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

bg_queue *bgq_start(size_t max, int threads)
{
    bg_queue *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->max = max ? max : 1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    if (threads < 1) threads = 1;
    if (threads > 8) threads = 8;
    for (; q->nthreads < threads; q->nthreads++)
        if (pthread_create(&q->threads[q->nthreads], NULL, run, q) != 0) break;
    if (!q->nthreads) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
        free(q);
        return NULL;
    }
    return q;
}

int bgq_push(bg_queue *q, bg_fn fn, void *arg)
{
    task *t = malloc(sizeof *t);
    if (!t) return -1;
    *t = (task){NULL, fn, arg};
    pthread_mutex_lock(&q->mu);
    if (q->stopping || q->n >= q->max) {
        pthread_mutex_unlock(&q->mu);
        free(t);
        return -1;
    }
    if (q->tail) q->tail->next = t;
    else q->head = t;
    q->tail = t;
    q->n++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

void bgq_stop(bg_queue *q)
{
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < q->nthreads; i++) pthread_join(q->threads[i], NULL);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}
