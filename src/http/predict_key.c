/* The key phases of a prediction request: the key authenticated (auth.c),
 * then its limits entered (rate and concurrency; the quotas wait for the
 * files to be counted, predict.c's PH_LIMITS).
 *
 * A key in a header is known with the headers, so it is decided then
 * (PH_HEAD_KEY), before any of the body is read; its limits then, on a
 * work-queue thread when they are counted in Redis. A 429 of its limits is
 * answered before the client uploads a body for nothing. A header key not
 * decided at the head is checked once the body is in (PH_KEY), a key in the
 * form (api_key) once the body is parsed (PH_FORM_KEY). */
#include <stdio.h>
#include <string.h>

#include "http/capacity.h"
#include "http/http_internal.h"
#include "http/key_check.h"
#include "http/limit_jobs.h"

/* The limiter's verdict on entering (limiter_enter's rc and v). */
static step entered(front_conn *c, http_req *hr, int rc, const limit_verdict *v, bool now)
{
    snprintf(hr->rl_policy, sizeof hr->rl_policy, "%s", v->policy);
    snprintf(hr->rl_state, sizeof hr->rl_state, "%s", v->state);
    if (rc != 0) return step_of(reply_limited(c, hr, v, now));
    hr->entered = true; /* the slot is left at cleanup, even if refused below */
    /* Its key's share of --max-inflight (capacity.h): no key takes the whole server. */
    if (!cap_ticket_key(hr->ticket, hr->key_id)) {
        limit_verdict share = {.status = 429, .code = "concurrency_limited", .retry_after = 1};
        snprintf(share.message, sizeof share.message,
                 "this key already has %d request(s) running, its share of the server (--max-inflight-per-key)",
                 capacity_per_key(hr->srv->cap));
        return step_of(reply_limited(c, hr, &share, now));
    }
    return STEP_NEXT;
}

/* The limit check running on a work-queue thread (hr->limit_job): waits for
 * it with the connection suspended, then its verdict. */
static step enter_wait(front_conn *c, http_req *hr, bool now)
{
    if (!kc_wait(hr->limit_job, c)) return STEP_AGAIN;
    limit_verdict v;
    uint64_t slot;
    int rc = lj_enter_result(hr->limit_job, &v, &slot);
    hr->limit_slot = slot;
    return entered(c, hr, rc, &v, now);
}

/* The key is valid: its concurrency and rate, before anything else is done
 * for it. now: refused at the head, answered before the body. With Redis
 * the check is a round trip: made on a work-queue thread (enter_wait). */
static step enter_limits(front_conn *c, http_req *hr, bool now)
{
    server *s = hr->srv;
    limiter_effective(s->lim, &hr->key_own, &hr->limits);
    if (limiter_enter_may_block(s->lim, &hr->limits) &&
        (hr->limit_job = lj_enter(s->kc, s->lim, hr->key_id, &hr->limits)))
        return enter_wait(c, hr, now);
    /* Nothing that waits (or the job could not be queued: stopping). */
    limit_verdict v;
    int rc = limiter_enter(s->lim, hr->key_id, &hr->limits, &v, &hr->limit_slot);
    return entered(c, hr, rc, &v, now);
}

step predict_key(front_conn *c, http_req *hr, const char *key, bool at_head)
{
    /* Resumed while its limits are checked: the key is known. */
    if (hr->limit_job) return enter_wait(c, hr, at_head);
    bool valid;
    step st = auth_check(c, hr, key, at_head, &valid);
    if (st != STEP_NEXT || !valid) return st; /* !valid: at the head, decided after the body */
    return enter_limits(c, hr, at_head);
}
