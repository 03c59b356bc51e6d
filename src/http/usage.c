/* GET /api/v1/usage: the calling key's limits and its use per UTC day. The
 * key comes as for prediction (X-API-Key, Authorization: Bearer) or as
 * ?api_key=, checked by the dispatcher (auth.c) before the handler runs;
 * optional from and to (YYYY-MM-DD, UTC) default to the first of this month
 * and today.
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
#include "limits/usage_report.h"
#include "util/json_out.h"

/* The report's job, run on a work-queue thread; owned by the job. */
typedef struct {
    int64_t key_id;
    key_limits own;
    char from[11], to[11];
    limiter *lim;
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
    key_info *keys = NULL;
    size_t n = 0;
    key_info k = {.id = u->key_id};
    if (keystore_list(ks, &keys, &n) == 0)
        for (size_t i = 0; i < n; i++)
            if (keys[i].id == u->key_id) k = keys[i];
    free(keys);
    limiter_effective(u->lim, &u->own, &k.limits); /* what applies, the server's defaults included */
    u->report = usage_report(ks, &k, u->from, u->to);
}

/* Dates: from and to as given (or their defaults), checked; false if bad. */
static bool read_dates(front_conn *c, http_req *hr, usage_job *u)
{
    char today[11], first[11];
    limiter_today(hr->srv->lim, today);
    memcpy(first, today, sizeof first);
    memcpy(first + 8, "01", 2);
    const char *from = front_query(c, "from");
    const char *to = front_query(c, "to");
    if (!to) to = today;
    if (!from) from = strcmp(first, to) <= 0 ? first : to;
    double tf, tt;
    if (!usage_parse_date(from, &tf) || !usage_parse_date(to, &tt) || tt < tf || (tt - tf) / 86400 >= USAGE_MAX_DAYS)
        return false;
    memcpy(u->from, from, 11);
    memcpy(u->to, to, 11);
    return true;
}

/* Called at PH_RESPOND, the key valid (the dispatcher's auth_check), and
 * again on resume while the report is made. */
front_result usage_handle(front_conn *c, http_req *hr, const route_call *call)
{
    (void)call;
    server *s = hr->srv;
    if (!hr->work_job) {
        usage_job *u = calloc(1, sizeof *u);
        if (!u) return reply_error(c, hr, 500, "out_of_memory", "out of memory");
        if (!read_dates(c, hr, u)) {
            free(u);
            return reply_error(c, hr, 422, "invalid_date",
                               "from and to are dates, YYYY-MM-DD; from must not be after to, and at most %d days apart",
                               USAGE_MAX_DAYS);
        }
        u->key_id = hr->key_id;
        u->own = hr->key_own;
        u->lim = s->lim;
        if (!(hr->work_job = kc_submit_call(s->kc, usage_run, u, usage_job_free)))
            return reply_error(c, hr, 503, "shutting_down", "the server is shutting down");
    }
    if (!kc_wait(hr->work_job, c)) return FRONT_OK;
    usage_job *u = kc_ctx(hr->work_job);
    if (!u->report) return reply_error(c, hr, 503, "key_store_unavailable", "the usage ledger cannot be read; try again");
    size_t len;
    char *body = json_line(json_incref(u->report), &len);
    return body ? reply_body(c, hr, 200, "application/json", body, len) : FRONT_CLOSE;
}
