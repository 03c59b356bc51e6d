#include "keys/store_probe.h"

#include <pthread.h>
#include <stdlib.h>

#include "util/clock.h"

/* Seconds a store may fail its checks before /readyz says so. */
#define STORE_PROBE_GRACE_S 5.0

struct store_probe {
    keystore *ks;
    double interval_s;
    pthread_mutex_t mu;
    int64_t n;      /* the last successful count */
    double last_ok; /* clock_s() of the last check that succeeded; 0: none yet */
    ticker *tk;
    tk_chore *chore;
};

/* Also the ticker's chore. */
static void check(void *arg)
{
    store_probe *p = arg;
    int64_t n = 0;
    int rc = keystore_count_active(p->ks, &n);
    pthread_mutex_lock(&p->mu);
    if (rc == 0) {
        p->n = n;
        p->last_ok = clock_s();
    }
    pthread_mutex_unlock(&p->mu);
}

store_probe *store_probe_start(keystore *ks, double interval_s, ticker *tk)
{
    store_probe *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->ks = ks;
    p->interval_s = interval_s > 0 ? interval_s : 1;
    p->tk = tk;
    pthread_mutex_init(&p->mu, NULL);
    check(p);
    if (!(p->chore = ticker_add(tk, p->interval_s, true, check, p))) {
        pthread_mutex_destroy(&p->mu);
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
    ticker_remove(p->tk, p->chore);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
