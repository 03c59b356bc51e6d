/* The API key of a prediction request and the key's limits (rate and
 * concurrency; the quotas wait for the files to be counted, predict.c).
 *
 * A key in a header is known with the headers, so it is decided then,
 * before any of the body is read: a key the cache knows (key_cache.h) at
 * once on the HTTP thread, another on a key_check thread with the
 * connection suspended. Its limits then, on a key_check thread too when
 * they are counted in Redis. A 429 of its limits is answered before the
 * client uploads a body for nothing. A key in the form (api_key) is checked
 * once the body is parsed. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/capacity.h"
#include "http/http_internal.h"
#include "http/key_check.h"
#include "http/limit_jobs.h"
#include "keys/key_cache.h"

/* Reads the key from Authorization: Bearer or X-API-Key, if either is sent. */
void predict_header_key(struct MHD_Connection *c, http_req *hr)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth && !strncasecmp(auth, "Bearer ", 7)) {
        v = auth + 7;
        while (*v == ' ') v++;
    }
    if (!v) return;
    hr->has_header_key = true;
    /* An over-long value cannot be a key; keep it truncated so it fails verification. */
    snprintf(hr->header_key, sizeof hr->header_key, "%s", v);
}

static enum MHD_Result refuse_limited(struct MHD_Connection *c, http_req *hr, const limit_verdict *v, bool now)
{
    if (v->status == 429) metrics_refused(v->code);
    hr->retry_after = v->retry_after;
    if (now) return reply_refuse_now(c, hr, v->status, v->code, v->message);
    return reply_refuse(c, hr, v->status, v->code, "%s", v->message);
}

enum MHD_Result predict_refuse_limited(struct MHD_Connection *c, http_req *hr, const limit_verdict *v)
{
    return refuse_limited(c, hr, v, false);
}

/* The limiter's verdict on entering (limiter_enter's rc and v). */
static enum MHD_Result entered(struct MHD_Connection *c, http_req *hr, int rc, const limit_verdict *v, bool now)
{
    snprintf(hr->rl_policy, sizeof hr->rl_policy, "%s", v->policy);
    snprintf(hr->rl_state, sizeof hr->rl_state, "%s", v->state);
    if (rc != 0) return refuse_limited(c, hr, v, now);
    hr->entered = true; /* the slot is left at cleanup, even if refused below */
    /* Its key's share of --max-inflight (capacity.h): no key takes the whole server. */
    if (!cap_ticket_key(hr->ticket, hr->key_id)) {
        limit_verdict share = {.status = 429, .code = "concurrency_limited", .retry_after = 1};
        snprintf(share.message, sizeof share.message,
                 "this key already has %d request(s) running, its share of the server (--max-inflight-per-key)",
                 capacity_per_key(hr->srv->cap));
        return refuse_limited(c, hr, &share, now);
    }
    hr->key_ok = true;
    return MHD_YES;
}

/* Waits for the limit check on a key_check thread (hr->limit_job), the
 * connection suspended: hr->head_wait at the head. */
static enum MHD_Result enter_wait(struct MHD_Connection *c, http_req *hr, bool now)
{
    bool done = kc_wait(hr->limit_job, c);
    hr->head_wait = now && !done;
    if (!done) return MHD_YES;
    limit_verdict v;
    uint64_t slot;
    int rc = lj_enter_result(hr->limit_job, &v, &slot);
    if (hr->entered || hr->responded) return MHD_YES; /* already decided */
    hr->limit_slot = slot;
    return entered(c, hr, rc, &v, now);
}

/* The key is valid: its concurrency and rate, before anything else is done
 * for it. now: refused at the head, answered before the body. With Redis
 * the check is a round trip: made on a key_check thread (enter_wait). */
static enum MHD_Result enter_limits(struct MHD_Connection *c, http_req *hr, int64_t id, const key_limits *own,
                                    bool now)
{
    server *s = hr->srv;
    hr->key_id = id;
    limiter_effective(s->lim, own, &hr->limits);
    if (limiter_enter_may_block(s->lim, &hr->limits) &&
        (hr->limit_job = lj_enter(s->kc, s->lim, id, &hr->limits)))
        return enter_wait(c, hr, now);
    /* Nothing that waits (or the job could not be queued: stopping). */
    limit_verdict v;
    int rc = limiter_enter(s->lim, id, &hr->limits, &v, &hr->limit_slot);
    return entered(c, hr, rc, &v, now);
}

enum MHD_Result predict_key_at_head(struct MHD_Connection *c, http_req *hr)
{
    server *s = hr->srv;
    if (hr->limit_job) return enter_wait(c, hr, true);
    int64_t id;
    key_limits own = {0};
    if (!hr->key_job) {
        if (key_cache_get(s->cache, hr->header_key, &id, &own)) {
            metrics_key_lookup(true);
            return enter_limits(c, hr, id, &own, true);
        }
        /* NULL (out of memory, stopping): checked once the body is in (finish). */
        if (!(hr->key_job = kc_submit(s->kc, hr->header_key))) return MHD_YES;
    }
    /* Suspended before libmicrohttpd reads any of the body: it calls the
     * handler's first step again on resume (predict_handle sees head_wait). */
    hr->head_wait = !kc_wait(hr->key_job, c);
    if (hr->head_wait) return MHD_YES;
    /* An unknown key, or a store error, is answered as before, once the body
     * is read (finish): this is about limits, not about telling a caller
     * without a key anything sooner. */
    if (kc_verdict(hr->key_job) != KEY_VALID) return MHD_YES;
    kc_key(hr->key_job, &id, &own);
    return enter_limits(c, hr, id, &own, true);
}

enum MHD_Result predict_check_key(struct MHD_Connection *c, http_req *hr, const char *key, bool *ok)
{
    *ok = false;
    if (hr->limit_job) {
        enum MHD_Result r = enter_wait(c, hr, false);
        *ok = hr->key_ok;
        return r;
    }
    if (!key || !*key)
        return reply_refuse(c, hr, 401, "missing_api_key",
                            "no API key: send the api_key form field, Authorization: Bearer <key> or X-API-Key");
    key_verdict v;
    int64_t id;
    key_limits own = {0};
    if (!hr->key_job && key_cache_get(hr->srv->cache, key, &id, &own)) {
        metrics_key_lookup(true);
        v = KEY_VALID;
    } else {
        if (!hr->key_job) hr->key_job = kc_submit(hr->srv->kc, key);
        if (!hr->key_job) {
            v = keystore_verify_limits(hr->srv->keys, key, &id, &own); /* out of memory or stopping: inline */
        } else {
            if (!kc_wait(hr->key_job, c)) return MHD_YES;
            v = kc_verdict(hr->key_job);
            kc_key(hr->key_job, &id, &own);
        }
    }
    switch (v) {
    case KEY_VALID: {
        enum MHD_Result r = enter_limits(c, hr, id, &own, false);
        *ok = hr->key_ok;
        return r;
    }
    case KEY_UNKNOWN: return reply_refuse(c, hr, 401, "invalid_api_key", "the API key is unknown or revoked");
    default: return reply_refuse(c, hr, 503, "key_store_unavailable", "the API key store cannot be read; try again");
    }
}
