/* The engine's daemon: its set-up, its callbacks (connections opened and
 * closed, request line, requests, completions) and its stop. The head
 * checks' glue is in conn.c (front_check_head). */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "http/front/engine.h"
#include "http/front/pem_file.h"
#include "http/front/request_check.h"
#include "metrics/metrics.h"
#include "util/log.h"

_Static_assert(FRONT_OK == (int)MHD_YES && FRONT_CLOSE == (int)MHD_NO, "front_result mirrors the engine's");
_Static_assert(FRONT_STREAM_END == MHD_CONTENT_READER_END_OF_STREAM &&
                   FRONT_STREAM_ERROR == MHD_CONTENT_READER_END_WITH_ERROR,
               "a stream's end values are the engine's");

_Thread_local front_req *front_current;

/* The request whose request line this thread parsed last, until its
 * handler runs or its connection closes: libmicrohttpd refuses a bad
 * Content-Length between the two without calling the handler, and only its
 * log line says so (see cl_refusal). Each connection stays on one thread. */
static _Thread_local struct {
    struct MHD_Connection *c;
    front_req *fr;
} line_seen;

cg_conn *front_guard_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Called by libmicrohttpd once the request line is in, with the request
 * target still raw (before percent-decoding): what it returns becomes the
 * request's closure. The debug line lets tests count what reached the node. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    front_req *fr = calloc(1, sizeof *fr);
    line_seen.c = fr ? c : NULL;
    line_seen.fr = fr;
    if (!fr) return NULL; /* the handler allocates it then (and skips the target check) */
    rc_target_ok(uri, fr->target_error, sizeof fr->target_error);
    if (uri) {
        fr->target_at = (uintptr_t)uri;
        fr->target_len = strlen(uri);
    }
    char shown[210];
    size_t o = 0;
    for (const char *p = uri ? uri : ""; *p && o + 5 < sizeof shown; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch > 0x20 && ch < 0x7f && ch != '\\') shown[o++] = (char)ch;
        else o += (size_t)snprintf(shown + o, sizeof shown - o, "\\x%02x", ch);
    }
    shown[o] = 0;
    log_debug("request line received: target %s", shown);
    return fr;
}

/* Acknowledges the head now. A client without TCP_NODELAY (Python's httpx
 * is one) writes the head, then the body; Nagle holds the body's last
 * segment until the head is acknowledged, and the kernel delays that ACK by
 * up to 40 ms when the server has nothing to send yet: 40 ms on every
 * upload. TCP_QUICKACK sends a pending ACK at once (it is not sticky: set
 * per request). */
static void quick_ack(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    int one = 1;
    if (ci) (void)setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

/* Passes each call on to the application's handler, keeping the head's
 * place (method, version) for front_check_head on the first. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    front *f = cls;
    front_req *fr = *req_cls;
    if (!fr) {
        if (!(fr = calloc(1, sizeof *fr))) return MHD_NO;
        *req_cls = fr;
    }
    if (!fr->called) {
        if (line_seen.c == c) line_seen.c = NULL; /* its head was accepted */
        quick_ack(c);
        fr->called = true;
        fr->method = method;
        fr->version = version;
    }
    front_req *outer = front_current;
    front_current = fr;
    front_result r = f->handler(f->cls, (front_conn *)c, url, method, upload_data, upload_data_size, &fr->app);
    front_current = outer;
    return r == FRONT_OK ? MHD_YES : MHD_NO;
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe)
{
    front *f = cls;
    front_req *fr = *req_cls;
    cg_conn *cc = front_guard_of(c);
    cg_cut cut = cg_was_cut(cc);
    /* A kept-alive connection now waits for its next request's headers. */
    cg_next_request(cc);
    if (!fr) return;
    *req_cls = NULL;
    front_end end = {toe == MHD_REQUEST_TERMINATED_COMPLETED_OK, toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED,
                     (int)toe, cut != CG_CUT_NONE, 0, NULL};
    if (!fr->called && fr->refused) {
        end.engine_sent = fr->refused;
        end.target = fr->refused_target;
    } else if (!fr->called) {
        /* Only the request line arrived, or libmicrohttpd refused the head
         * itself (over its buffer, RC_HEAD_POOL_BYTES: its own page, 431 or
         * 414): the latter is counted, by the status it sent. */
        const union MHD_ConnectionInfo *st = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
        if (st && st->http_status >= 400) {
            end.engine_sent = st->http_status;
            log_info("a request head over %d bytes: %u from libmicrohttpd; connection closed", RC_HEAD_POOL_BYTES,
                     st->http_status);
        }
    }
    f->done(f->cls, (front_conn *)c, fr->app, &end);
    free(fr);
}

/* Registers each connection with the deadline reaper as it opens, and
 * unregisters it as it closes. libmicrohttpd 0.9.75 sends "closed" before it
 * closes the socket (MHD_cleanup_connections), so the reaper never sees a
 * descriptor number that has been reused. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    front *f = cls;
    metrics_connections_add(code == MHD_CONNECTION_NOTIFY_CLOSED ? -1 : 1);
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (line_seen.c == c) line_seen.c = NULL;
        atomic_fetch_sub(&f->open_conns, 1);
        cg_close(*socket_ctx);
        *socket_ctx = NULL;
        return;
    }
    atomic_fetch_add(&f->open_conns, 1);
    const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *ad = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char peer[64] = "?";
    if (ad && ad->client_addr) {
        const struct sockaddr *sa = ad->client_addr;
        char host[INET6_ADDRSTRLEN] = "";
        unsigned port = 0;
        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
        } else if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = ntohs(in6->sin6_port);
        }
        snprintf(peer, sizeof peer, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
    }
    *socket_ctx = fd && f->guard ? cg_open(f->guard, fd->connect_fd, peer) : NULL;
}

/* libmicrohttpd 0.9.75 refuses a Content-Length that is not a number or is
 * past 64 bits itself, without calling the handler, and writes its header
 * block twice (a bug of that version: its idle loop overwrites the state
 * its error path set and builds the response's head again). Its log line is
 * the one sign, on the thread parsing that head. When the request this
 * thread saw last (line_seen) does hold such a Content-Length, the front's
 * own refusal goes to the socket first, as for its other framing checks,
 * and the write side is shut: libmicrohttpd's answer then fails to send and
 * it closes. Under TLS no raw bytes can be written, and its answer stands. */
static void cl_refusal(front *f)
{
    struct MHD_Connection *c = line_seen.c;
    front_req *fr = line_seen.fr;
    line_seen.c = NULL;
    if (!c || !fr || f->tls_cert_pem) return;
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!v || rc_content_length_ok(v)) return; /* not the request that was refused */
    /* The target is still in libmicrohttpd's buffer while it parses this
     * head (its query already cut off): copied for the route's metric. */
    snprintf(fr->refused_target, sizeof fr->refused_target, "%s", fr->target_at ? (const char *)fr->target_at : "");
    fr->refused = 400; /* as nginx answers both; libmicrohttpd says 413 past 64 bits */
    char id[17];
    uint8_t rnd[8] = {0};
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd) memcpy(rnd, &fr, sizeof fr < sizeof rnd ? sizeof fr : sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++) sprintf(id + 2 * i, "%02x", rnd[i]);
    const char *msg = "Content-Length must be 1 to 19 digits: no sign, space, list or hex (RFC 9112 8.6)";
    log_req(LOG_INFO, id, "400 malformed_request: %s; connection closed", msg);
    front_refuse_head(f, (front_conn *)c, 400, id, msg);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    if (!strncmp(fmt, "Failed to parse `Content-Length'", 32) || !strncmp(fmt, "Too large value of 'Content-Length'", 35))
        cl_refusal(cls);
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
    log_debug("microhttpd: %s", buf);
}

static void front_free(front *f)
{
    acc_free(f->acc);
    cw_stop(f->cw);
    cg_stop(f->guard);
    free(f->tls_cert_pem);
    free(f->tls_key_pem);
    free(f);
}

/* Event-driven: a pool of epoll threads serves every connection; a stream
 * or batch waiting for results is suspended (conn_wait.h), and so is one
 * whose key check runs elsewhere (front_suspend). Nothing here sleeps, so
 * the number of connections costs memory, not threads. */
front *front_start(const front_config *cfg, struct ticker *tk)
{
    front *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->handler = cfg->handler;
    f->done = cfg->done;
    f->cls = cfg->cls;
    bool tls = cfg->tls_cert[0] || cfg->tls_key[0];
    if (tls) {
        if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
            log_error("HTTPS needs both --tls-cert and --tls-key");
            goto fail;
        }
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            log_error("this libmicrohttpd was built without TLS: --tls-cert cannot be served");
            goto fail;
        }
        if (!(f->tls_cert_pem = pem_file_read(cfg->tls_cert, "--tls-cert", "-----BEGIN CERTIFICATE-----")) ||
            !(f->tls_key_pem = pem_file_read(cfg->tls_key, "--tls-key", "PRIVATE KEY-----")))
            goto fail;
    }
    cg_limits lim = {cfg->header_timeout_s, cfg->body_timeout_s, cfg->body_min_rate, tls};
    if (!(f->guard = cg_start(&lim, tk)) || !(f->cw = cw_start(cfg->abort_fd))) {
        log_error("cannot start the HTTP front's helper threads");
        goto fail;
    }
    if (!(f->acc = acc_open(cfg->host, (uint16_t)cfg->port))) goto fail;
    /* No listening socket of its own: acceptor.h says why. */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_ITC |
        MHD_USE_NO_LISTEN_SOCKET;
    if (tls) flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls_opts[] = {
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, f->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, f->tls_key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    f->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, f,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, f,
                                 MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->client_timeout_s,
                                 /* Room for a head well over RC_MAX_HEAD_BYTES, so that
                                  * the handler's JSON 431 is what refuses one. */
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)RC_HEAD_POOL_BYTES,
                                 MHD_OPTION_NOTIFY_COMPLETED, completed, f,
                                 MHD_OPTION_NOTIFY_CONNECTION, on_connection, f,
                                 /* 0.9.75's levels: 1 answers a missing Host with
                                  * its header block written twice and closes on a
                                  * space in the target without any answer; -1 only
                                  * adds a refusal of whitespace before the colon,
                                  * with an HTML body. request_check.c does both, and
                                  * more, with the usual JSON error: stay at 0. */
                                 MHD_OPTION_STRICT_FOR_CLIENT, 0,
                                 MHD_OPTION_URI_LOG_CALLBACK, on_request_line, f,
                                 MHD_OPTION_ARRAY, tls_opts,
                                 MHD_OPTION_END);
    if (!f->daemon) {
        if (tls)
            log_error("cannot serve HTTPS on %s:%u with --tls-cert %s and --tls-key %s (a bad certificate or key, "
                      "or a key that does not match)",
                      cfg->host, cfg->port, cfg->tls_cert, cfg->tls_key);
        else
            log_error("cannot start the HTTP front on %s:%u", cfg->host, cfg->port);
        goto fail;
    }
    f->max_connections = cfg->max_connections;
    f->port = acc_port(f->acc);
    return f;
fail:
    front_free(f);
    return NULL;
}

unsigned front_port(const front *f) { return f->port; }

int front_accept(front *f)
{
    if (acc_start(f->acc, f->daemon, &f->open_conns, f->max_connections) == 0) return 0;
    log_error("cannot start the accept thread");
    return -1;
}

/* Not MHD_quiesce_daemon: acceptor.h says why. */
void front_stop_accepting(front *f) { acc_stop(f->acc); }

void front_stop(front *f)
{
    /* libmicrohttpd must not be stopped with a connection suspended. */
    cw_release_all(f->cw);
    MHD_stop_daemon(f->daemon);
    /* After the daemon: its "closed" notifications still use the guard. */
    front_free(f);
}
