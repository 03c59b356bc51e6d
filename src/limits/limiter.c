#include "limits/limiter.h"

#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "limits/ledger.h"
#include "limits/limits_redis.h"
#include "limits/limits_state.h"
#include "metrics/metrics.h"
#include "util/work_queue.h"
#include "util/log.h"

/* Redis's connect and command timeout: a limit check costs a request at
 * most this much when Redis is slow, then the client's breaker fails fast. */
#define REDIS_TIMEOUT_MS 150
/* Leaves and releases queued on the work queue (--redis) and not yet run.
 * Each is one round trip, or nothing while the breaker is open, so this is
 * far more than a stalled Redis can pile up in a timeout; past it (or when
 * the queue refuses) the caller does the work itself. */
#define DEFERRED_MAX 4096

struct limiter {
    keystore *ks;
    key_limits defaults;
    bool metering;
    limiter_clock now;
    ledger *lg;
    limits_state *st;
    bool redis, deny_on_error;
    work_queue *wq;        /* --redis: leaves and releases, off the caller's thread */
    pthread_mutex_t mu;    /* last_error_log, deferred */
    pthread_cond_t idle;   /* deferred fell to 0 (limiter_free waits for it) */
    int deferred;          /* leaves and releases queued or running on wq */
    double last_error_log; /* wall seconds; errors are logged once a minute */
    unsigned long long errors_since_log;
};

static double real_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

limiter *limiter_new(keystore *ks, const key_limits *defaults, bool metering, limiter_clock now)
{
    limiter *lm = calloc(1, sizeof *lm);
    if (!lm) return NULL;
    lm->ks = ks;
    if (defaults) lm->defaults = *defaults;
    lm->metering = metering;
    lm->now = now ? now : real_now;
    pthread_mutex_init(&lm->mu, NULL);
    pthread_cond_init(&lm->idle, NULL);
    if (!(lm->st = limits_local_new()) || (metering && !(lm->lg = ledger_start(ks, 0)))) {
        if (lm->st) lm->st->ops->free(lm->st);
        pthread_cond_destroy(&lm->idle);
        pthread_mutex_destroy(&lm->mu);
        free(lm);
        return NULL;
    }
    return lm;
}

int limiter_use_redis(limiter *lm, const char *url, bool deny, work_queue *wq, ticker *tk, char *err,
                      size_t err_len)
{
    redis_url u;
    if (redis_url_parse(url, &u, err, err_len) != 0) return -1;
    limits_state *st = limits_redis_new(&u, REDIS_TIMEOUT_MS, tk);
    if (!st) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    lm->st->ops->free(lm->st);
    lm->st = st;
    lm->wq = wq;
    lm->redis = true;
    lm->deny_on_error = deny;
    return 0;
}

bool limiter_ready(limiter *lm, const char **redis, const char **why)
{
    *why = NULL;
    *redis = "none";
    if (!lm->redis) return true;
    const char *p = lm->st->ops->problem(lm->st);
    *redis = p ? "down" : "up";
    if (p && lm->deny_on_error) *why = p;
    return !*why;
}

void limiter_free(limiter *lm)
{
    if (!lm) return;
    /* The leaves and releases still queued go to Redis before it is closed
     * (the work queue drains; they may already have run: wq_stop comes first). */
    pthread_mutex_lock(&lm->mu);
    while (lm->deferred > 0) pthread_cond_wait(&lm->idle, &lm->mu);
    pthread_mutex_unlock(&lm->mu);
    ledger_stop(lm->lg);
    lm->st->ops->free(lm->st);
    pthread_cond_destroy(&lm->idle);
    pthread_mutex_destroy(&lm->mu);
    free(lm);
}

bool limiter_metering(const limiter *lm) { return lm->metering; }

void limiter_set_ledger_timeout(limiter *lm, double timeout_s) { ledger_set_timeout(lm->lg, timeout_s); }

int limiter_ledger_health(limiter *lm, char *why, size_t len) { return ledger_health(lm->lg, why, len); }

void limiter_effective(const limiter *lm, const key_limits *own, key_limits *out)
{
    *out = *own;
    const key_limits *d = &lm->defaults;
    if (!out->rate) {
        out->rate = d->rate;
        out->rate_per_s = d->rate_per_s;
        out->burst = d->burst;
    }
    if (!out->max_concurrent) out->max_concurrent = d->max_concurrent;
    if (!out->quota_images) {
        out->quota_images = d->quota_images;
        out->quota_images_per = d->quota_images_per;
    }
    if (!out->quota_llm_tokens) {
        out->quota_llm_tokens = d->quota_llm_tokens;
        out->quota_llm_per = d->quota_llm_per;
    }
}

static void refuse(limit_verdict *v, const char *code, int64_t retry, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refuse(limit_verdict *v, const char *code, int64_t retry, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof v->message, fmt, ap);
    va_end(ap);
    v->status = 429;
    v->code = code;
    v->retry_after = retry < 1 ? 1 : retry;
}

/* Redis could not answer for a key with limits: admitted (counted, logged
 * once a minute) or, with deny, 503. 0 admitted, -1 refused (v filled). */
static int redis_failed(limiter *lm, limit_verdict *v)
{
    metrics_limits_redis_error(lm->deny_on_error);
    double now = real_now();
    pthread_mutex_lock(&lm->mu);
    lm->errors_since_log++;
    unsigned long long n = 0;
    if (now - lm->last_error_log >= 60) {
        n = lm->errors_since_log;
        lm->errors_since_log = 0;
        lm->last_error_log = now;
    }
    pthread_mutex_unlock(&lm->mu);
    if (n)
        log_warn("limits: Redis cannot be reached; %llu limit check(s) since the last report %s", n,
                 lm->deny_on_error ? "refused (--limits-on-redis-error deny)" : "admitted unchecked");
    if (!lm->deny_on_error) return 0;
    v->status = 503;
    v->code = "limits_unavailable";
    v->retry_after = 1;
    snprintf(v->message, sizeof v->message, "this key's limits cannot be checked now; try again");
    return -1;
}

int limiter_enter(limiter *lm, int64_t key_id, const key_limits *eff, limit_verdict *v, uint64_t *slot)
{
    memset(v, 0, sizeof *v);
    *slot = 0;
    if (eff->max_concurrent <= 0 && eff->rate <= 0) return 0; /* nothing to count */
    limits_enter_in in = {.now = lm->now(), .max_active = eff->max_concurrent > 0 ? eff->max_concurrent : 0};
    int64_t burst = eff->burst > 0 ? eff->burst : eff->rate;
    if (eff->rate > 0) {
        /* GCRA: each request moves tat on by T = period / rate; a request is
         * allowed while tat stays within burst * T of now. */
        in.T = (double)eff->rate_per_s / (double)eff->rate;
        in.limit = (double)burst * in.T;
    }
    limits_enter_out out;
    if (lm->st->ops->enter(lm->st, key_id, &in, &out) != 0) {
        if (!lm->redis) {
            v->status = 503;
            v->code = "out_of_memory";
            snprintf(v->message, sizeof v->message, "out of memory");
            return -1;
        }
        return redis_failed(lm, v);
    }
    if (out.outcome == ENTER_CONCURRENCY) {
        refuse(v, "concurrency_limited", 1, "this key already has %lld request(s) open, its limit",
               (long long)eff->max_concurrent);
        return -1;
    }
    if (eff->rate > 0) {
        double T = in.T, limit = in.limit, ahead = out.ahead; /* how far the bucket is from full */
        int64_t remaining = (int64_t)floor((limit - ahead) / T + 1e-9);
        if (remaining < 0) remaining = 0;
        snprintf(v->policy, sizeof v->policy, "\"rate\";q=%lld;w=%lld", (long long)burst, (long long)ceil(limit));
        snprintf(v->state, sizeof v->state, "\"rate\";r=%lld;t=%lld", (long long)remaining,
                 (long long)ceil(ahead - 1e-9));
        if (out.outcome == ENTER_RATE) {
            refuse(v, "rate_limited", (int64_t)ceil(ahead + T - limit - 1e-6),
                   "this key's rate limit is spent (%lld per %lld s); retry later", (long long)eff->rate,
                   (long long)eff->rate_per_s);
            return -1;
        }
    }
    *slot = out.slot;
    return 0;
}

bool limiter_enter_may_block(const limiter *lm, const key_limits *eff)
{
    return lm->redis && (eff->max_concurrent > 0 || eff->rate > 0);
}

/* A leave, a release or a count handed to the background thread. */
typedef struct {
    limiter *lm;
    int64_t key_id;
    uint64_t slot;     /* a leave */
    limits_quota_in q; /* or a release of n */
    int64_t n;
    bool counted; /* or a commit of n: files and tokens used (limiter_counted) */
    int64_t files, tokens;
} deferred;

static void run_deferred(void *arg)
{
    deferred *d = arg;
    limits_state *st = d->lm->st;
    if (d->slot) st->ops->leave(st, d->key_id, d->slot);
    else if (d->counted) st->ops->commit(st, d->key_id, &d->q, d->n, d->files, d->tokens);
    else st->ops->release(st, d->key_id, &d->q, d->n);
}

/* The queued call's completion. */
static void deferred_done(void *arg)
{
    deferred *d = arg;
    limiter *lm = d->lm;
    free(d);
    pthread_mutex_lock(&lm->mu);
    if (--lm->deferred == 0) pthread_cond_broadcast(&lm->idle);
    pthread_mutex_unlock(&lm->mu);
}

/* Runs d on the work queue when there is one, else (no Redis: in memory,
 * quick; or the queue is full or stopped) here. Owns d. */
static void defer(limiter *lm, deferred *d)
{
    if (lm->wq) {
        pthread_mutex_lock(&lm->mu);
        bool room = lm->deferred < DEFERRED_MAX;
        if (room) lm->deferred++;
        pthread_mutex_unlock(&lm->mu);
        if (room && wq_push(lm->wq, run_deferred, deferred_done, d) == 0) return;
        if (room) {
            pthread_mutex_lock(&lm->mu);
            if (--lm->deferred == 0) pthread_cond_broadcast(&lm->idle);
            pthread_mutex_unlock(&lm->mu);
        }
    }
    run_deferred(d);
    free(d);
}

void limiter_leave(limiter *lm, int64_t key_id, uint64_t slot)
{
    if (!slot) return;
    deferred *d = lm->wq ? malloc(sizeof *d) : NULL;
    if (d) {
        *d = (deferred){.lm = lm, .key_id = key_id, .slot = slot};
        defer(lm, d);
    } else {
        lm->st->ops->leave(lm->st, key_id, slot);
    }
}

static void day_of(double t, char out[11])
{
    time_t tt = (time_t)floor(t);
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

void limiter_today(const limiter *lm, char out[11]) { day_of(lm->now(), out); }

void limits_period_start(double t, int per, char out[11])
{
    day_of(t, out);
    if (per == QUOTA_MONTH) memcpy(out + 8, "01", 2);
}

int64_t limits_period_left(double t, int per)
{
    time_t tt = (time_t)floor(t);
    struct tm tm;
    gmtime_r(&tt, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    if (per == QUOTA_MONTH) {
        tm.tm_mday = 1;
        tm.tm_mon++;
    } else {
        tm.tm_mday++;
    }
    return (int64_t)ceil((double)timegm(&tm) - t);
}

/* Use in the current period from the ledger: files and LLM tokens. */
typedef struct {
    limiter *lm;
    int64_t id;
    double now;
} ledger_ctx;

static int used_in_period(void *ctx, int per, int64_t *files, int64_t *tokens)
{
    ledger_ctx *c = ctx;
    char from[11], to[11];
    limits_period_start(c->now, per, from);
    day_of(c->now, to);
    usage_row *rows = NULL;
    size_t n = 0;
    if (keystore_usage_get(c->lm->ks, c->id, from, to, &rows, &n) != 0) return -1;
    *files = *tokens = 0;
    for (size_t i = 0; i < n; i++) {
        *files += rows[i].files;
        *tokens += rows[i].llm_prompt_tokens + rows[i].llm_completion_tokens;
    }
    free(rows);
    return 0;
}

/* The quotas of eff at time now, as the state takes them. */
static void quota_in(const key_limits *eff, double now, int64_t nfiles, limits_quota_in *q)
{
    *q = (limits_quota_in){.nfiles = nfiles,
                           .quota_images = eff->quota_images > 0 ? eff->quota_images : 0,
                           .quota_llm = eff->quota_llm_tokens > 0 ? eff->quota_llm_tokens : 0,
                           .images_per = eff->quota_images_per,
                           .llm_per = eff->quota_llm_per};
    limits_period_start(now, q->images_per, q->images_from);
    limits_period_start(now, q->llm_per, q->llm_from);
    q->images_left_s = limits_period_left(now, q->images_per);
    q->llm_left_s = limits_period_left(now, q->llm_per);
}

bool limiter_reserve_may_block(const limiter *lm, const key_limits *eff)
{
    (void)lm;
    return eff->quota_images > 0 || eff->quota_llm_tokens > 0;
}

int limiter_reserve(limiter *lm, int64_t key_id, const key_limits *eff, int64_t nfiles, bool *llm_ok,
                    limit_verdict *v)
{
    *llm_ok = true;
    memset(v, 0, sizeof *v);
    if (eff->quota_images <= 0 && eff->quota_llm_tokens <= 0) return 0; /* nothing to count */
    double now = lm->now();
    ledger_ctx lc = {lm, key_id, now};
    limits_quota_in q;
    quota_in(eff, now, nfiles, &q);
    q.ledger = used_in_period;
    q.ledger_ctx = &lc;
    limits_quota_out out;
    bool rfail = false;
    if (lm->st->ops->reserve(lm->st, key_id, &q, &out, &rfail) != 0) {
        if (rfail) return redis_failed(lm, v) == 0 ? 1 : -1; /* admitted: nothing reserved */
        v->status = 503;
        v->code = "key_store_unavailable";
        v->retry_after = 1;
        snprintf(v->message, sizeof v->message, "the usage ledger cannot be read; try again");
        return -1;
    }
    if (q.quota_llm) *llm_ok = out.tokens < q.quota_llm;
    if (out.refused) {
        int64_t left = eff->quota_images - out.files;
        refuse(v, "quota_exceeded", q.images_left_s,
               "this request's %lld file(s) would go over the key's quota of %lld images per %s (%lld left)",
               (long long)nfiles, (long long)eff->quota_images,
               eff->quota_images_per == QUOTA_MONTH ? "month" : "day", (long long)(left > 0 ? left : 0));
        return -1;
    }
    return 0;
}

void limiter_release(limiter *lm, int64_t key_id, const key_limits *eff, int64_t reserved)
{
    if (reserved <= 0 || eff->quota_images <= 0) return;
    limits_quota_in q;
    quota_in(eff, lm->now(), 0, &q);
    deferred *d = lm->wq ? malloc(sizeof *d) : NULL;
    if (d) {
        *d = (deferred){.lm = lm, .key_id = key_id, .q = q, .n = reserved};
        defer(lm, d);
    } else {
        lm->st->ops->release(lm->st, key_id, &q, reserved);
    }
}

void limiter_counted(limiter *lm, int64_t key_id, const key_limits *eff, int64_t files, int64_t tokens,
                     int64_t reserved)
{
    if (eff->quota_images <= 0 && eff->quota_llm_tokens <= 0) return;
    limits_quota_in q;
    quota_in(eff, lm->now(), 0, &q);
    deferred *d = malloc(sizeof *d);
    if (!d) {
        lm->st->ops->commit(lm->st, key_id, &q, reserved, files, tokens);
        return;
    }
    *d = (deferred){.lm = lm, .key_id = key_id, .q = q, .n = reserved, .counted = true, .files = files, .tokens = tokens};
    defer(lm, d);
}

int limiter_commit(limiter *lm, int64_t key_id, const key_limits *eff, usage_row *row, int64_t reserved)
{
    int rc = 0;
    if (lm->lg) {
        row->key_id = key_id;
        limiter_today(lm, row->day);
        rc = ledger_commit(lm->lg, row);
    }
    if (eff->quota_images <= 0 && eff->quota_llm_tokens <= 0) return rc;
    limits_quota_in q;
    quota_in(eff, lm->now(), 0, &q);
    if (rc == 0) /* in the ledger: the shared counters take it too */
        lm->st->ops->commit(lm->st, key_id, &q, reserved, row->files, row->llm_prompt_tokens + row->llm_completion_tokens);
    else
        lm->st->ops->release(lm->st, key_id, &q, reserved);
    return rc;
}
