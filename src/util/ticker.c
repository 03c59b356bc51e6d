#include "util/ticker.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/clock.h"

struct tk_chore {
    struct tk_chore *next;
    ticker *t;
    void (*fn)(void *);
    void *arg;
    int64_t interval_ns, due_ns;
    bool may_block;
    bool busy;    /* running on the ticker, or queued or running on the work queue */
    bool removed; /* being removed: never started again */
};

struct ticker {
    work_queue *wq;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* CLOCK_MONOTONIC: the thread's sleep until the next due chore */
    pthread_cond_t idle; /* a chore's run ended (ticker_remove waits on it) */
    tk_chore *head;
    bool stop;
    pthread_t thread;
};

/* The longest sleep with nothing due: bounds the effect of a lost wakeup. */
#define IDLE_NS (1000LL * 1000000)

static void queued_run(void *arg)
{
    tk_chore *c = arg;
    c->fn(c->arg);
}

static void queued_done(void *arg)
{
    tk_chore *c = arg;
    ticker *t = c->t;
    pthread_mutex_lock(&t->mu);
    c->busy = false;
    pthread_cond_broadcast(&t->idle);
    pthread_mutex_unlock(&t->mu);
}

/* The first chore due by now, rescheduled; NULL when none. Its next due
 * time follows the schedule, not the run's end, unless it fell a whole
 * interval behind (a slow chore): then it skips ahead rather than burst. */
static tk_chore *take_due(ticker *t, int64_t now, int64_t *next_due)
{
    *next_due = now + IDLE_NS;
    for (tk_chore *c = t->head; c; c = c->next) {
        if (c->removed) continue;
        if (c->due_ns <= now) {
            c->due_ns += c->interval_ns;
            if (c->due_ns <= now) c->due_ns = now + c->interval_ns;
            return c;
        }
        if (c->due_ns < *next_due) *next_due = c->due_ns;
    }
    return NULL;
}

static void *tick_main(void *arg)
{
    ticker *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        int64_t next_due;
        tk_chore *c = take_due(t, clock_ns(), &next_due);
        if (!c) {
            struct timespec ts = {(time_t)(next_due / 1000000000), (long)(next_due % 1000000000)};
            pthread_cond_timedwait(&t->wake, &t->mu, &ts);
            continue;
        }
        if (c->busy) continue; /* the last run is still pending: this one is skipped */
        c->busy = true;
        if (c->may_block && t->wq) {
            /* Lock order ticker.mu -> the queue's: queued_done takes only ours. */
            if (wq_push(t->wq, queued_run, queued_done, c) != 0) c->busy = false;
            continue;
        }
        pthread_mutex_unlock(&t->mu);
        c->fn(c->arg);
        pthread_mutex_lock(&t->mu);
        c->busy = false;
        pthread_cond_broadcast(&t->idle);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

ticker *ticker_start(work_queue *wq)
{
    ticker *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->wq = wq;
    pthread_mutex_init(&t->mu, NULL);
    clock_cond_init(&t->wake);
    pthread_cond_init(&t->idle, NULL);
    if (pthread_create(&t->thread, NULL, tick_main, t) != 0) {
        pthread_cond_destroy(&t->idle);
        pthread_cond_destroy(&t->wake);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return NULL;
    }
    return t;
}

tk_chore *ticker_add(ticker *t, double interval_s, bool may_block, void (*fn)(void *arg), void *arg)
{
    if (!t || !fn) return NULL;
    tk_chore *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int64_t every = (int64_t)(interval_s * 1e9);
    if (every < 1000000) every = 1000000; /* 1 ms: a zero interval would spin */
    *c = (tk_chore){.t = t, .fn = fn, .arg = arg, .interval_ns = every, .due_ns = clock_ns() + every, .may_block = may_block};
    pthread_mutex_lock(&t->mu);
    c->next = t->head;
    t->head = c;
    pthread_cond_signal(&t->wake); /* it may be due before the thread's next wake */
    pthread_mutex_unlock(&t->mu);
    return c;
}

/* Under t->mu: waits out a run, then unlinks c. */
static void remove_locked(ticker *t, tk_chore *c)
{
    c->removed = true; /* else a frequent chore could start again before this wakes */
    while (c->busy) pthread_cond_wait(&t->idle, &t->mu);
    for (tk_chore **p = &t->head; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
}

void ticker_remove(ticker *t, tk_chore *c)
{
    if (!t || !c) return;
    pthread_mutex_lock(&t->mu);
    remove_locked(t, c);
    pthread_mutex_unlock(&t->mu);
    free(c);
}

void ticker_stop(ticker *t)
{
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_mutex_lock(&t->mu);
    while (t->head) {
        tk_chore *c = t->head;
        remove_locked(t, c);
        free(c);
    }
    pthread_mutex_unlock(&t->mu);
    pthread_cond_destroy(&t->idle);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
