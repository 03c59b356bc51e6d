#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/conn_wait.h"
#include "http/http_internal.h"
#include "util/buf.h"
#include "util/json_out.h"
#include "util/log.h"

/* The client has half-closed: it sends no next request, and libmicrohttpd's
 * edge-triggered loop may have taken that end of file with the last bytes
 * of this one without noticing it; kept alive, the connection would wait for
 * the header deadline. */
static bool client_done_sending(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct pollfd p = {ci ? ci->connect_fd : -1, POLLRDHUP, 0};
    return ci && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP));
}

enum MHD_Result reply_queue(struct MHD_Connection *c, http_req *hr, unsigned status, struct MHD_Response *r)
{
    MHD_add_response_header(r, "X-Request-Id", hr->request_id);
    if (status == MHD_HTTP_TOO_MANY_REQUESTS || status == MHD_HTTP_SERVICE_UNAVAILABLE) {
        char ra[24];
        if (hr->retry_after > 0) snprintf(ra, sizeof ra, "%lld", (long long)hr->retry_after);
        else snprintf(ra, sizeof ra, "%d", hr->srv->cfg.retry_after_s);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (hr->rl_policy[0]) {
        MHD_add_response_header(r, "RateLimit-Policy", hr->rl_policy);
        MHD_add_response_header(r, "RateLimit", hr->rl_state);
    }
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, hr->route->allow);
    /* A request refused before its body was read leaves that body unread on the
     * socket: closing is the only safe way to end the exchange. Shutting down,
     * a kept connection would only carry requests to refuse. */
    if (hr->close_after || atomic_load(&hr->srv->shutting_down) || client_done_sending(c) ||
        (status >= 400 && !req_body_read(hr) && (hr->route->flags & ROUTE_PREDICT)))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    /* From here the connection is sending: no request deadline applies. Marked
     * before queueing, so the reaper never writes its 408 beside this response. */
    cg_request_done(hr->conn);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    if (ret == MHD_YES) {
        hr->status = status;
        hr->phase = PH_DONE;
    } else {
        log_req(LOG_WARN, hr->request_id, "could not queue a %u response", status);
    }
    return ret;
}

enum MHD_Result reply_body(struct MHD_Connection *c, http_req *hr, unsigned status, const char *content_type,
                           char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return reply_queue(c, hr, status, r);
}

enum MHD_Result reply_error(struct MHD_Connection *c, http_req *hr, unsigned status, const char *code,
                            const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len;
    char *body = hr->route->error_body(&status, code, msg, &len);
    if (!body) return MHD_NO;
    log_req(LOG_DEBUG, hr->request_id, "%u %s: %s", status, code, msg);
    return reply_body(c, hr, status, "application/json", body, len);
}

enum MHD_Result reply_refuse(struct MHD_Connection *c, http_req *hr, unsigned status, const char *code,
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
    return MHD_YES;
}

enum MHD_Result reply_refuse_now(struct MHD_Connection *c, http_req *hr, unsigned status, const char *code,
                                 const char *msg)
{
    const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (hr->expect_continue || hr->srv->tls || !fd) {
        /* The client sends no body before a 100 Continue, or there are no raw
         * bytes inside TLS: libmicrohttpd answers, then closes. */
        hr->close_after = true;
        return reply_error(c, hr, status, code, "%s", msg);
    }
    size_t blen;
    char *body = hr->route->error_body(&status, code, msg, &blen);
    if (!body) return MHD_NO;
    buf b;
    buf_init(&b, 8192);
    int failed = buf_printf(&b, "HTTP/1.1 %u %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
                                "X-Request-Id: %s\r\n",
                            status, MHD_get_reason_phrase_for(status), hr->request_id);
    if (status == 429 || status == 503)
        failed |= buf_printf(&b, "Retry-After: %lld\r\n",
                             (long long)(hr->retry_after > 0 ? hr->retry_after : hr->srv->cfg.retry_after_s));
    if (hr->rl_policy[0])
        failed |= buf_printf(&b, "RateLimit-Policy: %s\r\nRateLimit: %s\r\n", hr->rl_policy, hr->rl_state);
    failed |= buf_printf(&b, "Content-Length: %zu\r\n\r\n%s", blen, body);
    free(body);
    if (failed) {
        buf_free(&b);
        return MHD_NO;
    }
    log_info("request %s: %u %s before the body: %s; connection closed", hr->request_id, status, code, msg);
    /* From here this thread answers: no request deadline applies. */
    cg_request_done(hr->conn);
    hr->status = status;
    hr->phase = PH_DONE;
    /* A few hundred bytes into an empty send buffer: written without
     * waiting. Then the lingering close on the watcher's thread (a duplicate
     * of the socket, outliving libmicrohttpd's close): what the client still
     * sends of its body is read and dropped for a while, so that closing
     * does not reset the connection before the client has read this. */
    ssize_t w = send(fd->connect_fd, b.data, b.len, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
    buf_free(&b);
    shutdown(fd->connect_fd, SHUT_WR);
    int dupfd = fcntl(fd->connect_fd, F_DUPFD_CLOEXEC, 0);
    if (dupfd >= 0) cw_linger(hr->srv->cw, dupfd, 1000);
    return MHD_NO;
}

enum MHD_Result reply_limited(struct MHD_Connection *c, http_req *hr, const limit_verdict *v, bool now)
{
    if (v->status == 429) metrics_refused(v->code);
    hr->retry_after = v->retry_after;
    if (now) return reply_refuse_now(c, hr, v->status, v->code, v->message);
    return reply_refuse(c, hr, v->status, v->code, "%s", v->message);
}
