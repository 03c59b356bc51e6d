#include "limits/limiter.h"

#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "limits/ledger.h"
#include "util/log.h"

/* Per key: few keys, so a chained hash table that only grows. */
typedef struct kstate {
    struct kstate *next;
    int64_t id;
    double tat;       /* GCRA's theoretical arrival time (wall seconds) */
    int64_t active;   /* requests holding a slot */
    int64_t reserved; /* files admitted, not yet in the ledger */
} kstate;

#define NBUCKETS 256

struct limiter {
    keystore *ks;
    key_limits defaults;
    bool metering;
    limiter_clock now;
    ledger *lg;
    pthread_mutex_t mu;
    kstate *buckets[NBUCKETS];
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
    if (metering && !(lm->lg = ledger_start(ks, 0))) {
        pthread_mutex_destroy(&lm->mu);
        free(lm);
        return NULL;
    }
    return lm;
}

void limiter_free(limiter *lm)
{
    if (!lm) return;
    ledger_stop(lm->lg);
    for (int i = 0; i < NBUCKETS; i++)
        for (kstate *k = lm->buckets[i], *nx; k; k = nx) {
            nx = k->next;
            free(k);
        }
    pthread_mutex_destroy(&lm->mu);
    free(lm);
}

bool limiter_metering(const limiter *lm) { return lm->metering; }

void limiter_set_ledger_timeout(limiter *lm, double timeout_s) { ledger_set_timeout(lm->lg, timeout_s); }

int limiter_ledger_health(limiter *lm, char *why, size_t len) { return ledger_health(lm->lg, why, len); }

/* With lm->mu held. NULL only when out of memory. */
static kstate *state_of(limiter *lm, int64_t id)
{
    kstate **b = &lm->buckets[(uint64_t)id % NBUCKETS];
    for (kstate *k = *b; k; k = k->next)
        if (k->id == id) return k;
    kstate *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    k->id = id;
    k->next = *b;
    *b = k;
    return k;
}

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

int limiter_enter(limiter *lm, int64_t key_id, const key_limits *eff, limit_verdict *v)
{
    memset(v, 0, sizeof *v);
    double now = lm->now();
    pthread_mutex_lock(&lm->mu);
    kstate *k = state_of(lm, key_id);
    if (!k) {
        pthread_mutex_unlock(&lm->mu);
        v->status = 503;
        v->code = "out_of_memory";
        snprintf(v->message, sizeof v->message, "out of memory");
        return -1;
    }
    if (eff->max_concurrent > 0 && k->active >= eff->max_concurrent) {
        pthread_mutex_unlock(&lm->mu);
        refuse(v, "concurrency_limited", 1, "this key already has %lld request(s) open, its limit",
               (long long)eff->max_concurrent);
        return -1;
    }
    if (eff->rate > 0) {
        /* GCRA: each request moves tat on by T = period / rate; a request is
         * allowed while tat stays within burst * T of now. */
        double T = (double)eff->rate_per_s / (double)eff->rate;
        int64_t burst = eff->burst > 0 ? eff->burst : eff->rate;
        double limit = (double)burst * T;
        double tat = k->tat > now ? k->tat : now;
        bool ok = tat + T - now <= limit + 1e-9;
        if (ok) k->tat = tat = tat + T;
        double ahead = tat - now; /* how far the bucket is from full */
        int64_t remaining = (int64_t)floor((limit - ahead) / T + 1e-9);
        if (remaining < 0) remaining = 0;
        snprintf(v->policy, sizeof v->policy, "\"rate\";q=%lld;w=%lld", (long long)burst,
                 (long long)ceil(limit));
        snprintf(v->state, sizeof v->state, "\"rate\";r=%lld;t=%lld", (long long)remaining,
                 (long long)ceil(ahead - 1e-9));
        if (!ok) {
            pthread_mutex_unlock(&lm->mu);
            refuse(v, "rate_limited", (int64_t)ceil(tat + T - now - limit - 1e-9),
                   "this key's rate limit is spent (%lld per %lld s); retry later", (long long)eff->rate,
                   (long long)eff->rate_per_s);
            return -1;
        }
    }
    k->active++;
    pthread_mutex_unlock(&lm->mu);
    return 0;
}

void limiter_leave(limiter *lm, int64_t key_id)
{
    pthread_mutex_lock(&lm->mu);
    kstate *k = state_of(lm, key_id);
    if (k && k->active > 0) k->active--;
    pthread_mutex_unlock(&lm->mu);
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
static int used_in_period(limiter *lm, int64_t id, double now, int per, int64_t *files, int64_t *tokens)
{
    char from[11], to[11];
    limits_period_start(now, per, from);
    day_of(now, to);
    usage_row *rows = NULL;
    size_t n = 0;
    if (keystore_usage_get(lm->ks, id, from, to, &rows, &n) != 0) return -1;
    *files = *tokens = 0;
    for (size_t i = 0; i < n; i++) {
        *files += rows[i].files;
        *tokens += rows[i].llm_prompt_tokens + rows[i].llm_completion_tokens;
    }
    free(rows);
    return 0;
}

int limiter_reserve(limiter *lm, int64_t key_id, const key_limits *eff, int64_t nfiles, bool *llm_ok,
                    limit_verdict *v)
{
    *llm_ok = true;
    memset(v, 0, sizeof *v);
    double now = lm->now();
    int64_t files = 0, tokens = 0;
    if (eff->quota_llm_tokens > 0) {
        if (used_in_period(lm, key_id, now, eff->quota_llm_per, &files, &tokens) != 0) goto store_failed;
        *llm_ok = tokens < eff->quota_llm_tokens;
    }
    if (eff->quota_images > 0 && used_in_period(lm, key_id, now, eff->quota_images_per, &files, &tokens) != 0)
        goto store_failed;
    pthread_mutex_lock(&lm->mu);
    kstate *k = state_of(lm, key_id);
    if (k && eff->quota_images > 0 && files + k->reserved + nfiles > eff->quota_images) {
        int64_t left = eff->quota_images - files - k->reserved;
        pthread_mutex_unlock(&lm->mu);
        refuse(v, "quota_exceeded", limits_period_left(now, eff->quota_images_per),
               "this request's %lld file(s) would go over the key's quota of %lld images per %s (%lld left)",
               (long long)nfiles, (long long)eff->quota_images,
               eff->quota_images_per == QUOTA_MONTH ? "month" : "day", (long long)(left > 0 ? left : 0));
        return -1;
    }
    if (k) k->reserved += nfiles;
    pthread_mutex_unlock(&lm->mu);
    return 0;
store_failed:
    v->status = 503;
    v->code = "key_store_unavailable";
    v->retry_after = 1;
    snprintf(v->message, sizeof v->message, "the usage ledger cannot be read; try again");
    return -1;
}

void limiter_release(limiter *lm, int64_t key_id, int64_t reserved)
{
    if (reserved <= 0) return;
    pthread_mutex_lock(&lm->mu);
    kstate *k = state_of(lm, key_id);
    if (k) k->reserved = k->reserved > reserved ? k->reserved - reserved : 0;
    pthread_mutex_unlock(&lm->mu);
}

int limiter_commit(limiter *lm, int64_t key_id, usage_row *row, int64_t reserved)
{
    int rc = 0;
    if (lm->lg) {
        row->key_id = key_id;
        limiter_today(lm, row->day);
        rc = ledger_commit(lm->lg, row);
    }
    limiter_release(lm, key_id, reserved);
    return rc;
}
