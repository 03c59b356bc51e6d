/* The prediction routes, POST /api/v1/inference/predict/...: stream and
 * batch take a multipart upload (v1), stream/v2 and batch/v2 a JSON body of
 * image URLs (v2, ROUTE_JSON); DeepStack's is a batch of one upload. The
 * stream routes answer with NDJSON lines as the work goes; the batch routes
 * wait and answer once with every result (their route's batch_answer).
 *
 * One loop over the request's phases (predict_handle), cheapest checks
 * first: PH_ADMIT (shutdown, 429, content type, declared size), PH_HEAD_KEY
 * (a header key and its rate and concurrency, predict_key.c), all before any
 * of the body is read; PH_BODY (parsed as it arrives, every limit enforced);
 * PH_KEY (a header key not decided at the head), PH_PARSE, PH_FORM_KEY,
 * PH_LIMITS (form validation, options, quotas), and only then the 200 and
 * the stream, or PH_RESPOND while a batch collects its results. Every
 * refusal before the stream is a JSON error. */
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "detect/model_registry.h"
#include "http/capacity.h"
#include "http/http_internal.h"
#include "http/key_check.h"
#include "http/limit_jobs.h"
#include "http/multipart.h"
#include "http/predict_answer.h"

/* The multipart parser's callbacks feed the form model. */
static int on_part_begin(void *ctx, const char *name, const char *filename, const char *content_type)
{
    return form_part_begin(&((http_req *)ctx)->form, name, filename);
}
static int on_part_data(void *ctx, const char *data, size_t len)
{
    return form_part_data(&((http_req *)ctx)->form, data, len);
}
static int on_part_end(void *ctx) { return form_part_end(&((http_req *)ctx)->form); }
static const mp_callbacks FORM_CALLBACKS = {on_part_begin, on_part_data, on_part_end};

/* A url-encoded form cannot carry files; it is small and read whole. */
#define MAX_URLENCODED (64 * 1024)

static step form_failed(front_conn *c, http_req *hr)
{
    const sight_error *e = &hr->form.err;
    return step_of(reply_error(c, hr, e->status, e->code, "%s", e->message));
}

/* --max-parts, raised where needed so that a request with --max-files files
 * always fits (a v1 file takes two parts, a v2 item up to six JSON values). */
static int max_parts(const sight_config *cfg)
{
    int64_t need = 8 * (int64_t)cfg->max_files + 16;
    return cfg->max_parts >= need ? cfg->max_parts : need > INT_MAX ? INT_MAX
                                                                    : (int)need;
}

/* PH_ADMIT, the handler's first call: what the headers alone decide. */
static step admit_request(front_conn *c, http_req *hr)
{
    server *s = hr->srv;
    const char *expect = front_header(c, "Expect");
    hr->expect_continue = expect && !strcasecmp(expect, "100-continue");
    if (atomic_load(&s->shutting_down))
        return step_of(reply_refuse(c, hr, 503, "shutting_down", "the server is shutting down"));
    char why[160];
    if (limiter_ledger_health(s->lim, why, sizeof why) != 0)
        return step_of(reply_refuse(c, hr, 503, "ledger_unavailable", "%s; try again later", why));
    /* A place in --max-inflight until the request's work is over (capacity.h);
     * s->inflight counts it until its answer is sent (shutdown waits on that). */
    if (!(hr->ticket = cap_enter(s->cap)))
        return step_of(reply_refuse(c, hr, 429, "too_many_requests",
                                    "%d prediction requests are already running; retry shortly", s->cfg.max_inflight));
    atomic_fetch_add(&s->inflight, 1);
    hr->counted = true;

    const char *ct = front_header(c, "Content-Type");
    bool json_body = hr->route->flags & ROUTE_JSON;
    if (json_body) {
        if (!ct || strncasecmp(ct, "application/json", 16))
            return step_of(reply_refuse(c, hr, 415, "unsupported_media_type", "send application/json (got %.100s)",
                                        ct ? ct : "no Content-Type"));
    } else {
        /* A url-encoded form cannot carry files, but reading it lets the answer be
         * the helpful 422 "no_files" (or 401) rather than a bare 415. */
        hr->urlencoded = ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33);
        if (!ct || (strncasecmp(ct, "multipart/form-data", 19) && !hr->urlencoded))
            return step_of(reply_refuse(c, hr, 415, "unsupported_media_type", "send multipart/form-data (got %.100s)",
                                        ct ? ct : "no Content-Type"));
    }
    const char *cl = front_header(c, "Content-Length");
    if (cl && strtoll(cl, NULL, 10) > s->cfg.max_body_bytes)
        return step_of(reply_refuse(c, hr, 413, "body_too_large", "the request body is over the %lld byte limit",
                                    (long long)s->cfg.max_body_bytes));
    if (hr->ds_model[0] && (!s->reg || !model_registry_has(s->reg, hr->ds_model)))
        return step_of(reply_refuse(c, hr, 404, "unknown_model",
                                    "no model is called '%.64s' (GET /api/v1/models lists them)", hr->ds_model));
    form_limits lim = {s->cfg.max_file_bytes, s->cfg.max_files, max_parts(&s->cfg)};
    form_init(&hr->form, &lim);
    hr->form.deepstack = hr->route->flags & ROUTE_DEEPSTACK;
    /* A JSON body is kept whole; take_body checks the body limit before it
     * grows, so that cap is never the one that refuses. */
    buf_init(&hr->raw, hr->urlencoded ? MAX_URLENCODED : (size_t)s->cfg.max_body_bytes);
    if (!hr->urlencoded && !json_body) {
        char boundary[80];
        if (mp_boundary(ct, boundary, sizeof boundary) != 0)
            return step_of(reply_refuse(c, hr, 400, "malformed_multipart",
                                        "multipart/form-data without a usable boundary parameter"));
        hr->mp = mp_new(boundary, &FORM_CALLBACKS, hr);
        if (!hr->mp) return step_of(reply_refuse(c, hr, 500, "out_of_memory", "out of memory"));
    }
    const char *key = auth_request_key(c, false);
    if (key) {
        hr->has_header_key = true;
        /* An over-long value cannot be a key; kept truncated, it fails verification. */
        snprintf(hr->header_key, sizeof hr->header_key, "%s", key);
    }
    hr->phase = PH_HEAD_KEY;
    return STEP_NEXT;
}

/* PH_HEAD_KEY: a header key and its limits, before any of the body is read
 * (suspended while checked off the thread: called again on resume). */
static step head_key(front_conn *c, http_req *hr)
{
    if (hr->has_header_key && hr->header_key[0]) {
        step st = predict_key(c, hr, hr->header_key, true);
        if (st != STEP_NEXT) return st;
    }
    hr->phase = PH_BODY;
    return STEP_AGAIN; /* the body comes with the next calls */
}

/* Lets each stage some file asks for check the request's options now, so a bad
 * value is a 422 before the stream rather than an error line per file. */
static int validate_options(const stage_set *set, const form *f, sight_error *err)
{
    bool want_yolo = false, want_ocr = false, want_llm = false;
    for (size_t i = 0; i < f->nfiles; i++) {
        want_yolo |= f->meta[i].is_yolo;
        want_ocr |= f->meta[i].is_ocr;
        want_llm |= f->meta[i].is_llm;
    }
    const stage *st[3] = {want_yolo ? set->yolo : NULL, want_ocr ? set->ocr : NULL, want_llm ? set->llm : NULL};
    for (int i = 0; i < 3; i++)
        if (st[i] && st[i]->validate && st[i]->validate(st[i]->self, f->params, err)) return -1;
    /* Each model a file names must exist, and take the options (its classes). */
    for (size_t i = 0; st[0] && st[0]->validate_model && i < f->nfiles; i++)
        if (f->meta[i].is_yolo && f->meta[i].model && st[0]->validate_model(st[0]->self, f->meta[i].model, f->params, err))
            return -1;
    return 0;
}

/* A request's link to the usage ledger (pipeline's meter hook). */
typedef struct {
    limiter *lim;
    int64_t key_id, reserved;
    key_limits limits;
    bool done;
} meter_ctx;

static int meter_commit(void *ctx, const request_usage *u)
{
    meter_ctx *m = ctx;
    usage_row row = {.requests = 1, .files = u->files, .succeeded = u->succeeded, .failed = u->failed, .megapixels = u->megapixels, .bytes_in = u->bytes_in, .yolo_runs = u->yolo_runs, .ocr_runs = u->ocr_runs, .llm_calls = u->llm_calls, .llm_prompt_tokens = u->llm_prompt_tokens, .llm_completion_tokens = u->llm_completion_tokens};
    int rc = limiter_commit(m->lim, m->key_id, &m->limits, &row, m->reserved);
    m->done = true;
    return rc;
}

static void meter_free(void *ctx)
{
    meter_ctx *m = ctx;
    if (!m->done) limiter_release(m->lim, m->key_id, &m->limits, m->reserved);
    free(m);
}

/* Moves the validated form into a pipeline request (which takes everything
 * given to it, whether it is made or not). */
static predict_request *build_request(http_req *hr)
{
    form *f = &hr->form;
    file_job *files = calloc(f->nfiles ? f->nfiles : 1, sizeof *files);
    for (size_t i = 0; files && i < f->nfiles; i++) {
        const form_meta *m = &f->meta[i];
        files[i] = (file_job){.filename = form_take_filename(f, i), .url = form_take_url(f, i), .is_yolo = m->is_yolo, .is_ocr = m->is_ocr, .is_llm = m->is_llm, .llm_refused = m->is_llm && hr->llm_refused};
        files[i].data = form_take_file(f, i, &files[i].len);
        files[i].model = form_take_model(f, i);
        files[i].slice = m->slice;
        files[i].video = m->video;
        files[i].key_id = hr->key_id;
        files[i].filename_len = strlen(files[i].filename);
    }
    predict_request *pr = predict_request_new(hr->request_id, f->query, f->params, files, f->nfiles);
    f->query = NULL;
    f->params = NULL;
    form_free(f);
    /* Metering off (--metering=false): no hook at all; the reservation is
     * released when the HTTP request ends. */
    meter_ctx *m = pr && limiter_metering(hr->srv->lim) ? malloc(sizeof *m) : NULL;
    if (pr && !m && limiter_metering(hr->srv->lim)) {
        predict_request_unref(pr);
        return NULL;
    }
    if (m) {
        /* The request owns its reservation from here (released by the
         * commit, or unused when it ends first). */
        *m = (meter_ctx){hr->srv->lim, hr->key_id, hr->reserved, hr->limits, false};
        hr->reserved = 0;
        predict_request_set_meter(pr, meter_commit, m, meter_free);
    }
    /* Its place in --max-inflight goes with it, given back when its work is over. */
    if (pr) predict_request_set_on_done(pr, cap_ticket_leave, hr->ticket, cap_ticket_free);
    if (pr) hr->ticket = NULL;
    return pr;
}


/* PH_BODY: takes the body as it arrives. the engine cannot answer before
 * the body is read, so a refused upload is read on and dropped; one that
 * goes on far past the limit is cut off. A call with no data: it is all in. */
static step take_body(http_req *hr, const route_call *call)
{
    size_t n = *call->upload_size;
    if (!n) {
        hr->phase = PH_KEY;
        return STEP_NEXT;
    }
    *call->upload_size = 0;
    int64_t max = hr->srv->cfg.max_body_bytes;
    hr->body_bytes += (int64_t)n;
    if (hr->body_bytes > max) {
        hr->too_large = true;
        return hr->body_bytes > 2 * max ? STEP_CLOSE : STEP_AGAIN;
    }
    if (hr->urlencoded || (hr->route->flags & ROUTE_JSON)) {
        int rc = buf_add(&hr->raw, call->upload, n);
        if (rc == BUF_TOO_BIG) hr->too_large = true;
        return rc == BUF_NOMEM ? STEP_CLOSE : STEP_AGAIN;
    }
    if (!hr->mp_failed && mp_feed(hr->mp, call->upload, n) != 0) hr->mp_failed = true;
    return STEP_AGAIN;
}

/* PH_KEY: a header key not admitted at the head (unknown, store error, or
 * its check could not be queued) is answered first: a caller without a
 * valid key learns nothing about its body. */
static step body_key(front_conn *c, http_req *hr)
{
    if (hr->has_header_key && !hr->entered) {
        step st = predict_key(c, hr, hr->header_key, false);
        if (st != STEP_NEXT) return st;
    }
    hr->phase = PH_PARSE;
    return STEP_NEXT;
}

/* PH_PARSE: what was kept of the body. A body we could not parse is a 400. */
static step parse_body(front_conn *c, http_req *hr)
{
    hr->phase = PH_FORM_KEY;
    if (hr->urlencoded && !hr->too_large) form_parse_urlencoded(&hr->form, buf_str(&hr->raw), hr->raw.len);
    if ((hr->route->flags & ROUTE_JSON) && !hr->too_large) {
        /* Checked before parsing: the parse itself is what costs. */
        if (form_json_value_bound(buf_str(&hr->raw), hr->raw.len) > (size_t)hr->form.lim.max_parts)
            return step_of(reply_error(c, hr, 413, "too_many_parts", "more than %d JSON values in the body",
                                       hr->form.lim.max_parts));
        form_parse_json(&hr->form, buf_str(&hr->raw), hr->raw.len);
        /* Not JSON at all: nothing else (not even a key) can be read from it. */
        if (hr->form.failed && hr->form.err.status == 400) return form_failed(c, hr);
    }
    if (hr->mp && !hr->too_large && (hr->mp_failed || mp_done(hr->mp) != 0)) {
        /* An ambiguous part or a NUL in a name has its own code. */
        const char *code = hr->mp_failed ? mp_error_code(hr->mp) : "malformed_multipart";
        if (strcmp(code, "malformed_multipart"))
            return step_of(reply_error(c, hr, 400, code, "%s", mp_error(hr->mp)));
        return step_of(reply_error(c, hr, 400, "malformed_multipart", "the multipart body is %s",
                                   hr->mp_failed ? mp_error(hr->mp) : "truncated (no closing boundary)"));
    }
    return STEP_NEXT;
}

/* PH_FORM_KEY: without a header key, the form's (or the JSON body's) api_key. */
static step form_key(front_conn *c, http_req *hr)
{
    if (!hr->has_header_key && !hr->entered) {
        /* An oversized key is not a missing one (docs/api.md). */
        if (hr->form.api_key_too_large)
            return step_of(reply_error(c, hr, 413, "field_too_large", "the api_key field is over its %d byte limit",
                                       FORM_MAX_API_KEY));
        step st = predict_key(c, hr, hr->form.api_key, false);
        if (st != STEP_NEXT) return st;
    }
    hr->phase = PH_LIMITS;
    return STEP_NEXT;
}

/* The quotas' verdict (limiter_reserve's rc, llm_ok and lv): the work, or a 429. */
static step start_work(front_conn *c, http_req *hr, int qrc, bool llm_ok, const limit_verdict *lv)
{
    if (qrc < 0) return step_of(reply_limited(c, hr, lv, false));
    hr->reserved = qrc == 0 ? (int64_t)hr->form.nfiles : 0;
    hr->llm_refused = !llm_ok;
    /* The reservation waited on a work-queue thread: shutdown may have begun. */
    if (atomic_load(&hr->srv->aborting))
        return step_of(reply_error(c, hr, 503, "shutting_down", "the server is shutting down"));
    predict_request *pr = build_request(hr);
    if (!pr) return step_of(reply_error(c, hr, 500, "out_of_memory", "out of memory"));
    if (hr->route->batch_answer) return predict_start_batch(c, hr, pr);
    return step_of(predict_start_stream(c, hr, pr));
}

/* PH_LIMITS: body parsed, key admitted: the form, the stages' options
 * (413, 422), the quotas, then the work. The quotas are checked on a
 * work-queue thread when they read the ledger or make a Redis round trip
 * (hr->work_job, the connection suspended). */
static step decide(front_conn *c, http_req *hr)
{
    server *s = hr->srv;
    bool llm_ok = true;
    limit_verdict lv;
    if (!hr->work_job) {
        if (hr->too_large)
            return step_of(reply_error(c, hr, 413, "body_too_large", "the request body is over the %lld byte limit",
                                       (long long)s->cfg.max_body_bytes));
        if (form_finish(&hr->form)) return form_failed(c, hr);
        if (hr->ds_model[0] && !(hr->form.meta[0].model = strdup(hr->ds_model)))
            return step_of(reply_error(c, hr, 500, "out_of_memory", "out of memory"));
        sight_error verr;
        if (validate_options(pipeline_stages(s->pipe), &hr->form, &verr))
            return step_of(reply_error(c, hr, 422, verr.code, "%s", verr.message));
        /* An upload that completes after shutdown has started ending the
         * streams would be cut off by the daemon's stop: refuse it instead. */
        if (atomic_load(&s->aborting))
            return step_of(reply_error(c, hr, 503, "shutting_down", "the server is shutting down"));
        /* Quotas, now that the files are counted: the whole request or nothing. */
        int64_t nfiles = (int64_t)hr->form.nfiles;
        if (!limiter_reserve_may_block(s->lim, &hr->limits) ||
            !(hr->work_job = lj_reserve(s->kc, s->lim, hr->key_id, &hr->limits, nfiles))) {
            /* A key without quotas (or the job could not be queued: stopping). */
            int qrc = limiter_reserve(s->lim, hr->key_id, &hr->limits, nfiles, &llm_ok, &lv);
            return start_work(c, hr, qrc, llm_ok, &lv);
        }
    }
    if (!kc_wait(hr->work_job, c)) return STEP_AGAIN;
    int qrc = lj_reserve_result(hr->work_job, &llm_ok, &lv);
    return start_work(c, hr, qrc, llm_ok, &lv);
}

/* One loop over the phases: each call of the handler resumes the request
 * where it stopped, and runs phases until one waits or answers. */
front_result predict_handle(front_conn *c, http_req *hr, const route_call *call)
{
    for (;;) {
        step st;
        switch (hr->phase) {
        case PH_ADMIT: st = admit_request(c, hr); break;
        case PH_HEAD_KEY: st = head_key(c, hr); break;
        case PH_BODY: st = take_body(hr, call); break;
        case PH_KEY: st = body_key(c, hr); break;
        case PH_PARSE: st = parse_body(c, hr); break;
        case PH_FORM_KEY: st = form_key(c, hr); break;
        case PH_LIMITS: st = decide(c, hr); break;
        case PH_RESPOND: st = predict_batch_continue(c, hr); break;
        default: return FRONT_OK; /* PH_DONE: answered (server.c drops the rest) */
        }
        if (st != STEP_NEXT) return step_result(st);
    }
}

void predict_cleanup(http_req *hr)
{
    /* A slot or reservation a job got and the request never took goes back with it. */
    kc_release(hr->key_job);
    kc_release(hr->limit_job);
    kc_release(hr->work_job);
    hr->key_job = hr->limit_job = hr->work_job = NULL;
    if (hr->batch_pr) {
        /* Nobody to answer (client gone, or cut): skip the remaining work. */
        predict_request_cancel(hr->batch_pr);
        predict_request_unref(hr->batch_pr);
        hr->batch_pr = NULL;
    }
    front_wait_detach(hr->batch_slot);
    predict_batch_free(hr->batch);
    mp_free(hr->mp);
    hr->batch_slot = NULL;
    hr->batch = NULL;
    hr->mp = NULL;
    buf_free(&hr->raw);
    form_free(&hr->form);
    /* Neither waits (limiter.h): with Redis, a background thread does them. */
    if (hr->entered) limiter_leave(hr->srv->lim, hr->key_id, hr->limit_slot);
    hr->entered = false;
    hr->limit_slot = 0;
    limiter_release(hr->srv->lim, hr->key_id, &hr->limits, hr->reserved); /* refused after reserving: unused */
    hr->reserved = 0;
    cap_ticket_free(hr->ticket);
    hr->ticket = NULL;
    if (hr->counted) {
        atomic_fetch_sub(&hr->srv->inflight, 1);
        hr->counted = false;
    }
}
