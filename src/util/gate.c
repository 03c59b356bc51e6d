#include "util/gate.h"

#include "util/clock.h"

#include <time.h>

void gate_init(gate *g, int slots)
{
    pthread_mutex_init(&g->mu, NULL);
    clock_cond_init(&g->cv);
    g->free = slots;
}

void gate_destroy(gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static bool is_set(const atomic_bool *b) { return b && atomic_load(b); }

bool gate_enter(gate *g, const atomic_bool *cancelled)
{
    pthread_mutex_lock(&g->mu);
    while (g->free == 0 && !is_set(cancelled)) {
        if (!cancelled) {
            pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        /* Cancellation is a flag, not a signal on this condition: re-check it. */
        struct timespec ts = clock_deadline(0.1);
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    }
    bool ok = g->free > 0 && !is_set(cancelled);
    if (ok) g->free--;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

void gate_leave(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->free++;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
}
