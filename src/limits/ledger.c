#include "limits/ledger.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/array.h"
#include "util/log.h"

/* One waiting request, on its own stack. */
typedef struct {
    usage_row row;
    bool done;
    int rc;
} entry;

struct ledger {
    keystore *ks;
    pthread_mutex_t mu;
    pthread_cond_t work, committed;
    entry **queue;
    size_t n, cap;
    bool stopping;
    pthread_t thread;
};

static void *writer(void *arg)
{
    ledger *lg = arg;
    entry **batch = NULL;
    usage_row *rows = NULL;
    size_t bcap = 0;
    pthread_mutex_lock(&lg->mu);
    for (;;) {
        while (lg->n == 0 && !lg->stopping) pthread_cond_wait(&lg->work, &lg->mu);
        if (lg->n == 0) break;
        /* Take the whole queue: swap arrays so requests queue into the other. */
        entry **taken = lg->queue;
        size_t n = lg->n, cap = lg->cap;
        lg->queue = batch;
        lg->cap = bcap;
        lg->n = 0;
        batch = taken;
        bcap = cap;
        pthread_mutex_unlock(&lg->mu);

        usage_row *nr = array_resize(rows, n, sizeof *rows);
        int rc = -1;
        if (nr) {
            rows = nr;
            for (size_t i = 0; i < n; i++) rows[i] = batch[i]->row;
            rc = keystore_usage_add(lg->ks, rows, n);
        }
        if (rc != 0) log_error("usage ledger: a commit of %zu request(s) failed", n);

        pthread_mutex_lock(&lg->mu);
        for (size_t i = 0; i < n; i++) {
            batch[i]->rc = rc;
            batch[i]->done = true;
        }
        pthread_cond_broadcast(&lg->committed);
    }
    pthread_mutex_unlock(&lg->mu);
    free(batch);
    free(rows);
    return NULL;
}

ledger *ledger_start(keystore *ks)
{
    ledger *lg = calloc(1, sizeof *lg);
    if (!lg) return NULL;
    lg->ks = ks;
    pthread_mutex_init(&lg->mu, NULL);
    pthread_cond_init(&lg->work, NULL);
    pthread_cond_init(&lg->committed, NULL);
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
    entry e = {*row, false, -1};
    pthread_mutex_lock(&lg->mu);
    if (lg->n == lg->cap) {
        size_t ncap = lg->cap ? lg->cap * 2 : 64;
        entry **nq = array_resize(lg->queue, ncap, sizeof *nq);
        if (!nq) {
            pthread_mutex_unlock(&lg->mu);
            return -1;
        }
        lg->queue = nq;
        lg->cap = ncap;
    }
    lg->queue[lg->n++] = &e;
    pthread_cond_signal(&lg->work);
    while (!e.done) pthread_cond_wait(&lg->committed, &lg->mu);
    pthread_mutex_unlock(&lg->mu);
    return e.rc;
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
