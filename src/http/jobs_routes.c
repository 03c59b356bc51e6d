/* The jobs routes (jobs/job_store.h): POST /api/v1/jobs, GET /api/v1/jobs,
 * GET and DELETE /api/v1/jobs/{id}; GET /api/v1/jobs/{id}/events and
 * /results stream from jobs_stream.c. The key comes as on the other routes
 * (X-API-Key, Authorization: Bearer, ?api_key=, or "api_key" in a POST's
 * body) and is checked by the one authentication step (auth.c).
 *
 * Phases: PH_BODY (kept whole), then PH_KEY with a key in the headers or
 * URL; without one a creation's body is parsed first (PH_PARSE) for its
 * api_key (PH_FORM_KEY); then PH_RESPOND, the call itself. Every store
 * access and the body's parse run on a work-queue thread, the connection
 * suspended meanwhile. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_internal.h"
#include "http/key_check.h"
#include "jobs/job_store.h"
#include "jobs/webhook_sender.h"
#include "keys/sha256_hex.h"
#include "pipeline/slice_opts.h"
#include "util/json_out.h"
#include "video/video_meta.h"

#define JOBS_PATH "/api/v1/jobs"
#define MAX_URL_LEN 8192
#define LIST_DEFAULT 20
#define LIST_MAX 100

typedef enum { OP_CREATE,
               OP_LIST,
               OP_GET,
               OP_CANCEL,
               OP_EVENTS,
               OP_RESULTS } jobs_op;

/* One call's work and answer, run on a work-queue thread; owned by the job. */
typedef struct {
    jobs_op op;
    server *srv;
    job_store *js;
    char key[KEYSTORE_KEY_MAX + 2]; /* parse_only: the body's api_key */
    int64_t key_id;                 /* the caller's key, valid */
    key_limits own;
    bool parse_only; /* a creation without a key in the headers: parse the body for its api_key */
    json_t *root;    /* a creation's body, parsed */
    char id[JOB_ID_LEN + 8], before[JOB_ID_LEN + 8];
    bool has_before;
    int limit;
    char *body; /* create */
    size_t body_len;
    char idem[256];
    bool has_idem;
    /* the answer: status and (2xx) body, or an error */
    unsigned status;
    char code[48], message[300];
    json_t *answer;
    bool limited;
    limit_verdict lv;
} jobs_call;

static void call_free(void *p)
{
    jobs_call *j = p;
    free(j->body);
    json_decref(j->root);
    json_decref(j->answer);
    free(j);
}

static void fail(jobs_call *j, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(jobs_call *j, unsigned status, const char *code, const char *fmt, ...)
{
    j->status = status;
    snprintf(j->code, sizeof j->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->message, sizeof j->message, fmt, ap);
    va_end(ap);
}

json_t *jobs_info_json(const job_info *i)
{
    return json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:o}", "id", i->id, "status", i->status, "total", (json_int_t)i->total,
                     "succeeded", (json_int_t)i->succeeded, "failed", (json_int_t)i->failed, "created_at",
                     (json_int_t)i->created_at, "finished_at",
                     i->finished_at ? json_integer(i->finished_at) : json_null());
}

/* An item's per-file option, checked by v2's own parsers (slice_opts_parse,
 * video_meta_key) with v2's codes, and kept in opts to apply when it runs.
 * 1 taken, 0 not one of them, -1 refused. */
static int item_option(jobs_call *j, size_t i, const char *k, json_t *x, json_t *opts)
{
    char msg[160];
    if (!strcmp(k, "slice")) {
        slice_opts so;
        if (slice_opts_parse(x, &so, msg, sizeof msg)) {
            fail(j, 422, "invalid_slice", "items[%zu].%s", i, msg);
            return -1;
        }
    } else {
        video_meta vm = {0};
        int vr = video_meta_key(&vm, k, x, msg, sizeof msg);
        if (vr == 0) return 0;
        if (vr < 0) {
            fail(j, 422, "invalid_item", "items[%zu].%s", i, msg);
            return -1;
        }
    }
    if (json_object_set(opts, k, x)) {
        fail(j, 500, "out_of_memory", "out of memory");
        return -1;
    }
    return 1;
}

/* One item of the body: {url (or image_url), is_yolo, is_ocr, is_llm, model}
 * and v2's per-file options; *opts_text (caller frees) holds the options
 * given, or NULL. */
static int parse_item(jobs_call *j, size_t i, json_t *v, job_item_spec *it, char **opts_text, const stage_set *set,
                      const json_t *params)
{
    if (!json_is_object(v)) {
        fail(j, 422, "invalid_item", "items[%zu] must be an object with url, is_yolo, is_ocr, is_llm, model", i);
        return -1;
    }
    json_t *opts = json_object();
    if (!opts) {
        fail(j, 500, "out_of_memory", "out of memory");
        return -1;
    }
    const char *k;
    json_t *x;
    int rc = 0;
    json_object_foreach(v, k, x) {
        bool *flag = !strcmp(k, "is_yolo") ? &it->is_yolo : !strcmp(k, "is_ocr") ? &it->is_ocr
            : !strcmp(k, "is_llm")                                               ? &it->is_llm
                                                                                 : NULL;
        int taken;
        if (flag) {
            if (!json_is_boolean(x) && !json_is_null(x)) {
                fail(j, 422, "invalid_item", "items[%zu].%s must be true or false", i, k);
                rc = -1;
                break;
            }
            *flag = json_is_true(x);
        } else if (!strcmp(k, "url") || !strcmp(k, "image_url")) {
            if (!json_is_string(x) || !json_string_length(x) || json_string_length(x) > MAX_URL_LEN) {
                fail(j, 422, "invalid_item", "items[%zu].url must be a string of 1 to %d bytes", i, MAX_URL_LEN);
                rc = -1;
                break;
            }
            it->url = json_string_value(x);
        } else if (!strcmp(k, "model")) {
            if (!json_is_string(x) && !json_is_null(x)) {
                fail(j, 422, "invalid_model", "items[%zu].model must be a model's name (GET /api/v1/models)", i);
                rc = -1;
                break;
            }
            it->model = json_string_value(x);
        } else if ((taken = item_option(j, i, k, x, opts)) != 0) {
            if (taken < 0) {
                rc = -1;
                break;
            }
        } else {
            fail(j, 422, "invalid_item",
                 "items[%zu] has unknown key '%.64s' (expected url, is_yolo, is_ocr, is_llm, model, slice, fps,"
                 " max_frames, track, track_stream)",
                 i, k);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && json_object_size(opts) && !(*opts_text = json_dumps(opts, JSON_COMPACT))) {
        fail(j, 500, "out_of_memory", "out of memory");
        rc = -1;
    }
    json_decref(opts);
    if (rc) return -1;
    it->opts = *opts_text;
    if (!it->url) {
        fail(j, 422, "invalid_item", "items[%zu] has no url", i);
        return -1;
    }
    sight_error e;
    const stage *y = set->yolo;
    if (it->is_yolo && it->model && y && y->validate_model && y->validate_model(y->self, it->model, params, &e)) {
        fail(j, 422, e.code, "items[%zu]: %s", i, e.message);
        return -1;
    }
    return 0;
}

/* The body's options (as v2's) and the stages' check of them. */
static int parse_options(jobs_call *j, json_t *root, json_t **params, const char **query, json_t **webhook)
{
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        int opt = -1;
        for (int i = 0; FORM_OPTION_FIELDS[i]; i++)
            if (!strcmp(k, FORM_OPTION_FIELDS[i])) opt = i;
        if (opt >= 0) {
            if (!*params) *params = json_object();
            json_object_set(*params, k, v);
        } else if (!strcmp(k, "query")) {
            if (!json_is_string(v) && !json_is_null(v)) {
                fail(j, 422, "invalid_field", "query must be a string");
                return -1;
            }
            *query = json_string_value(v);
        } else if (!strcmp(k, "webhook")) {
            *webhook = v;
        } else if (strcmp(k, "api_key") && strcmp(k, "items")) {
            fail(j, 422, "unknown_field", "unknown field '%.64s' (expected api_key, query, items and v2's options)", k);
            return -1;
        }
    }
    return 0;
}

static void do_create(jobs_call *j, int64_t key_id, json_t *root)
{
    const sight_config *cfg = &j->srv->cfg;
    json_t *items = json_object_get(root, "items"), *params = NULL, *webhook = NULL;
    const char *query = NULL;
    if (parse_options(j, root, &params, &query, &webhook)) goto out;
    const char *hook_url = NULL, *hook_secret = NULL;
    if (webhook && !json_is_null(webhook)) {
        json_t *u = json_object_get(webhook, "url"), *sec = json_object_get(webhook, "secret");
        hook_url = json_string_value(u);
        hook_secret = json_string_value(sec);
        bool https = hook_url && !strncasecmp(hook_url, "https://", 8);
        bool http = hook_url && !strncasecmp(hook_url, "http://", 7) && cfg->url_http;
        if (!json_is_object(webhook) || json_object_size(webhook) != 2 || !(https || http) ||
            strlen(hook_url) > MAX_URL_LEN) {
            fail(j, 422, "invalid_webhook", "webhook must be {\"url\": \"https://...\", \"secret\": \"whsec_...\"}");
            goto out;
        }
        if (webhook_sign(hook_secret, NULL, 0, NULL, NULL, 0) != 0) {
            fail(j, 422, "invalid_webhook_secret", "webhook.secret must be \"whsec_\" and the base64 of 1 to 192 bytes");
            goto out;
        }
    }
    size_t n = json_is_array(items) ? json_array_size(items) : 0;
    if (!n) {
        fail(j, 422, "no_items", "items must be a non-empty array of {url, is_yolo, is_ocr, is_llm, model}");
        goto out;
    }
    if (n > (size_t)cfg->max_job_items) {
        fail(j, 413, "too_many_items", "more than %d items (--max-job-items)", cfg->max_job_items);
        goto out;
    }
    const stage_set *set = pipeline_stages(j->srv->pipe);
    const stage *st[3] = {set->yolo, set->ocr, set->llm};
    sight_error e;
    for (int i = 0; i < 3 && params; i++)
        if (st[i] && st[i]->validate && st[i]->validate(st[i]->self, params, &e)) {
            fail(j, 422, e.code, "%s", e.message);
            goto out;
        }
    job_item_spec *spec = calloc(n, sizeof *spec);
    char **opts = calloc(n, sizeof *opts);
    if (!spec || !opts) {
        free(spec);
        free(opts);
        fail(j, 500, "out_of_memory", "out of memory");
        goto out;
    }
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) bad = parse_item(j, i, json_array_get(items, i), &spec[i], &opts[i], set, params);
    char hash[65], *ptext = params ? json_dumps(params, JSON_COMPACT) : NULL;
    sha256_hex(j->body, j->body_len, hash);
    job_new nj = {.key_id = key_id, .query = query, .params = ptext, .items = spec, .nitems = n, .idem_key = j->has_idem ? j->idem : NULL, .body_hash = hash, .max_open = cfg->max_open_jobs, .webhook_url = hook_url, .webhook_secret = hook_secret};
    job_info info;
    job_create_rc rc = bad ? JOB_STORE_ERROR : job_store_create(j->js, &nj, &info);
    free(ptext);
    free(spec);
    for (size_t i = 0; i < n; i++) free(opts[i]);
    free(opts);
    if (bad) goto out;
    switch (rc) {
    case JOB_CREATED:
    case JOB_REPLAYED:
        j->status = rc == JOB_CREATED ? 201 : 200;
        j->answer = jobs_info_json(&info);
        break;
    case JOB_KEY_REUSED:
        fail(j, 422, "idempotency_key_reused", "this Idempotency-Key was used within 24 h for another body");
        break;
    case JOB_TOO_MANY_OPEN:
        fail(j, 429, "too_many_open_jobs", "the key already has %d queued or running jobs (--max-open-jobs)",
             cfg->max_open_jobs);
        break;
    default: fail(j, 503, "job_store_unavailable", "the job store cannot be written; try again");
    }
out:
    json_decref(params);
}

/* The key's rate applies to creating a job (its concurrency slot is held
 * only for the call). Quotas count items as they run (job_runner.h): an
 * item's use is counted once its commit has written it to the ledger, so
 * without metering (no ledger, and no use captured) a key with a quota is
 * refused jobs rather than let past it. 0 admitted. */
static int admit_create(jobs_call *j, int64_t key_id, const key_limits *own)
{
    key_limits eff;
    limiter_effective(j->srv->lim, own, &eff);
    if ((eff.quota_images > 0 || eff.quota_llm_tokens > 0) && !j->srv->cfg.metering) {
        fail(j, 403, "jobs_unavailable_with_quota",
             "jobs are not available to a key with an image or LLM-token quota with --metering=false; use the v2 routes");
        return -1;
    }
    uint64_t slot;
    if (limiter_enter(j->srv->lim, key_id, &eff, &j->lv, &slot) != 0) {
        j->limited = true;
        return -1;
    }
    limiter_leave(j->srv->lim, key_id, slot);
    return 0;
}

static void call_run(keystore *ks, void *p)
{
    (void)ks;
    jobs_call *j = p;
    if (j->op == OP_CREATE && !j->root) {
        json_error_t jerr;
        j->root = json_loadb(j->body, j->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (j->parse_only) {
            json_t *k = json_object_get(j->root, "api_key");
            if (json_is_string(k)) snprintf(j->key, sizeof j->key, "%s", json_string_value(k));
            if (!j->root)
                fail(j, 400, "malformed_json", "the body is not valid JSON: %s (line %d)", jerr.text, jerr.line);
            return;
        }
    }
    job_info info;
    int rc;
    switch (j->op) {
    case OP_CREATE:
        if (!j->root) fail(j, 400, "malformed_json", "the body is not valid JSON");
        else if (!json_is_object(j->root)) fail(j, 422, "invalid_body", "the body must be a JSON object");
        else if (admit_create(j, j->key_id, &j->own) == 0) do_create(j, j->key_id, j->root);
        break;
    case OP_LIST: {
        job_info *list = NULL;
        size_t n = 0;
        if (job_store_list(j->js, j->key_id, j->has_before ? j->before : NULL, j->limit, &list, &n) != 0) {
            fail(j, 503, "job_store_unavailable", "the job store cannot be read; try again");
            break;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) json_array_append_new(arr, jobs_info_json(&list[i]));
        j->answer = json_pack("{s:o,s:o}", "jobs", arr, "next_before",
                              n == (size_t)j->limit && n ? json_string(list[n - 1].id) : json_null());
        j->status = 200;
        free(list);
        break;
    }
    default:
        rc = j->op == OP_CANCEL ? job_store_cancel(j->js, j->key_id, j->id, &info)
                                : job_store_get(j->js, j->key_id, j->id, &info);
        if (rc == 1) fail(j, 404, "job_not_found", "no job %.40s for this key", j->id);
        else if (rc < 0) fail(j, 503, "job_store_unavailable", "the job store cannot be read; try again");
        else {
            j->status = 200;
            j->answer = jobs_info_json(&info);
        }
    }
}

/* The route's op and job id from the URL and method; false: no such route. */
static bool op_of(jobs_call *j, const char *url, const char *method)
{
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strcmp(url, JOBS_PATH)) {
        j->op = get ? OP_LIST : OP_CREATE;
        return get || !strcmp(method, "POST");
    }
    const char *rest = url + strlen(JOBS_PATH) + 1; /* the route table matched JOBS_PATH "/" */
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!idlen || idlen >= sizeof j->id) idlen = 0; /* matches no job: 404 after the key */
    memcpy(j->id, rest, idlen);
    j->id[idlen] = '\0';
    if (!slash) {
        j->op = get ? OP_GET : OP_CANCEL;
        return get || !strcmp(method, "DELETE");
    }
    j->op = !strcmp(slash, "/events") ? OP_EVENTS : !strcmp(slash, "/results") ? OP_RESULTS
                                                                               : OP_GET;
    return (j->op == OP_EVENTS || j->op == OP_RESULTS) && get;
}

static void read_list_args(front_conn *c, jobs_call *j)
{
    const char *lim = front_query(c, "limit");
    const char *before = front_query(c, "before");
    if (!before) before = front_query(c, "cursor");
    long n = lim ? strtol(lim, NULL, 10) : LIST_DEFAULT;
    j->limit = n < 1 ? 1 : n > LIST_MAX ? LIST_MAX
                                        : (int)n;
    if (before && *before) {
        snprintf(j->before, sizeof j->before, "%s", before);
        j->has_before = true;
    }
}

/* What the request's line and headers say of the call (j): checked once the
 * body is in, and again to fill the call that runs (the same answer). */
static step call_fill(front_conn *c, http_req *hr, const route_call *call, jobs_call *j)
{
    server *s = hr->srv;
    if (!op_of(j, call->url, call->method))
        return step_of(reply_error(c, hr, 405, "method_not_allowed", "%s is not allowed on %.200s", call->method,
                                   call->url));
    j->srv = s;
    if (!(j->js = atomic_load(&s->jobs)))
        return step_of(reply_error(c, hr, 501, "jobs_unavailable",
                                   "jobs are not available: the key store could not carry them (see the log)"));
    if (hr->too_large)
        return step_of(reply_error(c, hr, 413, "body_too_large", "the request body is over the %lld byte limit",
                                   (long long)s->cfg.max_body_bytes));
    const char *idem = front_header(c, "Idempotency-Key");
    if (idem && (strlen(idem) == 0 || strlen(idem) >= sizeof j->idem))
        return step_of(reply_error(c, hr, 422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 bytes"));
    if (idem) {
        snprintf(j->idem, sizeof j->idem, "%s", idem);
        j->has_idem = true;
    }
    if (j->op == OP_LIST) read_list_args(c, j);
    return STEP_NEXT;
}

/* PH_BODY: kept whole (a creation's), up to the body limit. */
static step take_body(front_conn *c, http_req *hr, const route_call *call)
{
    server *s = hr->srv;
    if (*call->upload_size > 0) {
        int rc = hr->too_large ? BUF_TOO_BIG : buf_add(&hr->raw, call->upload, *call->upload_size);
        hr->body_bytes += (int64_t)*call->upload_size;
        *call->upload_size = 0;
        if (rc == BUF_TOO_BIG) hr->too_large = true;
        return rc == BUF_NOMEM || hr->body_bytes > 2 * s->cfg.max_body_bytes ? STEP_CLOSE : STEP_AGAIN;
    }
    jobs_call j = {0};
    step st = call_fill(c, hr, call, &j);
    if (st != STEP_NEXT) return st;
    const char *key = auth_request_key(c, true);
    /* Without a key in the headers or URL, a creation's may be in its body. */
    hr->phase = (key && *key) || j.op != OP_CREATE ? PH_KEY : PH_PARSE;
    return STEP_NEXT;
}

/* PH_PARSE: the body parsed on a work-queue thread, for its api_key. */
static step parse_body(front_conn *c, http_req *hr)
{
    if (!hr->work_job) {
        jobs_call *j = calloc(1, sizeof *j);
        if (!j) return step_of(reply_error(c, hr, 500, "out_of_memory", "out of memory"));
        j->op = OP_CREATE;
        j->parse_only = true;
        j->body = buf_take(&hr->raw, &j->body_len);
        if (!(hr->work_job = kc_submit_call(hr->srv->kc, call_run, j, call_free)))
            return step_of(reply_error(c, hr, 503, "shutting_down", "the server is shutting down"));
    }
    if (!kc_wait(hr->work_job, c)) return STEP_AGAIN;
    const jobs_call *j = kc_ctx(hr->work_job);
    /* Not JSON, and no key anywhere: nothing else can be read from it. */
    if (j->status >= 400) return step_of(reply_error(c, hr, j->status, j->code, "%s", j->message));
    hr->phase = PH_FORM_KEY;
    return STEP_NEXT;
}

/* PH_KEY or PH_FORM_KEY: the one authentication step, whatever carried the key. */
static step check_key(front_conn *c, http_req *hr)
{
    const char *key =
        hr->phase == PH_KEY ? auth_request_key(c, true) : ((const jobs_call *)kc_ctx(hr->work_job))->key;
    bool valid;
    step st = auth_check(c, hr, key, false, &valid);
    if (st != STEP_NEXT) return st;
    hr->phase = PH_RESPOND;
    return STEP_NEXT;
}

/* PH_RESPOND: the call, run on a work-queue thread, and its answer. */
static step respond(front_conn *c, http_req *hr, const route_call *call)
{
    server *s = hr->srv;
    jobs_call *parsed = hr->work_job ? kc_ctx(hr->work_job) : NULL;
    if (!hr->work_job || parsed->parse_only) {
        jobs_call *j = calloc(1, sizeof *j);
        if (!j) return step_of(reply_error(c, hr, 500, "out_of_memory", "out of memory"));
        step st = call_fill(c, hr, call, j);
        if (st != STEP_NEXT) {
            free(j);
            return st;
        }
        j->key_id = hr->key_id;
        j->own = hr->key_own;
        if (parsed) {
            /* The body parsed already, for its key. */
            j->root = parsed->root;
            parsed->root = NULL;
            kc_release(hr->work_job);
            hr->work_job = NULL;
        } else if (j->op == OP_CREATE) {
            j->body = buf_take(&hr->raw, &j->body_len);
        }
        if (!(hr->work_job = kc_submit_call(s->kc, call_run, j, call_free)))
            return step_of(reply_error(c, hr, 503, "shutting_down", "the server is shutting down"));
    }
    if (!kc_wait(hr->work_job, c)) return STEP_AGAIN;
    jobs_call *j = kc_ctx(hr->work_job);
    if (j->limited) return step_of(reply_limited(c, hr, &j->lv, false));
    if (j->status >= 400) return step_of(reply_error(c, hr, j->status, j->code, "%s", j->message));
    if (j->op == OP_EVENTS || j->op == OP_RESULTS) {
        int64_t after = -1;
        const char *a = front_query(c, "after");
        if (a) {
            char *end;
            after = strtoll(a, &end, 10);
            if (*end || end == a || after < 0)
                return step_of(
                    reply_error(c, hr, 422, "invalid_after", "after must be a whole number (the last seq read)"));
        }
        if (j->op == OP_EVENTS && after < 0) after = 0;
        return step_of(jobs_stream_start(c, hr, j->js, j->id, j->op == OP_EVENTS, after));
    }
    size_t len;
    char *body = json_line(json_incref(j->answer), &len);
    return step_of(body ? reply_body(c, hr, j->status, "application/json", body, len) : FRONT_CLOSE);
}

front_result jobs_handle(front_conn *c, http_req *hr, const route_call *call)
{
    for (;;) {
        step st;
        switch (hr->phase) {
        case PH_ADMIT:
            buf_init(&hr->raw, (size_t)hr->srv->cfg.max_body_bytes);
            hr->phase = PH_BODY;
            return FRONT_OK;
        case PH_BODY: st = take_body(c, hr, call); break;
        case PH_PARSE: st = parse_body(c, hr); break;
        case PH_KEY:
        case PH_FORM_KEY: st = check_key(c, hr); break;
        case PH_RESPOND: st = respond(c, hr, call); break;
        default: return FRONT_OK;
        }
        if (st != STEP_NEXT) return step_result(st);
    }
}
