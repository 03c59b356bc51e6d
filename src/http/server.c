#include "http/server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "http/acceptor.h"
#include "http/capacity.h"
#include "http/conn_wait.h"
#include "http/http_internal.h"
#include "util/clock.h"
#include "http/key_check.h"
#include "http/pem_file.h"
#include "http/request_check.h"
#include "keys/store_probe.h"
#include "util/log.h"

/* Keeps a caller's X-Request-Id when it is short and plain, so logs line up
 * across services; otherwise makes a fresh random one. */
static void set_request_id(struct MHD_Connection *c, http_req *hr)
{
    const char *given = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (given) {
        size_t n = strlen(given);
        bool ok = n > 0 && n < sizeof hr->request_id;
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum((unsigned char)given[i]) || given[i] == '-' || given[i] == '_' || given[i] == '.';
        if (ok) {
            memcpy(hr->request_id, given, n + 1);
            return;
        }
    }
    uint8_t rnd[8];
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)hr;
        memcpy(rnd, &v, sizeof rnd);
    }
    for (size_t i = 0; i < sizeof rnd; i++) sprintf(hr->request_id + 2 * i, "%02x", rnd[i]);
}

/* The deadline tracking registered for c when it opened (see on_connection). */
static cg_conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

typedef struct {
    rc_state st;
    rc_layout lay;
    uintptr_t head;  /* the method's first byte: the head's start in libmicrohttpd's buffer */
    unsigned fields; /* header fields seen */
} head_check;

/* Offset of p from the head's start, as an integer (the pointers may not
 * point into the same buffer: that is what the layout check looks for). */
static long long head_off(const head_check *h, const char *p)
{
    return (long long)((uintptr_t)p - h->head);
}

/* Every header field as libmicrohttpd parsed it, duplicates included. */
static enum MHD_Result check_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                    const char *value, size_t value_size)
{
    (void)kind;
    head_check *h = cls;
    h->fields++;
    rc_header(&h->st, key, key_size, value, value_size);
    rc_layout_field(&h->lay, head_off(h, key), key_size, head_off(h, value), value_size);
    return MHD_YES;
}

/* RFC 9112 framing and syntax checks (request_check.h) on a request whose
 * headers are in. A refusal is written straight to the socket, and the
 * connection closed (MHD_NO): queued through libmicrohttpd, an early answer
 * to a request with a body of unknown length (Transfer-Encoding) waits for
 * that body, and the bytes after it would be parsed as the next request. */
static enum MHD_Result refuse_if_malformed(struct MHD_Connection *c, http_req *hr, const char *method,
                                           const char *version, bool *refused)
{
    head_check h = {.head = (uintptr_t)method};
    rc_state *st = &h.st;
    rc_begin(st, method, version);
    rc_layout_begin(&h.lay, strlen(method), hr->target_at != 0, head_off(&h, (const char *)hr->target_at),
                    hr->target_len, head_off(&h, version), strlen(version));
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, check_header, &h);
    unsigned status = rc_end(st);
    const union MHD_ConnectionInfo *hs = MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (status != 400 && hr->target_error[0]) {
        status = 400;
        snprintf(st->message, sizeof st->message, "%s", hr->target_error);
    } else if (status != 400 && (!hs || !rc_layout_end(&h.lay, hs->header_size))) {
        status = 400;
        snprintf(st->message, sizeof st->message, "%s",
                 "the request head holds bytes outside its parts: an obs-fold, a NUL, a bare LF, "
                 "a field without a name or a doubled space (RFC 9112 sections 2.2, 3, 5.1, 5.2)");
    }
    if (!status && hs) status = rc_head_size(hs->header_size, h.fields, st->message, sizeof st->message);
    *refused = status != 0;
    if (!status) return MHD_YES;
    log_req(LOG_INFO, hr->request_id, "%u %s: %s; connection closed", status,
            status == 431 ? "header_too_large" : "malformed_request", st->message);
    if (hr->srv->tls) {
        /* No raw bytes inside TLS: queued with Connection: close, an early
         * answer makes libmicrohttpd read nothing more of this connection. */
        hr->close_after = true;
        reply_error(c, hr, status, status == 431 ? "header_too_large" : "malformed_request", "%s", st->message);
        return MHD_YES;
    }
    const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    /* From here this thread writes the answer: no request deadline applies. */
    cg_request_done(hr->conn);
    hr->status = status;
    hr->phase = PH_DONE;
    if (fd) {
        /* The answer fits an empty send buffer: written without waiting. The
         * lingering read happens on the watcher's thread, on a duplicate of
         * the socket that outlives libmicrohttpd's close. */
        rc_send_refusal(fd->connect_fd, status, hr->request_id, st->message, 0, 0);
        int dupfd = fcntl(fd->connect_fd, F_DUPFD_CLOEXEC, 0);
        if (dupfd >= 0) cw_linger(hr->srv->cw, dupfd, 1000);
    }
    return MHD_NO;
}

/* The request whose request line this thread parsed last, until its
 * handler runs or its connection closes: libmicrohttpd refuses a bad
 * Content-Length between the two without calling the handler, and only its
 * log line says so (see cl_refusal). Each connection stays on one thread. */
static _Thread_local struct {
    struct MHD_Connection *c;
    http_req *hr;
} line_seen;

/* Called by libmicrohttpd once the request line is in, with the request
 * target still raw (before percent-decoding): what it returns becomes the
 * request's closure. The debug line lets tests count what reached the node. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *c)
{
    server *s = cls;
    http_req *hr = calloc(1, sizeof *hr);
    line_seen.c = hr ? c : NULL;
    line_seen.hr = hr;
    if (!hr) return NULL; /* the handler allocates it then (and skips the target check) */
    hr->srv = s;
    rc_target_ok(uri, hr->target_error, sizeof hr->target_error);
    if (uri) {
        hr->target_at = (uintptr_t)uri;
        hr->target_len = strlen(uri);
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
    return hr;
}

static void defer_error(http_req *hr, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void defer_error(http_req *hr, unsigned status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sight_error_vset(&hr->deferred, status, code, fmt, ap);
    va_end(ap);
}

/* The dispatcher: the route's admission by method, a refused request's body
 * read and dropped, the key of a KEY_FIRST route, then the route's handler,
 * called again at each step until the request is answered (its phase says
 * where it resumes). */
static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **req_cls)
{
    server *s = cls;
    http_req *hr = *req_cls;
    bool first = hr == NULL || hr->phase == PH_NEW;
    if (first) {
        if (line_seen.c == c) line_seen.c = NULL; /* its head was accepted */
        if (!hr && !(hr = calloc(1, sizeof *hr))) return MHD_NO;
        hr->phase = PH_ADMIT;
        hr->srv = s;
        hr->route = route_find(url);
        /* DEEPSTACK_CUSTOM{model}; an over-long name is cut here and then
         * matches no model: 404 all the same. */
        if (hr->route->match == MATCH_PREFIX)
            snprintf(hr->ds_model, sizeof hr->ds_model, "%s", url + strlen(hr->route->path));
        set_request_id(c, hr);
        hr->t_start = clock_ms();
        hr->conn = conn_of(c);
        *req_cls = hr;
        cg_headers_done(hr->conn, hr->request_id);
        bool refused;
        enum MHD_Result r = refuse_if_malformed(c, hr, method, version, &refused);
        if (refused) return r;
    } else if (hr->phase < PH_BODY) {
        /* Called again after a wait at the head (the key's check): no body yet. */
    } else if (*upload_data_size > 0) {
        cg_body_bytes(hr->conn, (int64_t)*upload_data_size);
    } else {
        /* The whole request is in: what follows is work and the answer. */
        cg_request_done(hr->conn);
    }
    if (hr->phase == PH_DONE) {
        /* Already answered (an early error): discard whatever body still arrives. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    const route *rt = hr->route;
    bool takes_body = rt->flags & ROUTE_BODY;
    if (first) {
        /* Decided now, answered once the request is complete (below): an
         * answer queued before that makes libmicrohttpd close the connection,
         * and one to a request with a body would leave the body unread and
         * the client, still sending, would see a reset. */
        if (!rt->handler) {
            defer_error(hr, 404, "not_found", "no such endpoint: %s %.200s", method, url);
        } else if (!route_allows(rt, method)) {
            size_t n = strcspn(rt->allow, ",");
            defer_error(hr, 405, "method_not_allowed", "use %.*s for %s", (int)n, rt->allow, url);
        }
        if (hr->deferred.status || !takes_body) {
            hr->phase = PH_BODY;
            return MHD_YES;
        }
    }
    if (hr->deferred.status || !takes_body) {
        /* A body that no route takes is read and dropped; one that goes on far
         * past the body limit is cut off. */
        if (hr->phase == PH_BODY) {
            if (*upload_data_size > 0) {
                hr->body_bytes += (int64_t)*upload_data_size;
                *upload_data_size = 0;
                return hr->body_bytes > 2 * s->cfg.max_body_bytes ? MHD_NO : MHD_YES;
            }
            hr->phase = !hr->deferred.status && rt->key == KEY_FIRST ? PH_KEY : PH_RESPOND;
        }
        if (hr->deferred.status)
            return reply_error(c, hr, hr->deferred.status, hr->deferred.code, "%s", hr->deferred.message);
    }
    if (hr->phase == PH_KEY && rt->key == KEY_FIRST) {
        /* Every store read runs off the HTTP thread (auth.c). */
        bool valid;
        step st = auth_check(c, hr, auth_request_key(c, true), false, &valid);
        if (st != STEP_NEXT) return step_result(st);
        hr->phase = PH_RESPOND;
    }
    route_call call = {url, method, upload_data, upload_data_size};
    return rt->handler(c, hr, &call);
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe)
{
    http_req *hr = *req_cls;
    cg_conn *cc = conn_of(c);
    cg_cut cut = cg_was_cut(cc);
    /* A kept-alive connection now waits for its next request's headers. */
    cg_next_request(cc);
    if (!hr) return;
    *req_cls = NULL;
    if (hr->phase == PH_NEW) {
        /* Only the request line arrived, or libmicrohttpd refused the head
         * itself (over its buffer, RC_HEAD_POOL_BYTES: its own page, 431 or
         * 414): the latter is counted, by the status it sent. */
        const union MHD_ConnectionInfo *st = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
        if (st && st->http_status >= 400) {
            metrics_request(METRIC_ROUTE_OTHER, st->http_status, 0);
            log_info("a request head over %d bytes: %u from libmicrohttpd; connection closed", RC_HEAD_POOL_BYTES,
                     st->http_status);
        }
        free(hr);
        return;
    }
    /* A request cut off before any response counts as 499 (client closed), as
     * nginx logs it, or 408 when our body deadline cut it. */
    unsigned status = hr->status ? hr->status : (cut ? 408 : 499);
    metrics_request(hr->route->metric, status, (clock_ms() - hr->t_start) / 1e3);
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
        /* Includes a client that stopped reading its stream: writes made no
         * progress for --client-timeout seconds. */
        log_req(LOG_INFO, hr->request_id, "client made no progress for %d s; connection closed",
                hr->srv->cfg.client_timeout_s);
    else if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        log_req(LOG_DEBUG, hr->request_id, "ended early (MHD termination code %d)", (int)toe);
    predict_cleanup(hr);
    free(hr);
}

/* Registers each connection with the deadline reaper as it opens, and
 * unregisters it as it closes. libmicrohttpd 0.9.75 sends "closed" before it
 * closes the socket (MHD_cleanup_connections), so the reaper never sees a
 * descriptor number that has been reused. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    server *s = cls;
    metrics_connections_add(code == MHD_CONNECTION_NOTIFY_CLOSED ? -1 : 1);
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (line_seen.c == c) line_seen.c = NULL;
        atomic_fetch_sub(&s->open_conns, 1);
        cg_close(*socket_ctx);
        *socket_ctx = NULL;
        return;
    }
    atomic_fetch_add(&s->open_conns, 1);
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
    *socket_ctx = fd && s->guard ? cg_open(s->guard, fd->connect_fd, peer) : NULL;
}

/* libmicrohttpd 0.9.75 refuses a Content-Length that is not a number
 * or is past 64 bits itself, without calling the handler, and
 * writes its header block twice (a bug of that version: it builds the
 * response's head again after the error). Its log line is the one sign, on
 * the thread parsing that head. When the request this thread saw last
 * (line_seen) does hold such a Content-Length, Sight's own refusal goes to
 * the socket first, as for its other framing checks, and the write side is
 * shut: libmicrohttpd's answer then fails to send and it closes. Under TLS
 * no raw bytes can be written, and its answer stands. */
static void cl_refusal(server *s, bool too_large)
{
    struct MHD_Connection *c = line_seen.c;
    http_req *hr = line_seen.hr;
    line_seen.c = NULL;
    if (!c || !hr || s->tls) return;
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!v || rc_content_length_ok(v)) return; /* not the request that was refused */
    const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!fd) return;
    set_request_id(c, hr);
    /* Counted under its route, as the other refusals: the target is still
     * in libmicrohttpd's buffer while it parses this head (the query cut off). */
    hr->route = route_find(hr->target_at ? (const char *)hr->target_at : "");
    hr->t_start = clock_ms();
    hr->status = 400; /* as nginx answers both; libmicrohttpd said 413 for the second */
    hr->phase = PH_DONE;
    const char *msg = too_large ? "Content-Length is past 64 bits"
                                : "Content-Length must be digits only: no sign, space, list or hex (RFC 9112 8.6)";
    log_req(LOG_INFO, hr->request_id, "%u malformed_request: %s; connection closed", hr->status, msg);
    rc_send_refusal(fd->connect_fd, hr->status, hr->request_id, msg, 0, 0);
    int dupfd = fcntl(fd->connect_fd, F_DUPFD_CLOEXEC, 0);
    if (dupfd >= 0) cw_linger(s->cw, dupfd, 1000);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    if (!strncmp(fmt, "Failed to parse `Content-Length'", 32)) cl_refusal(cls, false);
    else if (!strncmp(fmt, "Too large value of 'Content-Length'", 35)) cl_refusal(cls, true);
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
    log_debug("microhttpd: %s", buf);
}

/* Threads are fixed: --http-threads, each serving many connections (epoll). */
server *server_start(const sight_config *cfg, keystore *keys, limiter *limits, pipeline *pipe, const json_t *models,
                     struct model_registry *reg, work_queue *wq, ticker *tk)
{
    server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->reg = reg;
    s->cfg = *cfg;
    if (models && !(s->models = json_deep_copy(models))) {
        free(s);
        return NULL;
    }
    s->keys = keys;
    s->lim = limits;
    s->pipe = pipe;
    s->tls = cfg->tls_cert[0] || cfg->tls_key[0];
    char *cert = NULL, *key = NULL;
    s->abort_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->abort_fd < 0) goto fail;
    if (s->tls) {
        if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
            log_error("HTTPS needs both --tls-cert and --tls-key");
            goto fail;
        }
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            log_error("this libmicrohttpd was built without TLS: --tls-cert cannot be served");
            goto fail;
        }
        if (!(cert = pem_file_read(cfg->tls_cert, "--tls-cert", "-----BEGIN CERTIFICATE-----")) ||
            !(key = pem_file_read(cfg->tls_key, "--tls-key", "PRIVATE KEY-----")))
            goto fail;
    }
    cg_limits lim = {cfg->header_timeout_s, cfg->body_timeout_s, cfg->body_min_rate, s->tls};
    if (!(s->guard = cg_start(&lim, tk)) || !(s->cw = cw_start(s->abort_fd)) ||
        !(s->cache = key_cache_new(keys, KEY_CACHE_CAPACITY, cfg->key_cache_ttl_s * 1000, KEY_CACHE_POLL_MS, tk)) ||
        !(s->kc = kc_start(keys, s->cache, wq)) || !(s->probe = store_probe_start(keys, 1.0, tk)) ||
        !(s->cap = capacity_new(cfg->max_inflight, cfg->max_inflight_per_key ? cfg->max_inflight_per_key : cfg->max_inflight / 2))) {
        log_error("cannot start the HTTP front's helper threads");
        goto fail;
    }
    /* Event-driven: a pool of epoll threads serves every connection; a stream
     * or batch waiting for results is suspended (conn_wait.h), a key check
     * (and a limit check that asks Redis or the ledger) runs on the work
     * queue (key_check.h). Nothing here sleeps, so the number of
     * connections costs memory, not threads. */
    if (!(s->acc = acc_open(cfg->listen_host, cfg->listen_port))) goto fail;
    /* No listening socket of its own: acceptor.h says why. */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_ITC |
        MHD_USE_NO_LISTEN_SOCKET;
    if (s->tls) flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls_opts[] = {
        {s->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, key},
        {MHD_OPTION_END, 0, NULL},
    };
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handler, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                                 MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->client_timeout_s,
                                 /* Room for a head well over RC_MAX_HEAD_BYTES, so that
                                  * the handler's JSON 431 is what refuses one. */
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)RC_HEAD_POOL_BYTES,
                                 MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                                 MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                                 /* 0.9.75's levels: 1 answers a missing Host with
                                  * its header block written twice and closes on a
                                  * space in the target without any answer; -1 only
                                  * adds a refusal of whitespace before the colon,
                                  * with an HTML body. request_check.c does both, and
                                  * more, with the usual JSON error: stay at 0. */
                                 MHD_OPTION_STRICT_FOR_CLIENT, 0,
                                 MHD_OPTION_URI_LOG_CALLBACK, on_request_line, s,
                                 MHD_OPTION_ARRAY, tls_opts,
                                 MHD_OPTION_END);
    /* libmicrohttpd copies neither: they must live as long as the daemon. */
    s->tls_cert_pem = cert;
    s->tls_key_pem = key;
    cert = key = NULL;
    if (!s->daemon) {
        if (s->tls)
            log_error("cannot serve HTTPS on %s:%u with --tls-cert %s and --tls-key %s (a bad certificate or key, "
                      "or a key that does not match)",
                      cfg->listen_host, cfg->listen_port, cfg->tls_cert, cfg->tls_key);
        else
            log_error("cannot start the HTTP front on %s:%u", cfg->listen_host, cfg->listen_port);
        goto fail;
    }
    if (acc_start(s->acc, s->daemon, &s->open_conns, cfg->max_connections) != 0) {
        log_error("cannot start the accept thread");
        MHD_stop_daemon(s->daemon);
        goto fail;
    }
    s->port = acc_port(s->acc);
    log_info("HTTP front: %s, %d threads, up to %d connections%s", s->tls ? "HTTPS" : "HTTP", cfg->http_threads,
             cfg->max_connections, cfg->max_connections_per_ip ? "" : " (no per-address limit)");
    return s;
fail:
    capacity_free(s->cap);
    store_probe_stop(s->probe);
    acc_free(s->acc);
    kc_stop(s->kc);
    kc_free(s->kc);
    key_cache_free(s->cache);
    cw_stop(s->cw);
    cg_stop(s->guard);
    if (s->abort_fd >= 0) close(s->abort_fd);
    json_decref(s->models);
    free(cert);
    free(key);
    free(s->tls_cert_pem);
    free(s->tls_key_pem);
    free(s);
    return NULL;
}

unsigned server_port(const server *s) { return s->port; }

void server_set_jobs(server *s, struct job_store *js) { atomic_store(&s->jobs, js); }

void server_shutdown(server *s)
{
    if (!s) return;
    atomic_store(&s->shutting_down, true);
    /* Stop accepting (new connections are refused from here); connections
     * already open finish their current request. Not MHD_quiesce_daemon:
     * acceptor.h says why. */
    acc_stop(s->acc);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int n;
    while ((n = atomic_load(&s->inflight)) > 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        /* Whole seconds alone would cut the wait short by up to one second. */
        if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 >=
            (double)s->cfg.shutdown_timeout_s) {
            log_warn("shutdown: %d request(s) still running after %ds, ending them", n, s->cfg.shutdown_timeout_s);
            break;
        }
        /* A bounded wait at shutdown only; 50 ms granularity is plenty here. */
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&s->aborting, true);
    uint64_t one = 1;
    ssize_t w = write(s->abort_fd, &one, sizeof one);
    (void)w;
    /* The streams still open now send their last lines (shutting_down per
     * unfinished file, then complete) and end; give them a moment before the
     * daemon's stop closes every connection. Bounded: a client that reads
     * nothing must not hold the exit. */
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (n > 0 && (n = atomic_load(&s->inflight)) > 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 >= 2.0) {
            log_warn("shutdown: %d stream(s) did not take their last lines within 2 s, closing them", n);
            break;
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    /* libmicrohttpd must not be stopped with a connection suspended: finish
     * the key checks and resume every waiting stream first. */
    kc_stop(s->kc);
    cw_release_all(s->cw);
    MHD_stop_daemon(s->daemon);
    /* After the daemon: a /readyz still being answered reads the probe. */
    store_probe_stop(s->probe);
    /* After the daemon: its "closed" notifications still use the guard. */
    cg_stop(s->guard);
    cw_stop(s->cw);
    kc_free(s->kc);
    key_cache_free(s->cache);
    acc_free(s->acc);
    capacity_free(s->cap);
    close(s->abort_fd);
    json_decref(s->models);
    free(s->tls_cert_pem);
    free(s->tls_key_pem);
    free(s);
}
