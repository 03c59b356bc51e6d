/* The four prediction routes, POST /api/v1/inference/predict/...: stream and
 * batch take a multipart upload (v1), stream/v2 and batch/v2 a JSON body of
 * image URLs (v2). The stream routes answer with NDJSON lines as the work
 * goes; the batch routes wait and answer once with every result.
 *
 * Order of checks, cheapest first: admission (shutdown, 429), content type,
 * declared size, header key and its rate and concurrency (predict_key.c),
 * all before any of the body is read; then the body is parsed as it arrives with every
 * limit enforced; then form validation, the form's key, and only then the
 * 200 and the stream. Every refusal before the stream is a JSON error. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "detect/model_registry.h"
#include "http/capacity.h"
#include "http/conn_wait.h"
#include "http/http_internal.h"
#include "http/key_check.h"
#include "http/limit_jobs.h"
#include "http/multipart.h"
#include "util/clock.h"
#include "util/json_out.h"
#include "util/log.h"

/* Bytes handed to libmicrohttpd per read of the stream. */
#define STREAM_BLOCK (16 * 1024)

typedef struct {
    predict_request *req;
    cw_slot *slot; /* suspends the connection while nothing is queued */
    server *srv;
    bool ended; /* shutdown ended the request: only its last lines are left to send */
} stream_ctx;

#define SHUTDOWN_MESSAGE "the server is shutting down: this file was not finished within --shutdown-timeout"

/* Never blocks: with nothing queued the connection is suspended (returning 0
 * bytes) and the watcher resumes it when a line is pushed, the client hangs
 * up or shutdown ends the streams; libmicrohttpd then calls this again. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_ctx *s = cls;
    for (;;) {
        if (!s->ended && atomic_load(&s->srv->aborting)) {
            /* Shutdown ran out of patience. Rather than cut the stream, which a
             * client cannot tell from a network fault, end it properly: an
             * error line per unfinished file, then "complete" (both queued by
             * predict_request_end), sent by the next turns of this loop. */
            log_req(LOG_INFO, predict_request_id(s->req), "ending the stream for shutdown");
            predict_request_end(s->req, "shutting_down", SHUTDOWN_MESSAGE);
            s->ended = true;
        }
        /* Files have waited for this client to read (back-pressure) for
         * longer than --client-timeout: one that reads a trickle would hold
         * its work and what waits for it for ever. */
        double held = predict_request_held_since(s->req);
        if (held > 0 && clock_s() - held > s->srv->cfg.client_timeout_s) {
            log_req(LOG_INFO, predict_request_id(s->req), "client read too little for %d s; stream cut",
                    s->srv->cfg.client_timeout_s);
            predict_request_cancel(s->req);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        ssize_t n = eq_read(predict_request_events(s->req), buf, max);
        if (n > 0) return n;
        if (n < 0) return MHD_CONTENT_READER_END_OF_STREAM;
        if (cw_client_gone(s->slot)) {
            log_req(LOG_INFO, predict_request_id(s->req), "client went away, cancelling its work");
            predict_request_cancel(s->req);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (cw_suspend(s->slot)) return 0;
        /* Not suspended: shutdown aborted the streams (end this one on the
         * next turn), or the daemon is being stopped. */
        if (!s->ended && atomic_load(&s->srv->aborting)) continue;
        return 0;
    }
}

static void stream_free(void *cls)
{
    stream_ctx *s = cls;
    cw_detach(s->slot);
    /* Normally every job is done by now; if not (client gone), skip the rest. */
    predict_request_cancel(s->req);
    predict_request_unref(s->req);
    free(s);
}

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

static enum MHD_Result form_failed(struct MHD_Connection *c, http_req *hr)
{
    const sight_error *e = &hr->form.err;
    return reply_error(c, hr, e->status, e->code, "%s", e->message);
}

/* --max-parts, raised where needed so that a request with --max-files files
 * always fits (a v1 file takes two parts, a v2 item up to six JSON values). */
static int max_parts(const sight_config *cfg)
{
    int64_t need = 8 * (int64_t)cfg->max_files + 16;
    return cfg->max_parts >= need ? cfg->max_parts : need > INT_MAX ? INT_MAX
                                                                    : (int)need;
}

static enum MHD_Result start(struct MHD_Connection *c, http_req *hr)
{
    server *s = hr->srv;
    const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    hr->expect_continue = expect && !strcasecmp(expect, "100-continue");
    if (atomic_load(&s->shutting_down))
        return reply_refuse(c, hr, 503, "shutting_down", "the server is shutting down");
    char why[160];
    if (limiter_ledger_health(s->lim, why, sizeof why) != 0)
        return reply_refuse(c, hr, 503, "ledger_unavailable", "%s; try again later", why);
    /* A place in --max-inflight until the request's work is over (capacity.h);
     * s->inflight counts it until its answer is sent (shutdown waits on that). */
    if (!(hr->ticket = cap_enter(s->cap)))
        return reply_refuse(c, hr, 429, "too_many_requests", "%d prediction requests are already running; retry shortly",
                            s->cfg.max_inflight);
    atomic_fetch_add(&s->inflight, 1);
    hr->counted = true;

    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    /* DeepStack's route is a batch of its one image. */
    hr->batch = hr->route == ROUTE_BATCH_V1 || hr->route == ROUTE_BATCH_V2 || hr->route == ROUTE_DEEPSTACK;
    if (hr->route == ROUTE_PREDICT_V2 || hr->route == ROUTE_BATCH_V2) {
        hr->json_body = ct && !strncasecmp(ct, "application/json", 16);
        if (!hr->json_body)
            return reply_refuse(c, hr, 415, "unsupported_media_type", "send application/json (got %.100s)",
                                ct ? ct : "no Content-Type");
    } else {
        /* A url-encoded form cannot carry files, but reading it lets the answer be
         * the helpful 422 "no_files" (or 401) rather than a bare 415. */
        hr->urlencoded = ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33);
        if (!ct || (strncasecmp(ct, "multipart/form-data", 19) && !hr->urlencoded))
            return reply_refuse(c, hr, 415, "unsupported_media_type", "send multipart/form-data (got %.100s)",
                                ct ? ct : "no Content-Type");
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoll(cl, NULL, 10) > s->cfg.max_body_bytes)
        return reply_refuse(c, hr, 413, "body_too_large", "the request body is over the %lld byte limit",
                            (long long)s->cfg.max_body_bytes);
    if (hr->route == ROUTE_DEEPSTACK && hr->ds_model[0] && (!s->reg || !model_registry_has(s->reg, hr->ds_model)))
        return reply_refuse(c, hr, 404, "unknown_model", "no model is called '%.64s' (GET /api/v1/models lists them)",
                            hr->ds_model);
    form_limits lim = {s->cfg.max_file_bytes, s->cfg.max_files, max_parts(&s->cfg)};
    form_init(&hr->form, &lim);
    hr->form.deepstack = hr->route == ROUTE_DEEPSTACK;
    /* A JSON body is kept whole; take_body checks the body limit before it
     * grows, so that cap is never the one that refuses. */
    buf_init(&hr->raw, hr->urlencoded ? MAX_URLENCODED : (size_t)s->cfg.max_body_bytes);
    if (!hr->urlencoded && !hr->json_body) {
        char boundary[80];
        if (mp_boundary(ct, boundary, sizeof boundary) != 0)
            return reply_refuse(c, hr, 400, "malformed_multipart",
                                "multipart/form-data without a usable boundary parameter");
        hr->mp = mp_new(boundary, &FORM_CALLBACKS, hr);
        if (!hr->mp) return reply_refuse(c, hr, 500, "out_of_memory", "out of memory");
    }
    /* A header key and its limits, before any of the body is read. */
    predict_header_key(c, hr);
    return hr->has_header_key && hr->header_key[0] ? predict_key_at_head(c, hr) : MHD_YES;
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

/* Answers 200 and streams pr's events as the pipeline produces them. */
static enum MHD_Result start_stream(struct MHD_Connection *c, http_req *hr, predict_request *pr)
{
    server *s = hr->srv;
    stream_ctx *sc = malloc(sizeof *sc);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct MHD_Response *resp = sc ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, sc, stream_free) : NULL;
    if (!resp) {
        free(sc);
        predict_request_unref(pr);
        return reply_error(c, hr, 500, "out_of_memory", "out of memory");
    }
    *sc = (stream_ctx){pr, cw_attach(s->cw, c, eq_fd(predict_request_events(pr)), ci ? ci->connect_fd : -1), s, false};
    if (!sc->slot) {
        MHD_destroy_response(resp); /* frees sc and pr (stream_free) */
        return reply_error(c, hr, 500, "out_of_memory", "out of memory");
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
    /* Ask proxies (nginx) not to buffer the stream. */
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    /* From here the response (sc) owns our reference; the pipeline takes one per file. */
    if (pipeline_submit(s->pipe, pr) != 0) {
        MHD_destroy_response(resp);
        return reply_error(c, hr, 500, "out_of_memory", "out of memory");
    }
    log_req(LOG_INFO, hr->request_id, "streaming %zu file(s)", predict_request_nfiles(pr));
    return reply_queue(c, hr, 200, resp);
}

/* Collects every line of the batch (hr->batch_pr), the connection suspended
 * while none is queued; then answers once with all results in request order:
 * {"result": {"files": [...], "complete": {...}}, "code": 0}. */
static enum MHD_Result batch_continue(struct MHD_Connection *c, http_req *hr)
{
    server *s = hr->srv;
    predict_request *pr = hr->batch_pr;
    buf *text = &hr->batch_text;
    for (;;) {
        if (!hr->batch_ended && atomic_load(&s->aborting)) {
            /* Shutdown: answer with what is done and shutting_down for the rest. */
            predict_request_end(pr, "shutting_down", SHUTDOWN_MESSAGE);
            hr->batch_ended = true;
        }
        /* The lines of at most --max-files files, each bounded where it is made
         * (an LLM answer at 16 MiB): nothing to refuse here. */
        if (buf_room(text) < STREAM_BLOCK && buf_reserve(text, text->cap ? text->cap : STREAM_BLOCK * 2))
            return MHD_NO;
        ssize_t n = eq_read(predict_request_events(pr), text->data + text->len, buf_room(text));
        if (n < 0) break;
        if (n > 0) {
            buf_commit(text, (size_t)n);
            continue;
        }
        if (cw_client_gone(hr->batch_slot)) return MHD_NO; /* cleanup cancels the work */
        if (cw_suspend(hr->batch_slot)) return MHD_YES;
        if (!hr->batch_ended && atomic_load(&s->aborting)) continue;
        return MHD_YES; /* the daemon is being stopped */
    }
    json_t *files = json_array(), *complete = NULL, *frames = json_array();
    bool unmetered = false;
    for (size_t i = 0; i < predict_request_nfiles(pr); i++) {
        json_array_append_new(files, json_null());
        json_array_append_new(frames, json_array());
    }
    char *save = NULL;
    for (char *line = strtok_r(text->data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *ev = json_loads(line, 0, NULL);
        const char *st = json_string_value(json_object_get(ev, "status"));
        json_int_t idx = json_integer_value(json_object_get(ev, "index"));
        if (st && !strcmp(st, "complete")) {
            json_decref(complete);
            complete = ev;
            continue;
        }
        if (st && !strcmp(st, "error") && !json_object_get(ev, "index")) {
            unmetered = true; /* the request's own last line: its use is not recorded */
            json_decref(ev);
            continue;
        }
        bool ours = idx >= 0 && (size_t)idx < predict_request_nfiles(pr);
        /* A video's frames go into its result, as "frames" (the stream's frame lines). */
        if (st && !strcmp(st, "frame")) {
            if (ours) {
                json_object_del(ev, "index");
                json_object_del(ev, "filename");
                json_object_del(ev, "status"); /* st goes with it */
                json_array_append(json_array_get(frames, (size_t)idx), ev);
            }
            json_decref(ev);
            continue;
        }
        if (st && ours && json_array_size(json_array_get(frames, (size_t)idx))) {
            if (!strcmp(st, "done")) json_object_set(json_object_get(ev, "result"), "frames", json_array_get(frames, (size_t)idx));
            else if (!strcmp(st, "error")) json_object_set(ev, "frames", json_array_get(frames, (size_t)idx));
        }
        if (st && (!strcmp(st, "done") || !strcmp(st, "error")) && ours) json_array_set(files, (size_t)idx, ev);
        json_decref(ev);
    }
    json_decref(frames);
    if (unmetered) {
        json_decref(complete);
        json_decref(files);
        return reply_error(c, hr, 503, "ledger_unavailable",
                           "the usage ledger cannot be written; the request's use was not recorded in time");
    }
    if (hr->route == ROUTE_DEEPSTACK) {
        json_decref(complete);
        enum MHD_Result r = deepstack_reply(c, hr, json_array_get(files, 0));
        json_decref(files);
        return r;
    }
    size_t blen;
    char *body = json_line(json_pack("{s:{s:o,s:o},s:i}", "result", "files", files, "complete",
                                     complete ? complete : json_object(), "code", 0),
                           &blen);
    return body ? reply_body(c, hr, 200, "application/json", body, blen) : MHD_NO;
}

static enum MHD_Result start_batch(struct MHD_Connection *c, http_req *hr, predict_request *pr)
{
    server *s = hr->srv;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    hr->batch_slot = cw_attach(s->cw, c, eq_fd(predict_request_events(pr)), ci ? ci->connect_fd : -1);
    if (!hr->batch_slot || pipeline_submit(s->pipe, pr) != 0) {
        predict_request_unref(pr);
        return reply_error(c, hr, 500, "out_of_memory", "out of memory");
    }
    hr->batch_pr = pr;
    buf_init(&hr->batch_text, SIZE_MAX);
    log_req(LOG_INFO, hr->request_id, "batch of %zu file(s)", predict_request_nfiles(pr));
    return batch_continue(c, hr);
}

/* The whole body is in: decide. Order: a body we could not parse (400), then
 * the key (401, so a caller without one learns nothing else), then limits and
 * form validation (413, 422), then the stages' options (422). */
static enum MHD_Result parse_body(struct MHD_Connection *c, http_req *hr);
static enum MHD_Result decide(struct MHD_Connection *c, http_req *hr);

static enum MHD_Result finish(struct MHD_Connection *c, http_req *hr)
{
    if (hr->batch_pr) return batch_continue(c, hr);
    bool ok;
    /* A header key not admitted at the head (predict_key.c: unknown, store
     * error, or the check could not be queued) is answered first: a caller
     * without a valid key learns nothing about its body. */
    if (hr->has_header_key && !hr->key_ok) {
        hr->body_read = true;
        enum MHD_Result r = predict_check_key(c, hr, hr->header_key, &ok);
        if (!ok) return r;
    }
    if (!hr->parsed) {
        hr->parsed = true;
        enum MHD_Result r = parse_body(c, hr);
        if (r != MHD_YES || hr->responded) return r;
    }
    if (!hr->has_header_key && !hr->key_ok) {
        /* An oversized key is not a missing one (docs/api.md). */
        if (hr->form.api_key_too_large)
            return reply_error(c, hr, 413, "field_too_large", "the api_key field is over its %d byte limit",
                               FORM_MAX_API_KEY);
        enum MHD_Result r = predict_check_key(c, hr, hr->form.api_key, &ok);
        if (!ok) return r;
    }
    return decide(c, hr);
}

/* Parses what was kept of the body (once). MHD_YES unless refused. */
static enum MHD_Result parse_body(struct MHD_Connection *c, http_req *hr)
{
    hr->body_read = true;
    if (hr->urlencoded && !hr->too_large)
        form_parse_urlencoded(&hr->form, buf_str(&hr->raw), hr->raw.len);
    if (hr->json_body && !hr->too_large) {
        /* Checked before parsing: the parse itself is what costs. */
        if (form_json_value_bound(buf_str(&hr->raw), hr->raw.len) > (size_t)hr->form.lim.max_parts)
            return reply_error(c, hr, 413, "too_many_parts", "more than %d JSON values in the body",
                               hr->form.lim.max_parts);
        form_parse_json(&hr->form, buf_str(&hr->raw), hr->raw.len);
        /* Not JSON at all: nothing else (not even a key) can be read from it. */
        if (hr->form.failed && hr->form.err.status == 400) return form_failed(c, hr);
    }
    if (hr->mp && !hr->too_large && (hr->mp_failed || mp_done(hr->mp) != 0)) {
        /* An ambiguous part or a NUL in a name has its own code. */
        const char *code = hr->mp_failed ? mp_error_code(hr->mp) : "malformed_multipart";
        if (strcmp(code, "malformed_multipart")) return reply_error(c, hr, 400, code, "%s", mp_error(hr->mp));
        return reply_error(c, hr, 400, "malformed_multipart", "the multipart body is %s",
                           hr->mp_failed ? mp_error(hr->mp) : "truncated (no closing boundary)");
    }
    return MHD_YES;
}

/* The quotas' verdict (limiter_reserve's rc, *llm_ok and lv): the work, or a 429. */
static enum MHD_Result admit(struct MHD_Connection *c, http_req *hr, int qrc, bool llm_ok, const limit_verdict *lv)
{
    if (qrc < 0) return predict_refuse_limited(c, hr, lv);
    hr->reserved = qrc == 0 ? (int64_t)hr->form.nfiles : 0;
    hr->llm_refused = !llm_ok;
    /* The reservation waited on a key_check thread: shutdown may have begun. */
    if (atomic_load(&hr->srv->aborting))
        return reply_error(c, hr, 503, "shutting_down", "the server is shutting down");
    predict_request *pr = build_request(hr);
    if (!pr) return reply_error(c, hr, 500, "out_of_memory", "out of memory");
    return hr->batch ? start_batch(c, hr, pr) : start_stream(c, hr, pr);
}

/* Body parsed, key valid: limits, the form, the stages' options, then work.
 * Called again on resume while the quotas are checked on a key_check thread
 * (hr->quota_job): they read the ledger, and with Redis make a round trip. */
static enum MHD_Result decide(struct MHD_Connection *c, http_req *hr)
{
    server *s = hr->srv;
    bool llm_ok = true;
    limit_verdict lv;
    if (hr->quota_job) {
        if (!kc_wait(hr->quota_job, c)) return MHD_YES;
        int qrc = lj_reserve_result(hr->quota_job, &llm_ok, &lv);
        return admit(c, hr, qrc, llm_ok, &lv);
    }
    if (hr->too_large)
        return reply_error(c, hr, 413, "body_too_large", "the request body is over the %lld byte limit",
                           (long long)s->cfg.max_body_bytes);
    if (form_finish(&hr->form)) return form_failed(c, hr);
    if (hr->ds_model[0] && !(hr->form.meta[0].model = strdup(hr->ds_model)))
        return reply_error(c, hr, 500, "out_of_memory", "out of memory");
    sight_error verr;
    if (validate_options(pipeline_stages(s->pipe), &hr->form, &verr))
        return reply_error(c, hr, 422, verr.code, "%s", verr.message);
    /* An upload that completes after shutdown has started ending the streams
     * would be cut off by the daemon's stop: refuse it instead. */
    if (atomic_load(&s->aborting))
        return reply_error(c, hr, 503, "shutting_down", "the server is shutting down");
    /* Quotas, now that the files are counted: the whole request or nothing. */
    int64_t nfiles = (int64_t)hr->form.nfiles;
    if (limiter_reserve_may_block(s->lim, &hr->limits) &&
        (hr->quota_job = lj_reserve(s->kc, s->lim, hr->key_id, &hr->limits, nfiles)))
        return decide(c, hr);
    /* A key without quotas (or the job could not be queued: stopping). */
    int qrc = limiter_reserve(s->lim, hr->key_id, &hr->limits, nfiles, &llm_ok, &lv);
    return admit(c, hr, qrc, llm_ok, &lv);
}

/* Takes the body as it arrives. libmicrohttpd cannot answer before the body is
 * read, so a refused upload is read on and dropped; one that goes on far past
 * the limit is cut off. */
static enum MHD_Result take_body(http_req *hr, const char *data, size_t n)
{
    int64_t max = hr->srv->cfg.max_body_bytes;
    hr->body_bytes += (int64_t)n;
    if (hr->body_bytes > max) {
        hr->too_large = true;
        return hr->body_bytes > 2 * max ? MHD_NO : MHD_YES;
    }
    if (hr->urlencoded || hr->json_body) {
        int rc = buf_add(&hr->raw, data, n);
        if (rc == BUF_TOO_BIG) hr->too_large = true;
        return rc == BUF_NOMEM ? MHD_NO : MHD_YES;
    }
    if (!hr->mp_failed && mp_feed(hr->mp, data, n) != 0) hr->mp_failed = true;
    return MHD_YES;
}

enum MHD_Result predict_handle(struct MHD_Connection *c, http_req *hr, const char *upload_data,
                               size_t *upload_data_size, bool first_call)
{
    /* A refusal deferred until the body is read is answered by the handler (server.c). */
    if (first_call) return start(c, hr);
    if (hr->head_wait) return predict_key_at_head(c, hr);
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return take_body(hr, upload_data, n);
    }
    return finish(c, hr);
}

void predict_cleanup(http_req *hr)
{
    kc_release(hr->key_job);
    hr->key_job = NULL;
    /* A slot or reservation a job got and the request never took goes back with it. */
    kc_release(hr->limit_job);
    hr->limit_job = NULL;
    kc_release(hr->quota_job);
    hr->quota_job = NULL;
    if (hr->batch_pr) {
        /* Nobody to answer (client gone, or cut): skip the remaining work. */
        predict_request_cancel(hr->batch_pr);
        predict_request_unref(hr->batch_pr);
        hr->batch_pr = NULL;
    }
    cw_detach(hr->batch_slot);
    hr->batch_slot = NULL;
    buf_free(&hr->batch_text);
    mp_free(hr->mp);
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
