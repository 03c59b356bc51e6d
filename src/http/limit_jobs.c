#include "http/limit_jobs.h"

#include <stdlib.h>

typedef struct {
    limiter *lm;
    int64_t key_id;
    key_limits eff;
    int64_t nfiles; /* a reserve */
    bool ran;       /* the call was made (a job released early is skipped) */
    bool taken;     /* the request took what it got */
    int rc;
    uint64_t slot;
    bool llm_ok;
    limit_verdict v;
} limit_job;

static void enter_run(keystore *ks, void *ctx)
{
    (void)ks;
    limit_job *l = ctx;
    l->rc = limiter_enter(l->lm, l->key_id, &l->eff, &l->v, &l->slot);
    l->ran = true;
}

/* limiter_leave never waits: it may run on an HTTP thread (kc_release). */
static void enter_free(void *ctx)
{
    limit_job *l = ctx;
    if (l->ran && !l->taken && l->rc == 0) limiter_leave(l->lm, l->key_id, l->slot);
    free(l);
}

static void reserve_run(keystore *ks, void *ctx)
{
    (void)ks;
    limit_job *l = ctx;
    l->rc = limiter_reserve(l->lm, l->key_id, &l->eff, l->nfiles, &l->llm_ok, &l->v);
    l->ran = true;
}

static void reserve_free(void *ctx)
{
    limit_job *l = ctx;
    if (l->ran && !l->taken && l->rc == 0) limiter_release(l->lm, l->key_id, &l->eff, l->nfiles);
    free(l);
}

static kc_job *submit(key_checker *k, limiter *lm, int64_t key_id, const key_limits *eff, int64_t nfiles,
                      kc_fn run, void (*ctx_free)(void *))
{
    limit_job *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    *l = (limit_job){.lm = lm, .key_id = key_id, .eff = *eff, .nfiles = nfiles};
    return kc_submit_call(k, run, l, ctx_free);
}

kc_job *lj_enter(key_checker *k, limiter *lm, int64_t key_id, const key_limits *eff)
{
    return submit(k, lm, key_id, eff, 0, enter_run, enter_free);
}

kc_job *lj_reserve(key_checker *k, limiter *lm, int64_t key_id, const key_limits *eff, int64_t nfiles)
{
    return submit(k, lm, key_id, eff, nfiles, reserve_run, reserve_free);
}

int lj_enter_result(kc_job *j, limit_verdict *v, uint64_t *slot)
{
    limit_job *l = kc_ctx(j);
    *v = l->v;
    *slot = l->taken ? 0 : l->slot;
    l->taken = true;
    return l->rc;
}

int lj_reserve_result(kc_job *j, bool *llm_ok, limit_verdict *v)
{
    limit_job *l = kc_ctx(j);
    *v = l->v;
    *llm_ok = l->llm_ok;
    int rc = l->taken && l->rc == 0 ? 1 : l->rc; /* taken once: nothing reserved for a second look */
    l->taken = true;
    return rc;
}
