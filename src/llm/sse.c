/* Server-sent events (the WHATWG event-stream format) and the OpenAI chat
 * chunks they carry. The parser keeps only the current line and the current
 * event's data, so a long answer never accumulates in it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm_internal.h"

/* No line, event or answer from a provider is anywhere near this; a stream
 * that never sends a newline must not grow a buffer without end. The line
 * may fill it; an event's data and the answer leave a byte for their NUL. */
#define SSE_MAX_BUFFER (16u << 20)

void sse_init(sse_parser *p, sse_event_fn fn, void *ctx)
{
    memset(p, 0, sizeof *p);
    buf_init(&p->line, SSE_MAX_BUFFER);
    buf_init(&p->data, SSE_MAX_BUFFER - 1);
    p->on_event = fn;
    p->ctx = ctx;
}

void sse_free(sse_parser *p)
{
    buf_free(&p->line);
    buf_free(&p->data);
    memset(p, 0, sizeof *p);
}

static int dispatch(sse_parser *p)
{
    if (!p->has_data) return 0;
    p->has_data = false;
    int rc = p->on_event(p->ctx, buf_str(&p->data), p->data.len);
    buf_reset(&p->data);
    return rc;
}

/* One complete line (without its terminator). */
static int on_line(sse_parser *p, const char *s, size_t n)
{
    if (n == 0) return dispatch(p); /* blank line ends the event */
    if (s[0] == ':') return 0;      /* comment: keep-alives */
    const char *colon = memchr(s, ':', n);
    size_t flen = colon ? (size_t)(colon - s) : n;
    if (flen != 4 || memcmp(s, "data", 4) != 0) return 0; /* event:, id:, retry: are of no use here */
    const char *v = colon ? colon + 1 : s + n;
    size_t vlen = (size_t)(s + n - v);
    if (vlen && *v == ' ') {
        v++;
        vlen--;
    }
    /* Several data lines make one event, joined by newlines. */
    if (vlen + (p->has_data ? 1 : 0) > p->data.max - p->data.len) return -1;
    if (p->has_data && buf_addc(&p->data, '\n')) return -1;
    if (buf_add(&p->data, v, vlen)) return -1;
    p->has_data = true;
    return 0;
}

int sse_feed(sse_parser *p, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = buf[i];
        if (p->skip_lf) {
            p->skip_lf = false;
            if (ch == '\n') continue;
        }
        if (ch == '\r' || ch == '\n') {
            p->skip_lf = ch == '\r';
            int rc = on_line(p, buf_str(&p->line), p->line.len);
            buf_reset(&p->line);
            if (rc) return rc;
            continue;
        }
        if (buf_addc(&p->line, ch)) return -1;
    }
    return 0;
}

int sse_finish(sse_parser *p)
{
    int rc = 0;
    if (p->line.len) {
        rc = on_line(p, p->line.data, p->line.len);
        buf_reset(&p->line);
    }
    return rc ? rc : dispatch(p);
}

/* ---- chat.completion.chunk ---- */

void chat_init(chat_stream *c, chat_delta_fn fn, void *ctx)
{
    memset(c, 0, sizeof *c);
    buf_init(&c->text, SSE_MAX_BUFFER - 1);
    c->on_delta = fn;
    c->ctx = ctx;
}

void chat_free(chat_stream *c)
{
    buf_free(&c->text);
    json_decref(c->usage);
    c->usage = NULL;
}

static int fail(chat_stream *c, chat_status st, const char *msg)
{
    c->status = st;
    snprintf(c->message, sizeof c->message, "%s", msg);
    return -1;
}

static int append(chat_stream *c, const char *s, size_t n)
{
    return buf_add(&c->text, s, n) ? -1 : 0;
}

/* Fields every chunk may carry: model, usage, an error object. */
static int common_fields(chat_stream *c, json_t *j)
{
    json_t *err = json_object_get(j, "error");
    if (err && !json_is_null(err)) {
        char msg[512];
        char *txt = json_dumps(j, JSON_COMPACT);
        llm_error_message(txt ? txt : "", txt ? strlen(txt) : 0, msg, sizeof msg);
        free(txt);
        return fail(c, CHAT_UPSTREAM_ERROR, msg);
    }
    const char *model = json_string_value(json_object_get(j, "model"));
    if (model && *model) snprintf(c->model, sizeof c->model, "%s", model);
    json_t *usage = json_object_get(j, "usage");
    if (json_is_object(usage)) {
        json_decref(c->usage);
        c->usage = json_incref(usage);
    }
    return 0;
}

static int finish_reason(chat_stream *c, const json_t *choice)
{
    const char *fr = json_string_value(json_object_get(choice, "finish_reason"));
    if (!fr) return 0;
    snprintf(c->finish_reason, sizeof c->finish_reason, "%s", fr);
    if (!strcmp(fr, "content_filter"))
        return fail(c, CHAT_CONTENT_FILTER, "the provider's content filter stopped the answer (finish_reason content_filter)");
    return 0;
}

int chat_event(chat_stream *c, const char *data, size_t len)
{
    if (c->status != CHAT_OK) return -1;
    c->events++;
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        c->done = true;
        return 0;
    }
    json_error_t je;
    json_t *j = json_loadb(data, len, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        char msg[200];
        snprintf(msg, sizeof msg, "malformed stream: a data line is not a JSON chunk (%.60s%s)", data,
                 len > 60 ? "..." : "");
        return fail(c, CHAT_MALFORMED, msg);
    }
    int rc = common_fields(c, j);
    json_t *choices = json_object_get(j, "choices");
    if (rc == 0 && choices && !json_is_array(choices)) rc = fail(c, CHAT_MALFORMED, "malformed stream: choices is not an array");
    json_t *ch = json_array_get(choices, 0); /* we ask for one answer (n = 1) */
    if (rc == 0 && ch) {
        json_t *delta = json_object_get(ch, "delta");
        const char *s = json_string_value(json_object_get(delta, "content"));
        size_t n = json_string_length(json_object_get(delta, "content"));
        if (s && n) {
            if (append(c, s, n)) rc = fail(c, CHAT_MALFORMED, "the answer is over 16 MiB (or memory ran out)");
            else if (c->on_delta) c->on_delta(c->ctx, s, n);
        }
        if (rc == 0) rc = finish_reason(c, ch);
    }
    json_decref(j);
    return rc;
}

int chat_whole(chat_stream *c, const char *body, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return fail(c, CHAT_MALFORMED, "malformed response: neither an event stream nor a JSON chat completion");
    }
    int rc = common_fields(c, j);
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    json_t *content = json_object_get(json_object_get(ch, "message"), "content");
    if (rc == 0 && !json_is_string(content))
        rc = fail(c, CHAT_MALFORMED, "malformed response: no choices[0].message.content");
    if (rc == 0) {
        if (append(c, json_string_value(content), json_string_length(content)))
            rc = fail(c, CHAT_MALFORMED, "the answer is over 16 MiB (or memory ran out)");
        else if (c->on_delta && c->text.len) c->on_delta(c->ctx, c->text.data, c->text.len);
    }
    if (rc == 0) rc = finish_reason(c, ch);
    if (rc == 0) c->done = true;
    json_decref(j);
    return rc;
}

void llm_error_message(const char *body, size_t len, char *out, size_t out_len)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    const char *msg = NULL;
    if (json_is_object(j)) {
        json_t *e = json_object_get(j, "error");
        if (json_is_object(e)) msg = json_string_value(json_object_get(e, "message"));
        else if (json_is_string(e)) msg = json_string_value(e);
        if (!msg) msg = json_string_value(json_object_get(j, "message"));
        if (!msg) msg = json_string_value(json_object_get(j, "detail"));
        if (!msg) msg = json_string_value(json_object_get(json_object_get(j, "detail"), "message"));
    }
    if (msg) snprintf(out, out_len, "%s", msg);
    else {
        /* Plain text (a proxy's HTML page...): its start, on one line. */
        size_t n = len < 300 ? len : 300;
        size_t k = 0;
        for (size_t i = 0; i < n && k + 1 < out_len; i++)
            out[k++] = (body[i] == '\n' || body[i] == '\r' || body[i] == '\t') ? ' ' : body[i];
        if (out_len) out[k < out_len ? k : out_len - 1] = 0;
        if (k == 0) snprintf(out, out_len, "(empty body)");
    }
    json_decref(j);
}
