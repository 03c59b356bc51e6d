/* The "llm" stage: the openai provider (streamed chat completions over
 * libcurl) and the local provider, behind one stage vtable. */
#include "llm/llm.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "llm/llm_internal.h"
#include "metrics/metrics.h"
#include "util/clock.h"
#include "util/gate.h"
#include "util/json_out.h"
#include "util/log.h"

#define MAX_RETRIES 2         /* for 429 and 5xx: three attempts in all */
#define MAX_RETRY_WAIT_S 10.0 /* a longer Retry-After is cut to this */
#define MAX_ERROR_BODY 65536  /* of a refusal, kept for its message */
#define MAX_WHOLE_BODY (16 << 20)

struct llm {
    stage st;
    bool remote;
    char endpoint[1200]; /* base URL + /chat/completions */
    char model[256];
    char *auth_header; /* "Authorization: Bearer ..."; never logged */
    int timeout_s, max_tokens, max_side;
    /* At most `slots` provider calls at once, the rest wait (cancellably)
     * rather than piling onto the model server. */
    gate calls;
    int slots;
};

static double round3(double ms) { return (double)(long long)(ms * 1000.0 + 0.5) / 1000.0; }


static bool is_cancelled(const stage_input *in) { return in->cancelled && atomic_load(in->cancelled); }

/* Sleeps up to s seconds, waking early when the request is cancelled. */
static void sleep_cancellable(const stage_input *in, double s)
{
    double end = clock_s() + s;
    while (!is_cancelled(in)) {
        double left = end - clock_s();
        if (left <= 0) return;
        if (left > 0.05) left = 0.05;
        struct timespec ts = {0, (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* ---- one HTTP attempt ---- */

typedef struct {
    const stage_input *in;
    CURL *curl;
    long status;
    bool started; /* the first body bytes have been seen */
    bool sse;     /* a 200 event stream (else the body is kept whole) */
    sse_parser parser;
    chat_stream chat;
    buf body;           /* non-stream body: an error, or a whole JSON answer; capped once the status is known */
    double retry_after; /* seconds, -1 = none sent */
    double t0, t_first;
} attempt;

static void on_delta(void *ctx, const char *text, size_t len)
{
    attempt *a = ctx;
    if (a->t_first == 0) a->t_first = clock_s();
    if (!a->in->emit) return;
    json_t *ev = json_object();
    json_object_set_new(ev, "status", json_string("llm_delta"));
    json_object_set_new(ev, "delta", json_stringn(text, len));
    a->in->emit(a->in->emit_ctx, ev);
}

static int on_sse_event(void *ctx, const char *data, size_t len)
{
    attempt *a = ctx;
    return chat_event(&a->chat, data, len);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ctx)
{
    attempt *a = ctx;
    size_t n = size * nmemb;
    if (!a->started) {
        a->started = true;
        curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &a->status);
        char *ct = NULL;
        curl_easy_getinfo(a->curl, CURLINFO_CONTENT_TYPE, &ct);
        /* A server that ignores stream:true answers with one JSON object. */
        a->sse = a->status == 200 && !(ct && strcasestr(ct, "json"));
        buf_init(&a->body, a->status == 200 ? MAX_WHOLE_BODY : MAX_ERROR_BODY);
    }
    if (a->sse) return sse_feed(&a->parser, ptr, n) == 0 ? n : 0; /* 0 aborts: the stream is bad */
    /* What passes the cap is dropped: the start is enough for a message. */
    size_t room = a->body.max - a->body.len;
    if (buf_add(&a->body, ptr, n < room ? n : room) == BUF_NOMEM) return 0;
    return n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ctx)
{
    attempt *a = ctx;
    size_t n = size * nitems;
    if (n > 12 && !strncasecmp(buf, "retry-after:", 12)) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%.*s", (int)(n - 12 < 31 ? n - 12 : 31), buf + 12);
        char *end;
        double v = strtod(tmp, &end);
        if (end != tmp && v >= 0) a->retry_after = v; /* an HTTP date is left to our own backoff */
    }
    return n;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    attempt *a = ctx;
    return is_cancelled(a->in) ? 1 : 0; /* non-zero aborts the transfer: the client went away */
}

typedef enum { A_OK,
               A_RETRY,
               A_FAIL } attempt_result;

static attempt_result run_attempt(llm *l, attempt *a, const char *body, double deadline, struct curl_slist *hdrs,
                                  sight_error *err)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *c = curl_easy_init();
    if (!c) {
        sight_error_set(err, "llm_unavailable", "cannot create an HTTP client");
        return A_FAIL;
    }
    a->curl = c;
    a->retry_after = -1;
    long left_ms = (long)((deadline - clock_s()) * 1000);
    if (left_ms < 1) left_ms = 1;
    curl_easy_setopt(c, CURLOPT_URL, l->endpoint);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, a);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* many threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, left_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, left_ms < 10000 ? left_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    CURLcode rc = curl_easy_perform(c);
    if (!a->started) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    curl_easy_cleanup(c);
    a->curl = NULL;
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);

    if (rc == CURLE_ABORTED_BY_CALLBACK || is_cancelled(a->in)) {
        sight_error_set(err, "cancelled", "request cancelled: the provider call was stopped");
        return A_FAIL;
    }
    if (a->chat.status != CHAT_OK) {
        const char *code = a->chat.status == CHAT_CONTENT_FILTER ? "llm_content_filter"
            : a->chat.status == CHAT_UPSTREAM_ERROR              ? "llm_upstream_error"
                                                                 : "llm_bad_response";
        sight_error_set(err, code, "%s", a->chat.message);
        return A_FAIL;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        sight_error_set(err, "llm_timeout", "no complete answer from %s within %d s (--llm-timeout)", l->endpoint, l->timeout_s);
        return A_FAIL;
    }
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY) {
        sight_error_set(err, "llm_unreachable", "cannot connect to %s: %s", l->endpoint, why);
        return A_FAIL;
    }
    if (rc != CURLE_OK && a->status == 0) {
        sight_error_set(err, "llm_unreachable", "no HTTP answer from %s: %s", l->endpoint, why);
        return A_FAIL;
    }
    if (a->status != 200) {
        char msg[400];
        llm_error_message(buf_str(&a->body), a->body.len, msg, sizeof msg);
        sight_error_set(err, a->status == 429 ? "llm_rate_limited" : "llm_upstream_error", "the provider answered HTTP %ld: %s",
                        a->status, msg);
        return a->status == 429 || a->status >= 500 ? A_RETRY : A_FAIL;
    }
    if (rc != CURLE_OK) {
        sight_error_set(err, "llm_upstream_error", "the answer broke off: %s", why);
        return A_FAIL;
    }
    if (a->sse) {
        if (sse_finish(&a->parser) != 0 || a->chat.status != CHAT_OK) {
            sight_error_set(err, a->chat.status == CHAT_CONTENT_FILTER ? "llm_content_filter" : "llm_bad_response", "%s",
                            a->chat.message[0] ? a->chat.message : "malformed stream");
            return A_FAIL;
        }
        /* [DONE] or a finish_reason marks a complete answer; a stream that just
         * stops may have lost its end. */
        if (!a->chat.done && !a->chat.finish_reason[0]) {
            sight_error_set(err, "llm_bad_response", "malformed stream: it ended without [DONE] or a finish_reason (%d events)",
                            a->chat.events);
            return A_FAIL;
        }
        return A_OK;
    }
    if (chat_whole(&a->chat, buf_str(&a->body), a->body.len) != 0) {
        sight_error_set(err, a->chat.status == CHAT_CONTENT_FILTER ? "llm_content_filter" : a->chat.status == CHAT_UPSTREAM_ERROR ? "llm_upstream_error"
                                                                                                                                  : "llm_bad_response",
                        "%s", a->chat.message);
        return A_FAIL;
    }
    return A_OK;
}

static void attempt_init(attempt *a, const stage_input *in)
{
    memset(a, 0, sizeof *a);
    a->in = in;
    sse_init(&a->parser, on_sse_event, a);
    chat_init(&a->chat, on_delta, a);
}

static void attempt_free(attempt *a)
{
    sse_free(&a->parser);
    chat_free(&a->chat);
    buf_free(&a->body);
}

static int run_remote(llm *l, const stage_input *in, json_t **out, sight_error *err)
{
    double t0 = clock_s();
    int sw = 0, sh = 0;
    char *url = llm_image_data_url(in->image, l->max_side, &sw, &sh);
    char *text = llm_user_text(in->query, in->earlier, in->image->orig_width, in->image->orig_height);
    if (text && in->context) {
        size_t cl = strlen(in->context), tl = strlen(text);
        char *both = malloc(cl + 1 + tl + 1);
        if (both) {
            memcpy(both, in->context, cl);
            both[cl] = '\n';
            memcpy(both + cl + 1, text, tl + 1);
        }
        free(text);
        text = both;
    }
    json_t *req = url && text ? llm_request_body(l->model, l->max_tokens, text, url) : NULL;
    char *body = req ? json_dumps_safe(req, JSON_COMPACT) : NULL;
    json_decref(req);
    free(url);
    free(text);
    if (!body) {
        sight_error_set(err, "llm_unavailable", "cannot prepare the image and prompt (out of memory)");
        return -1;
    }
    double t_enc = clock_s();

    if (!gate_enter(&l->calls, in->cancelled)) {
        free(body);
        sight_error_set(err, "cancelled", "request cancelled while waiting for a free LLM slot");
        return -1;
    }
    double t_gate = clock_s();
    double deadline = t_gate + l->timeout_s;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Accept: text/event-stream");
    if (l->auth_header) hdrs = curl_slist_append(hdrs, l->auth_header);
    log_debug("llm: POST %s model %s, image %dx%d, body %zu bytes", l->endpoint, l->model, sw, sh, strlen(body));

    attempt a;
    int tries = 0;
    attempt_result r = A_FAIL;
    for (;;) {
        attempt_init(&a, in);
        a.t0 = clock_s();
        tries++;
        r = run_attempt(l, &a, body, deadline, hdrs, err);
        if (r != A_RETRY || tries > MAX_RETRIES) break;
        /* Exponential backoff (0.5 s, 1 s), or the server's Retry-After when
         * longer, bounded; never past the deadline. */
        double wait = 0.5 * (double)(1 << (tries - 1));
        if (a.retry_after > wait) wait = a.retry_after;
        if (wait > MAX_RETRY_WAIT_S) wait = MAX_RETRY_WAIT_S;
        if (clock_s() + wait >= deadline) break;
        log_warn("llm: %s (attempt %d); retrying in %.1f s", err->message, tries, wait);
        attempt_free(&a);
        sleep_cancellable(in, wait);
        if (is_cancelled(in)) {
            sight_error_set(err, "cancelled", "request cancelled between retries");
            curl_slist_free_all(hdrs);
            gate_leave(&l->calls);
            free(body);
            return -1;
        }
    }
    curl_slist_free_all(hdrs);
    gate_leave(&l->calls);
    free(body);
    if (r != A_OK) {
        if (strcmp(err->code, "cancelled")) log_warn("llm: file failed after %d attempt(s): %s: %s", tries, err->code, err->message);
        attempt_free(&a);
        return -1;
    }
    double t_end = clock_s();
    json_t *res = json_object();
    json_object_set_new(res, "provider", json_string("openai"));
    json_object_set_new(res, "model", json_string(a.chat.model[0] ? a.chat.model : l->model));
    json_object_set_new(res, "response", json_stringn(buf_str(&a.chat.text), a.chat.text.len));
    if (a.chat.finish_reason[0]) json_object_set_new(res, "finish_reason", json_string(a.chat.finish_reason));
    if (a.chat.usage) {
        json_object_set(res, "usage", a.chat.usage);
        metrics_llm_tokens(json_integer_value(json_object_get(a.chat.usage, "prompt_tokens")),
                           json_integer_value(json_object_get(a.chat.usage, "completion_tokens")));
    }
    json_object_set_new(res, "image", json_pack("{s:i,s:i}", "width", sw, "height", sh));
    json_object_set_new(res, "attempts", json_integer(tries));
    json_t *speed = json_object();
    json_object_set_new(speed, "encode", json_real(round3((t_enc - t0) * 1000)));
    json_object_set_new(speed, "queue", json_real(round3((t_gate - t_enc) * 1000)));
    if (a.t_first) json_object_set_new(speed, "first_token", json_real(round3((a.t_first - a.t0) * 1000)));
    json_object_set_new(speed, "generate", json_real(round3((t_end - a.t0) * 1000)));
    json_object_set_new(speed, "total", json_real(round3((t_end - t0) * 1000)));
    json_object_set_new(res, "speed_ms", speed);
    attempt_free(&a);
    *out = res;
    return 0;
}

static int stage_run(void *self, const stage_input *in, json_t **out, sight_error *err)
{
    llm *l = self;
    if (l->remote) return run_remote(l, in, out, err);
    double t0 = clock_s();
    json_t *res = llm_local_answer(in->query, in->earlier);
    if (!res) {
        sight_error_set(err, "llm_unavailable", "out of memory");
        return -1;
    }
    json_object_set_new(res, "speed_ms", json_pack("{s:f}", "total", round3((clock_s() - t0) * 1000)));
    *out = res;
    return 0;
}

llm *llm_open(const sight_config *cfg, char *msg, size_t msg_len)
{
    llm *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(msg, msg_len, "out of memory");
        return NULL;
    }
    l->slots = cfg->llm_concurrency > 0 ? cfg->llm_concurrency : 1;
    gate_init(&l->calls, l->slots);
    l->timeout_s = cfg->llm_timeout_s;
    l->max_tokens = cfg->llm_max_tokens;
    l->max_side = cfg->llm_max_image_side;
    l->remote = cfg->llm_url[0] != 0;
    l->st = (stage){.name = "llm", .self = l, .run = stage_run, .wants_grounding = true};
    if (!l->remote) {
        /* The local provider reads no pixels: any decode size will do. */
        l->st.min_width = l->st.min_height = 1;
        return l;
    }
    if (!cfg->llm_model[0]) {
        snprintf(msg, msg_len, "--llm-url is set but --llm-model (SIGHT_LLM_MODEL) is not: name the model to ask");
        llm_close(l);
        return NULL;
    }
    if (strncmp(cfg->llm_url, "http://", 7) && strncmp(cfg->llm_url, "https://", 8)) {
        snprintf(msg, msg_len, "--llm-url must start with http:// or https:// (got '%.200s')", cfg->llm_url);
        llm_close(l);
        return NULL;
    }
    /* The base URL is the one the OpenAI SDKs take (.../v1); a full
     * .../chat/completions is accepted too. */
    size_t n = strlen(cfg->llm_url);
    while (n && cfg->llm_url[n - 1] == '/') n--;
    const char *suffix = "/chat/completions";
    bool full = n >= strlen(suffix) && !strncmp(cfg->llm_url + n - strlen(suffix), suffix, strlen(suffix));
    snprintf(l->endpoint, sizeof l->endpoint, "%.*s%s", (int)n, cfg->llm_url, full ? "" : suffix);
    snprintf(l->model, sizeof l->model, "%s", cfg->llm_model);
    if (cfg->llm_api_key[0]) {
        size_t len = strlen(cfg->llm_api_key) + 32;
        l->auth_header = malloc(len);
        if (l->auth_header) snprintf(l->auth_header, len, "Authorization: Bearer %s", cfg->llm_api_key);
    }
    /* libcurl's global initialisation is the process's (main), done before any thread. */
    /* Workers decode at up to max_side on the long side (fit semantics). */
    l->st.min_width = l->st.min_height = l->max_side;
    return l;
}

void llm_close(llm *l)
{
    if (!l) return;
    if (l->auth_header) {
        /* Do not leave the key in freed memory. */
        memset(l->auth_header, 0, strlen(l->auth_header));
        free(l->auth_header);
    }
    gate_destroy(&l->calls);
    free(l);
}

const stage *llm_stage(llm *l) { return &l->st; }

void llm_describe(const llm *l, char *buf, size_t len)
{
    if (l->remote)
        snprintf(buf, len, "openai provider: model %s at %s (api key %s, timeout %d s, max image side %d, %d call(s) at once)",
                 l->model, l->endpoint, l->auth_header ? "set" : "none", l->timeout_s, l->max_side, l->slots);
    else
        snprintf(buf, len, "local provider: answers from OCR text and detections (no language model; set --llm-url for one)");
}
