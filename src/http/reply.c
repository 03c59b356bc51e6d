#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "http/http_internal.h"
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
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, route_is_predict(hr->route) ? "POST" : "GET, HEAD");
    /* A request refused before its body was read leaves that body unread on the
     * socket: closing is the only safe way to end the exchange. Shutting down,
     * a kept connection would only carry requests to refuse. */
    if (hr->close_after || atomic_load(&hr->srv->shutting_down) || client_done_sending(c) ||
        (status >= 400 && !hr->body_read && route_is_predict(hr->route)))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    /* From here the connection is sending: no request deadline applies. Marked
     * before queueing, so the reaper never writes its 408 beside this response. */
    cg_request_done(hr->conn);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    if (ret == MHD_YES) {
        hr->status = status;
        hr->responded = true;
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
    /* DeepStack's clients know 400 for a bad request, not 422. */
    if (hr->route == ROUTE_DEEPSTACK && status == 422) status = 400;
    char *body = hr->route == ROUTE_DEEPSTACK ? deepstack_error_body(status, msg, &len) : json_error_body(code, msg, &len);
    if (!body) return MHD_NO;
    log_req(LOG_DEBUG, hr->request_id, "%u %s: %s", status, code, msg);
    return reply_body(c, hr, status, "application/json", body, len);
}
