#include "limits/ledger.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "util/array.h"
#include "util/clock.h"
#include "util/log.h"

#define BACKOFF_MIN_S 0.05
#define BACKOFF_MAX_S 1.0

/* One request's use. On the heap: a request that stops waiting (the bound)
 * leaves it to the writer, which still commits it and then frees it. */
typedef struct {
    usage_row row;
    bool done, abandoned;
    int rc;
} entry;

struct ledger {
    keystore *ks;
    double timeout_s;
    pthread_mutex_t mu;
    pthread_cond_t work, committed;
    entry **queue;
    size_t n, cap;
    bool stopping;
    double failing_since; /* clock_s() of the first failed commit in a row; 0 = none */
    pthread_t thread;
};

/* Moves the queue's entries onto the end of the batch; with lg->mu held. */
static int take_queue(ledger *lg, entry ***batch, size_t *n, size_t *cap)
{
    for (size_t i = 0; i < lg->n; i++) {
        entry **slot = array_push((void **)batch, n, cap, sizeof **batch);
        if (!slot) {
            /* Keep the rest queued for the next round. */
            for (size_t j = i; j < lg->n; j++) lg->queue[j - i] = lg->queue[j];
            lg->n -= i;
            return -1;
        }
        *slot = lg->queue[i];
    }
    lg->n = 0;
    return 0;
}

/* Ends the batch's entries with rc; with lg->mu held. */
static void settle(ledger *lg, entry **batch, size_t n, int rc)
{
    for (size_t i = 0; i < n; i++) {
        if (batch[i]->abandoned) {
            free(batch[i]);
            continue;
        }
        batch[i]->rc = rc;
        batch[i]->done = true;
    }
    pthread_cond_broadcast(&lg->committed);
}

/* Commits the whole queue at once; while a commit fails (the database is
 * down or restarting), retries with backoff, adding what queues meanwhile,
 * so no use is dropped and the requests resume once a commit succeeds.
 * Stopping, it gives up after the bound. */
static void *writer(void *arg)
{
    ledger *lg = arg;
    entry **batch = NULL;
    usage_row *rows = NULL;
    size_t n = 0, bcap = 0, rcap = 0;
    double backoff = BACKOFF_MIN_S;
    pthread_mutex_lock(&lg->mu);
    for (;;) {
        while (lg->n == 0 && n == 0 && !lg->stopping) pthread_cond_wait(&lg->work, &lg->mu);
        take_queue(lg, &batch, &n, &bcap);
        if (n == 0) break; /* stopping, nothing left */
        pthread_mutex_unlock(&lg->mu);

        int rc = -1;
        if (n > rcap) {
            usage_row *nr = array_resize(rows, n, sizeof *rows);
            if (nr) rows = nr, rcap = n;
        }
        if (n <= rcap) {
            for (size_t i = 0; i < n; i++) rows[i] = batch[i]->row;
            rc = keystore_usage_add(lg->ks, rows, n);
        }

        pthread_mutex_lock(&lg->mu);
        double now = clock_s();
        if (rc == 0) {
            if (lg->failing_since > 0) log_info("usage ledger: commits succeed again (%zu request(s) committed)", n);
            lg->failing_since = 0;
            backoff = BACKOFF_MIN_S;
            settle(lg, batch, n, 0);
            n = 0;
            continue;
        }
        if (lg->failing_since == 0) {
            lg->failing_since = now;
            log_error("usage ledger: a commit of %zu request(s) failed; retrying", n);
        }
        if (lg->stopping && now - lg->failing_since >= lg->timeout_s) {
            log_error("usage ledger: stopping with %zu request(s) not committed", n);
            settle(lg, batch, n, -1);
            n = 0;
            continue;
        }
        struct timespec ts = clock_deadline(backoff);
        pthread_cond_timedwait(&lg->work, &lg->mu, &ts);
        backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
    }
    pthread_mutex_unlock(&lg->mu);
    free(batch);
    free(rows);
    return NULL;
}

ledger *ledger_start(keystore *ks, double timeout_s)
{
    ledger *lg = calloc(1, sizeof *lg);
    if (!lg) return NULL;
    lg->ks = ks;
    lg->timeout_s = timeout_s > 0 ? timeout_s : 30;
    pthread_mutex_init(&lg->mu, NULL);
    clock_cond_init(&lg->work);
    clock_cond_init(&lg->committed);
    if (pthread_create(&lg->thread, NULL, writer, lg) != 0) {
        pthread_mutex_destroy(&lg->mu);
        pthread_cond_destroy(&lg->work);
        pthread_cond_destroy(&lg->committed);
        free(lg);
        return NULL;
    }
    return lg;
}

int ledger_commit(ledger *lg, const usage_row *row)
{
    entry *e = calloc(1, sizeof *e);
    if (!e) return -1;
    e->row = *row;
    e->rc = -1;
    pthread_mutex_lock(&lg->mu);
    entry **slot = array_push((void **)&lg->queue, &lg->n, &lg->cap, sizeof *slot);
    if (!slot) {
        pthread_mutex_unlock(&lg->mu);
        free(e);
        return -1;
    }
    *slot = e;
    pthread_cond_signal(&lg->work);
    struct timespec deadline = clock_deadline(lg->timeout_s); /* read under lg->mu */
    while (!e->done)
        if (pthread_cond_timedwait(&lg->committed, &lg->mu, &deadline) == ETIMEDOUT && !e->done) {
            /* Not durable within the bound: the request ends without
             * "complete"; the writer keeps the row and commits it later. */
            e->abandoned = true;
            pthread_mutex_unlock(&lg->mu);
            return -1;
        }
    int rc = e->rc;
    pthread_mutex_unlock(&lg->mu);
    free(e);
    return rc;
}

void ledger_set_timeout(ledger *lg, double timeout_s)
{
    if (!lg || timeout_s <= 0) return;
    pthread_mutex_lock(&lg->mu);
    lg->timeout_s = timeout_s;
    pthread_mutex_unlock(&lg->mu);
}

int ledger_health(ledger *lg, char *why, size_t len)
{
    if (!lg) return 0;
    pthread_mutex_lock(&lg->mu);
    double since = lg->failing_since, timeout = lg->timeout_s;
    pthread_mutex_unlock(&lg->mu);
    double failing = since > 0 ? clock_s() - since : 0;
    if (failing < timeout) return 0;
    if (why && len) snprintf(why, len, "the usage ledger cannot be written (failing for %.0f s)", failing);
    return -1;
}

void ledger_stop(ledger *lg)
{
    if (!lg) return;
    pthread_mutex_lock(&lg->mu);
    lg->stopping = true;
    pthread_cond_signal(&lg->work);
    pthread_mutex_unlock(&lg->mu);
    pthread_join(lg->thread, NULL);
    free(lg->queue);
    pthread_mutex_destroy(&lg->mu);
    pthread_cond_destroy(&lg->work);
    pthread_cond_destroy(&lg->committed);
    free(lg);
}
