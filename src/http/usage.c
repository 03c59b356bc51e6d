/* GET /api/v1/usage: the calling key's limits and its use per UTC day. The
 * key comes as for prediction (X-API-Key, Authorization: Bearer) or as
 * ?api_key=; optional from and to (YYYY-MM-DD, UTC) default to the first of
 * this month and today.
 *
 * Every store read (the key, its name, the ledger) runs on a key_check
 * thread, the connection suspended meanwhile: nothing that can block runs
 * on an HTTP thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_internal.h"
#include "http/key_check.h"
#include "keys/key_cache.h"
#include "limits/usage_report.h"
#include "util/json_out.h"

const char *get_request_key(struct MHD_Connection *c)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth && !strncasecmp(auth, "Bearer ", 7)) {
        auth += 7;
        while (*auth == ' ') auth++;
        return auth;
    }
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    return v ? v : MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "api_key");
}

static enum MHD_Result key_refused(struct MHD_Connection *c, http_req *hr, key_verdict v)
{
    if (v == KEY_UNKNOWN) return reply_error(c, hr, 401, "invalid_api_key", "the API key is unknown or revoked");
    return reply_error(c, hr, 503, "key_store_unavailable", "the API key store cannot be read; try again");
}

int get_key_check(struct MHD_Connection *c, http_req *hr, int64_t *id, key_limits *own, enum MHD_Result *ret)
{
    const char *key = get_request_key(c);
    if (!key || !*key) {
        *ret = reply_error(c, hr, 401, "missing_api_key",
                           "no API key: send Authorization: Bearer <key>, X-API-Key or ?api_key=");
        return 0;
    }
    if (!hr->key_job && key_cache_get(hr->srv->cache, key, id, own)) {
        metrics_key_lookup(true);
        return 1;
    }
    if (!hr->key_job) hr->key_job = kc_submit(hr->srv->kc, key);
    key_verdict v;
    if (!hr->key_job) {
        v = keystore_verify_limits(hr->srv->keys, key, id, own); /* out of memory or stopping: inline */
    } else {
        if (!kc_wait(hr->key_job, c)) {
            *ret = MHD_YES;
            return -1;
        }
        v = kc_verdict(hr->key_job);
        kc_key(hr->key_job, id, own);
    }
    if (v == KEY_VALID) return 1;
    *ret = key_refused(c, hr, v);
    return 0;
}

/* The report's job, run on a key_check thread; owned by the job. */
typedef struct {
    char key[KEYSTORE_KEY_MAX + 2];
    char from[11], to[11];
    bool dates_ok;
    key_cache *cache;
    limiter *lim;
    key_verdict verdict;
    json_t *report; /* NULL: the ledger could not be read */
} usage_job;

static void usage_job_free(void *p)
{
    usage_job *u = p;
    json_decref(u->report);
    free(u);
}

static void usage_run(keystore *ks, void *p)
{
    usage_job *u = p;
    int64_t id;
    key_limits own = {0};
    if (key_cache_get(u->cache, u->key, &id, &own)) {
        metrics_key_lookup(true);
        u->verdict = KEY_VALID;
    } else {
        metrics_key_lookup(false);
        u->verdict = key_cache_verify(u->cache, u->key, &id, &own);
    }
    if (u->verdict != KEY_VALID || !u->dates_ok) return;
    key_info *keys = NULL;
    size_t n = 0;
    key_info k = {.id = id};
    if (keystore_list(ks, &keys, &n) == 0)
        for (size_t i = 0; i < n; i++)
            if (keys[i].id == id) k = keys[i];
    free(keys);
    limiter_effective(u->lim, &own, &k.limits); /* what applies, the server's defaults included */
    u->report = usage_report(ks, &k, u->from, u->to);
}

/* Dates: from and to as given (or their defaults), checked; false if bad. */
static bool read_dates(struct MHD_Connection *c, http_req *hr, usage_job *u)
{
    char today[11], first[11];
    limiter_today(hr->srv->lim, today);
    memcpy(first, today, sizeof first);
    memcpy(first + 8, "01", 2);
    const char *from = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from");
    const char *to = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to");
    if (!to) to = today;
    if (!from) from = strcmp(first, to) <= 0 ? first : to;
    double tf, tt;
    if (!usage_parse_date(from, &tf) || !usage_parse_date(to, &tt) || tt < tf || (tt - tf) / 86400 >= USAGE_MAX_DAYS)
        return false;
    memcpy(u->from, from, 11);
    memcpy(u->to, to, 11);
    return true;
}

enum MHD_Result usage_handle(struct MHD_Connection *c, http_req *hr)
{
    server *s = hr->srv;
    if (!hr->key_job) {
        const char *key = get_request_key(c);
        if (!key || !*key)
            return reply_error(c, hr, 401, "missing_api_key",
                               "no API key: send Authorization: Bearer <key>, X-API-Key or ?api_key=");
        usage_job *u = calloc(1, sizeof *u);
        if (!u) return reply_error(c, hr, 500, "out_of_memory", "out of memory");
        snprintf(u->key, sizeof u->key, "%s", key);
        u->dates_ok = read_dates(c, hr, u);
        u->cache = s->cache;
        u->lim = s->lim;
        if (!(hr->key_job = kc_submit_call(s->kc, usage_run, u, usage_job_free)))
            return reply_error(c, hr, 503, "shutting_down", "the server is shutting down");
    }
    if (!kc_wait(hr->key_job, c)) return MHD_YES;
    usage_job *u = kc_ctx(hr->key_job);
    /* The key first: a caller without one learns nothing else. */
    if (u->verdict != KEY_VALID) return key_refused(c, hr, u->verdict);
    if (!u->dates_ok)
        return reply_error(c, hr, 422, "invalid_date",
                           "from and to are dates, YYYY-MM-DD; from must not be after to, and at most %d days apart",
                           USAGE_MAX_DAYS);
    if (!u->report) return reply_error(c, hr, 503, "key_store_unavailable", "the usage ledger cannot be read; try again");
    size_t len;
    char *body = json_line(json_incref(u->report), &len);
    return body ? reply_body(c, hr, 200, "application/json", body, len) : MHD_NO;
}
