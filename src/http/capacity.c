#include "http/capacity.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "metrics/metrics.h"

typedef struct {
    int64_t key_id;
    int held;
} key_share;

struct capacity {
    /* The server's reference and one per ticket: a request (and its ticket)
     * may end after the server, while the pipeline drains at shutdown. */
    atomic_int refs;
    pthread_mutex_t mu;
    int max, per_key, used;
    /* Keys holding places now: at most max of them, so a linear scan. */
    key_share *keys;
    int nkeys;
};

struct cap_ticket {
    capacity *c;
    bool held, keyed;
    int64_t key_id;
};

capacity *capacity_new(int max, int per_key)
{
    capacity *c = calloc(1, sizeof *c);
    if (c) c->keys = calloc((size_t)(max > 0 ? max : 1), sizeof *c->keys);
    if (!c || !c->keys) {
        free(c);
        return NULL;
    }
    c->max = max;
    c->per_key = per_key < 1 ? 1 : per_key;
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void capacity_free(capacity *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1) return;
    pthread_mutex_destroy(&c->mu);
    free(c->keys);
    free(c);
}

int capacity_per_key(const capacity *c) { return c->per_key; }

cap_ticket *cap_enter(capacity *c)
{
    cap_ticket *t = malloc(sizeof *t);
    if (!t) return NULL;
    pthread_mutex_lock(&c->mu);
    bool ok = c->used < c->max;
    if (ok) c->used++;
    pthread_mutex_unlock(&c->mu);
    if (!ok) {
        free(t);
        return NULL;
    }
    *t = (cap_ticket){c, true, false, 0};
    atomic_fetch_add(&c->refs, 1);
    metrics_inflight_add(1);
    return t;
}

/* The share of key_id, or where a new one goes (with c->mu held). */
static key_share *find(capacity *c, int64_t key_id)
{
    for (int i = 0; i < c->nkeys; i++)
        if (c->keys[i].key_id == key_id) return &c->keys[i];
    return NULL;
}

bool cap_ticket_key(cap_ticket *t, int64_t key_id)
{
    if (!t || !t->held || t->keyed) return true;
    capacity *c = t->c;
    pthread_mutex_lock(&c->mu);
    key_share *k = find(c, key_id);
    bool ok = !k || k->held < c->per_key;
    if (ok && !k && c->nkeys < c->max) {
        k = &c->keys[c->nkeys++];
        *k = (key_share){key_id, 0};
    }
    if (ok && k) {
        k->held++;
        t->keyed = true;
        t->key_id = key_id;
    }
    pthread_mutex_unlock(&c->mu);
    return ok;
}

void cap_ticket_leave(void *arg)
{
    cap_ticket *t = arg;
    if (!t || !t->held) return;
    capacity *c = t->c;
    pthread_mutex_lock(&c->mu);
    c->used--;
    key_share *k = t->keyed ? find(c, t->key_id) : NULL;
    if (k && --k->held == 0) *k = c->keys[--c->nkeys];
    pthread_mutex_unlock(&c->mu);
    t->held = false;
    metrics_inflight_add(-1);
}

void cap_ticket_free(void *arg)
{
    cap_ticket *t = arg;
    if (!t) return;
    cap_ticket_leave(t);
    capacity_free(t->c);
    free(t);
}
