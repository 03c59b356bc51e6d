#include "keys/store_probe.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "util/clock.h"

/* Seconds a store may fail its checks before /readyz says so. */
#define STORE_PROBE_GRACE_S 5.0

struct store_probe {
    keystore *ks;
    double interval_s;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool stopping;
    int64_t n;      /* the last successful count */
    double last_ok; /* clock_s() of the last check that succeeded; 0: none yet */
    pthread_t thread;
};

static void check(store_probe *p)
{
    int64_t n = 0;
    int rc = keystore_count_active(p->ks, &n);
    pthread_mutex_lock(&p->mu);
    if (rc == 0) {
        p->n = n;
        p->last_ok = clock_s();
    }
    pthread_mutex_unlock(&p->mu);
}

static void *run(void *arg)
{
    store_probe *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        struct timespec ts = clock_deadline(p->interval_s);
        pthread_cond_timedwait(&p->wake, &p->mu, &ts);
        if (p->stopping) break;
        pthread_mutex_unlock(&p->mu);
        check(p);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

store_probe *store_probe_start(keystore *ks, double interval_s)
{
    store_probe *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->ks = ks;
    p->interval_s = interval_s > 0 ? interval_s : 1;
    pthread_mutex_init(&p->mu, NULL);
    clock_cond_init(&p->wake);
    check(p);
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->wake);
        free(p);
        return NULL;
    }
    return p;
}

int store_probe_get(store_probe *p, int64_t *active_keys)
{
    pthread_mutex_lock(&p->mu);
    /* Ready while a check succeeded within the grace period. A database
     * restart (a few seconds) then takes no node out of its balancer —
     * with every node on one database that would refuse everything, while
     * cached keys can still be served and the ledger retries (and has its
     * own bound, --ledger-timeout). A longer outage, a partition of this
     * node, or a check stuck on a dead connection does take it out. */
    int rc = p->last_ok > 0 && clock_s() - p->last_ok <= STORE_PROBE_GRACE_S + p->interval_s ? 0 : -1;
    *active_keys = p->n;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void store_probe_stop(store_probe *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p);
}
