#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "http/http_internal.h"
#include "util/buf.h"
#include "util/json_out.h"
#include "util/log.h"

/* The client has half-closed: it sends no next request, and the engine's
 * edge-triggered loop may have taken that end of file with the last bytes
 * of this one without noticing it; kept alive, the connection would wait for
 * the header deadline. */
static bool client_done_sending(front_conn *c)
{
    int fd = front_client_fd(c);
    struct pollfd p = {fd, POLLRDHUP, 0};
    return fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP));
}

front_result reply_queue(front_conn *c, http_req *hr, unsigned status, front_resp *r)
{
    front_resp_header(r, "X-Request-Id", hr->request_id);
    if (status == 429 || status == 503) {
        char ra[24];
        if (hr->retry_after > 0) snprintf(ra, sizeof ra, "%lld", (long long)hr->retry_after);
        else snprintf(ra, sizeof ra, "%d", hr->srv->cfg.retry_after_s);
        front_resp_header(r, "Retry-After", ra);
    }
    if (hr->rl_policy[0]) {
        front_resp_header(r, "RateLimit-Policy", hr->rl_policy);
        front_resp_header(r, "RateLimit", hr->rl_state);
    }
    if (status == 405) front_resp_header(r, "Allow", hr->route->allow);
    /* A request refused before its body was read leaves that body unread on the
     * socket: closing is the only safe way to end the exchange. Shutting down,
     * a kept connection would only carry requests to refuse. */
    if (hr->close_after || atomic_load(&hr->srv->shutting_down) || client_done_sending(c) ||
        (status >= 400 && !req_body_read(hr) && (hr->route->flags & ROUTE_PREDICT)))
        front_resp_header(r, "Connection", "close");
    /* From here the connection is sending: no request deadline applies. Marked
     * before queueing, so the reaper never writes its 408 beside this response. */
    front_request_done(c);
    front_result ret = front_respond(c, status, r);
    if (ret == FRONT_OK) {
        hr->status = status;
        hr->phase = PH_DONE;
    } else {
        log_req(LOG_WARN, hr->request_id, "could not queue a %u response", status);
    }
    return ret;
}

front_result reply_body(front_conn *c, http_req *hr, unsigned status, const char *content_type,
                        char *body, size_t len)
{
    front_resp *r = front_resp_buffer(body, len, FRONT_BODY_FREE);
    if (!r) {
        free(body);
        return FRONT_CLOSE;
    }
    front_resp_header(r, "Content-Type", content_type);
    return reply_queue(c, hr, status, r);
}

front_result reply_error(front_conn *c, http_req *hr, unsigned status, const char *code,
                         const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len;
    char *body = hr->route->error_body(&status, code, msg, &len);
    if (!body) return FRONT_CLOSE;
    log_req(LOG_DEBUG, hr->request_id, "%u %s: %s", status, code, msg);
    return reply_body(c, hr, status, "application/json", body, len);
}

front_result reply_refuse(front_conn *c, http_req *hr, unsigned status, const char *code,
                          const char *fmt, ...)
{
    sight_error e;
    va_list ap;
    va_start(ap, fmt);
    sight_error_vset(&e, status, code, fmt, ap);
    va_end(ap);
    if (req_body_read(hr) || hr->expect_continue || status == 413)
        return reply_error(c, hr, status, code, "%s", e.message);
    hr->deferred = e;
    hr->phase = PH_BODY; /* read on to the body's end (server.c answers then) */
    return FRONT_OK;
}

front_result reply_refuse_now(front_conn *c, http_req *hr, unsigned status, const char *code,
                              const char *msg)
{
    if (hr->expect_continue || hr->srv->tls || front_client_fd(c) < 0) {
        /* The client sends no body before a 100 Continue, or there are no raw
         * bytes inside TLS: the engine answers, then closes. */
        hr->close_after = true;
        return reply_error(c, hr, status, code, "%s", msg);
    }
    size_t blen;
    char *body = hr->route->error_body(&status, code, msg, &blen);
    if (!body) return FRONT_CLOSE;
    buf b;
    buf_init(&b, 8192);
    int failed = buf_printf(&b, "HTTP/1.1 %u %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
                                "X-Request-Id: %s\r\n",
                            status, front_status_text(status), hr->request_id);
    if (status == 429 || status == 503)
        failed |= buf_printf(&b, "Retry-After: %lld\r\n",
                             (long long)(hr->retry_after > 0 ? hr->retry_after : hr->srv->cfg.retry_after_s));
    if (hr->rl_policy[0])
        failed |= buf_printf(&b, "RateLimit-Policy: %s\r\nRateLimit: %s\r\n", hr->rl_policy, hr->rl_state);
    failed |= buf_printf(&b, "Content-Length: %zu\r\n\r\n%s", blen, body);
    free(body);
    if (failed) {
        buf_free(&b);
        return FRONT_CLOSE;
    }
    log_info("request %s: %u %s before the body: %s; connection closed", hr->request_id, status, code, msg);
    hr->status = status;
    hr->phase = PH_DONE;
    /* Written straight to the socket, then a lingering close (front.h): what
     * the client still sends of its body is read and dropped for a while, so
     * that closing does not reset the connection before the client has read
     * this. */
    front_result r = front_refuse_raw(hr->srv->front, c, b.data, b.len);
    buf_free(&b);
    return r;
}

front_result reply_limited(front_conn *c, http_req *hr, const limit_verdict *v, bool now)
{
    if (v->status == 429) metrics_refused(v->code);
    hr->retry_after = v->retry_after;
    if (now) return reply_refuse_now(c, hr, v->status, v->code, v->message);
    return reply_refuse(c, hr, v->status, v->code, "%s", v->message);
}
