#include "pipeline/fanout.h"

#include <pthread.h>
#include <stdlib.h>

struct fanout {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t n, next, done;
    int refs;
    void (*fn)(void *, size_t);
    void *arg;
};

fanout *fanout_new(size_t n, void (*fn)(void *arg, size_t i), void *arg, int helpers)
{
    fanout *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->n = n;
    g->fn = fn;
    g->arg = arg;
    g->refs = 1 + (helpers > 0 ? helpers : 0);
    return g;
}

void fanout_work(fanout *g)
{
    pthread_mutex_lock(&g->mu);
    while (g->next < g->n) {
        size_t i = g->next++;
        pthread_mutex_unlock(&g->mu);
        g->fn(g->arg, i);
        pthread_mutex_lock(&g->mu);
        if (++g->done == g->n) pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
}

void fanout_wait(fanout *g)
{
    pthread_mutex_lock(&g->mu);
    while (g->done < g->n) pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

void fanout_unref(fanout *g)
{
    if (!g) return;
    pthread_mutex_lock(&g->mu);
    int left = --g->refs;
    pthread_mutex_unlock(&g->mu);
    if (left > 0) return;
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}

static void *helper_main(void *arg)
{
    fanout *g = arg;
    fanout_work(g);
    fanout_unref(g);
    return NULL;
}

void fanout_run_threads(size_t n, void (*fn)(void *arg, size_t i), void *arg, int threads)
{
    int helpers = threads - 1 < (int)n - 1 ? threads - 1 : (int)n - 1;
    fanout *g = fanout_new(n, fn, arg, helpers > 0 ? helpers : 0);
    if (!g) {
        for (size_t i = 0; i < n; i++) fn(arg, i);
        return;
    }
    pthread_t *t = helpers > 0 ? calloc((size_t)helpers, sizeof *t) : NULL;
    int started = 0;
    for (int h = 0; h < helpers; h++) {
        if (t && pthread_create(&t[started], NULL, helper_main, g) == 0) started++;
        else fanout_unref(g);
    }
    fanout_work(g);
    fanout_wait(g);
    for (int h = 0; h < started; h++) pthread_join(t[h], NULL);
    free(t);
    fanout_unref(g);
}
