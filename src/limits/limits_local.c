/* The limits' state in this process's memory (no --redis): each node counts
 * for itself. Quotas read the usage ledger at every check, plus what this
 * process has reserved and not yet committed. */
#include <pthread.h>
#include <stdlib.h>

#include "limits/limits_state.h"

/* Per key: few keys, so a chained hash table that only grows. */
typedef struct kstate {
    struct kstate *next;
    int64_t id;
    double tat;       /* GCRA's theoretical arrival time (wall seconds) */
    int64_t active;   /* requests holding a slot */
    int64_t reserved; /* files admitted, not yet in the ledger */
} kstate;

#define NBUCKETS 256

typedef struct {
    limits_state base;
    pthread_mutex_t mu;
    kstate *buckets[NBUCKETS];
} local_state;

/* With mu held. NULL only when out of memory. */
static kstate *state_of(local_state *ls, int64_t id)
{
    kstate **b = &ls->buckets[(uint64_t)id % NBUCKETS];
    for (kstate *k = *b; k; k = k->next)
        if (k->id == id) return k;
    kstate *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    k->id = id;
    k->next = *b;
    *b = k;
    return k;
}

static int local_enter(limits_state *st, int64_t key_id, const limits_enter_in *in, limits_enter_out *out)
{
    local_state *ls = (local_state *)st;
    *out = (limits_enter_out){ENTER_ADMITTED, 0, 1};
    pthread_mutex_lock(&ls->mu);
    kstate *k = state_of(ls, key_id);
    if (!k) {
        pthread_mutex_unlock(&ls->mu);
        return -1;
    }
    if (in->max_active > 0 && k->active >= in->max_active) {
        out->outcome = ENTER_CONCURRENCY;
    } else if (in->T > 0) {
        /* GCRA: each request moves tat on by T; a request is allowed while
         * tat stays within limit (burst * T) of now. */
        double tat = k->tat > in->now ? k->tat : in->now;
        if (tat + in->T - in->now <= in->limit + 1e-9) k->tat = tat = tat + in->T;
        else out->outcome = ENTER_RATE;
        out->ahead = tat - in->now;
    }
    if (out->outcome == ENTER_ADMITTED) k->active++;
    pthread_mutex_unlock(&ls->mu);
    return 0;
}

static void local_leave(limits_state *st, int64_t key_id, uint64_t slot)
{
    (void)slot;
    local_state *ls = (local_state *)st;
    pthread_mutex_lock(&ls->mu);
    kstate *k = state_of(ls, key_id);
    if (k && k->active > 0) k->active--;
    pthread_mutex_unlock(&ls->mu);
}

static int local_reserve(limits_state *st, int64_t key_id, const limits_quota_in *in, limits_quota_out *out,
                         bool *redis_failed)
{
    local_state *ls = (local_state *)st;
    *redis_failed = false;
    *out = (limits_quota_out){0};
    int64_t files = 0, tokens = 0;
    if (in->quota_llm > 0) {
        if (in->ledger(in->ledger_ctx, in->llm_per, &files, &tokens) != 0) return -1;
        out->tokens = tokens;
    }
    if (in->quota_images > 0) {
        if (in->ledger(in->ledger_ctx, in->images_per, &files, &tokens) != 0) return -1;
        out->files = files;
    }
    pthread_mutex_lock(&ls->mu);
    kstate *k = state_of(ls, key_id);
    if (k) {
        out->files += k->reserved;
        if (in->quota_images > 0 && out->files + in->nfiles > in->quota_images) out->refused = true;
        else if (in->quota_images > 0) k->reserved += in->nfiles;
    }
    pthread_mutex_unlock(&ls->mu);
    return 0;
}

static void local_release(limits_state *st, int64_t key_id, const limits_quota_in *q, int64_t n)
{
    local_state *ls = (local_state *)st;
    if (!q->quota_images) return; /* nothing was reserved */
    pthread_mutex_lock(&ls->mu);
    kstate *k = state_of(ls, key_id);
    if (k) k->reserved = k->reserved > n ? k->reserved - n : 0;
    pthread_mutex_unlock(&ls->mu);
}

/* The ledger holds the use now: only the reservation goes. */
static void local_commit(limits_state *st, int64_t key_id, const limits_quota_in *q, int64_t n, int64_t files,
                         int64_t tokens)
{
    (void)files;
    (void)tokens;
    local_release(st, key_id, q, n);
}

static const char *local_problem(limits_state *st)
{
    (void)st;
    return NULL;
}

static void local_free(limits_state *st)
{
    local_state *ls = (local_state *)st;
    for (int i = 0; i < NBUCKETS; i++)
        for (kstate *k = ls->buckets[i], *nx; k; k = nx) {
            nx = k->next;
            free(k);
        }
    pthread_mutex_destroy(&ls->mu);
    free(ls);
}

static const limits_state_ops LOCAL_OPS = {local_enter, local_leave, local_reserve, local_release,
                                           local_commit, local_problem, local_free};

limits_state *limits_local_new(void)
{
    local_state *ls = calloc(1, sizeof *ls);
    if (!ls) return NULL;
    ls->base.ops = &LOCAL_OPS;
    pthread_mutex_init(&ls->mu, NULL);
    return &ls->base;
}
