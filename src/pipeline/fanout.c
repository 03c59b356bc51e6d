#include "pipeline/fanout.h"

#include <pthread.h>
#include <stdlib.h>

#include "util/parallel.h"

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

static void work_on(void *arg, int i)
{
    (void)i;
    fanout_work(arg);
}

void fanout_run_threads(size_t n, void (*fn)(void *arg, size_t i), void *arg, int threads)
{
    int runners = threads < (int)n ? threads : (int)n;
    /* parallel_run joins every runner before it returns: one reference will do. */
    fanout *g = fanout_new(n, fn, arg, 0);
    if (!g) {
        for (size_t i = 0; i < n; i++) fn(arg, i);
        return;
    }
    parallel_run(runners > 1 ? runners : 1, work_on, g);
    fanout_wait(g);
    fanout_unref(g);
}
