#include "http/server.h"

#include <ctype.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "http/capacity.h"
#include "http/front/front.h"
#include "http/http_internal.h"
#include "util/clock.h"
#include "http/key_check.h"
#include "keys/store_probe.h"
#include "util/log.h"

/* Keeps a caller's X-Request-Id when it is short and plain, so logs line up
 * across services; otherwise makes a fresh random one. */
static void set_request_id(front_conn *c, http_req *hr)
{
    const char *given = front_header(c, "X-Request-Id");
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

/* A head the checks refused (front_check_head): written straight to the
 * socket and the connection closed (front.h says why). */
static front_result refuse_head(front_conn *c, http_req *hr, unsigned status, const char *msg)
{
    log_req(LOG_INFO, hr->request_id, "%u %s: %s; connection closed", status,
            status == 431 ? "header_too_large" : "malformed_request", msg);
    if (hr->srv->tls) {
        /* No raw bytes inside TLS: queued with Connection: close, an early
         * answer makes the engine read nothing more of this connection. */
        hr->close_after = true;
        reply_error(c, hr, status, status == 431 ? "header_too_large" : "malformed_request", "%s", msg);
        return FRONT_OK;
    }
    hr->status = status;
    hr->phase = PH_DONE;
    return front_refuse_head(hr->srv->front, c, status, hr->request_id, msg);
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
static front_result handler(void *cls, front_conn *c, const char *url, const char *method, const char *upload_data,
                            size_t *upload_data_size, void **req_cls)
{
    server *s = cls;
    http_req *hr = *req_cls;
    bool first = hr == NULL || hr->phase == PH_NEW;
    if (first) {
        if (!hr && !(hr = calloc(1, sizeof *hr))) return FRONT_CLOSE;
        hr->phase = PH_ADMIT;
        hr->srv = s;
        hr->route = route_find(url);
        /* DEEPSTACK_CUSTOM{model}; an over-long name is cut here and then
         * matches no model: 404 all the same. */
        if (hr->route->match == MATCH_PREFIX)
            snprintf(hr->ds_model, sizeof hr->ds_model, "%s", url + strlen(hr->route->path));
        set_request_id(c, hr);
        hr->t_start = clock_ms();
        *req_cls = hr;
        front_headers_done(c, hr->request_id);
        char msg[200];
        unsigned status = front_check_head(c, msg, sizeof msg);
        if (status) return refuse_head(c, hr, status, msg);
    } else if (hr->phase < PH_BODY) {
        /* Called again after a wait at the head (the key's check): no body yet. */
    } else if (*upload_data_size > 0) {
        front_body_bytes(c, (int64_t)*upload_data_size);
    } else {
        /* The whole request is in: what follows is work and the answer. */
        front_request_done(c);
    }
    if (hr->phase == PH_DONE) {
        /* Already answered (an early error): discard whatever body still arrives. */
        *upload_data_size = 0;
        return FRONT_OK;
    }
    const route *rt = hr->route;
    bool takes_body = rt->flags & ROUTE_BODY;
    if (first) {
        /* Decided now, answered once the request is complete (below): an
         * answer queued before that makes the engine close the connection,
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
            return FRONT_OK;
        }
    }
    if (hr->deferred.status || !takes_body) {
        /* A body that no route takes is read and dropped; one that goes on far
         * past the body limit is cut off. */
        if (hr->phase == PH_BODY) {
            if (*upload_data_size > 0) {
                hr->body_bytes += (int64_t)*upload_data_size;
                *upload_data_size = 0;
                return hr->body_bytes > 2 * s->cfg.max_body_bytes ? FRONT_CLOSE : FRONT_OK;
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

static void completed(void *cls, front_conn *c, void *req, const front_end *end)
{
    (void)cls;
    (void)c;
    http_req *hr = req;
    if (!hr) {
        /* The handler never ran: a head the engine refused itself is
         * counted, by the status it sent. */
        if (end->engine_sent >= 400)
            metrics_request(end->target ? route_find(end->target)->metric : METRIC_ROUTE_OTHER, end->engine_sent, 0);
        return;
    }
    /* A request cut off before any response counts as 499 (client closed), as
     * nginx logs it, or 408 when our body deadline cut it. */
    unsigned status = hr->status ? hr->status : (end->deadline_cut ? 408 : 499);
    metrics_request(hr->route->metric, status, (clock_ms() - hr->t_start) / 1e3);
    if (end->timed_out)
        /* Includes a client that stopped reading its stream: writes made no
         * progress for --client-timeout seconds. */
        log_req(LOG_INFO, hr->request_id, "client made no progress for %d s; connection closed",
                hr->srv->cfg.client_timeout_s);
    else if (!end->ok)
        log_req(LOG_DEBUG, hr->request_id, "ended early (engine termination code %d)", end->engine_code);
    predict_cleanup(hr);
    free(hr);
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
    s->abort_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->abort_fd < 0) goto fail;
    /* A key check (and a limit check that asks Redis or the ledger) runs on
     * the work queue (key_check.h), its connection suspended meanwhile. */
    if (!(s->cache = key_cache_new(keys, KEY_CACHE_CAPACITY, cfg->key_cache_ttl_s * 1000, KEY_CACHE_POLL_MS, tk)) ||
        !(s->kc = kc_start(keys, s->cache, wq)) || !(s->probe = store_probe_start(keys, 1.0, tk)) ||
        !(s->cap = capacity_new(cfg->max_inflight, cfg->max_inflight_per_key ? cfg->max_inflight_per_key : cfg->max_inflight / 2))) {
        log_error("cannot start the HTTP front's helper threads");
        goto fail;
    }
    /* Last: requests arrive from front_accept on, and find the server complete. */
    front_config fc = {
        .host = cfg->listen_host,
        .port = cfg->listen_port,
        .threads = cfg->http_threads,
        .max_connections = cfg->max_connections,
        .max_connections_per_ip = cfg->max_connections_per_ip,
        .client_timeout_s = cfg->client_timeout_s,
        .header_timeout_s = cfg->header_timeout_s,
        .body_timeout_s = cfg->body_timeout_s,
        .body_min_rate = cfg->body_min_rate,
        .tls_cert = cfg->tls_cert,
        .tls_key = cfg->tls_key,
        .abort_fd = s->abort_fd,
        .handler = handler,
        .done = completed,
        .cls = s,
    };
    if (!(s->front = front_start(&fc, tk))) goto fail;
    /* Only once s->front is set: the handler reads it. */
    if (front_accept(s->front) != 0) {
        front_stop(s->front);
        goto fail;
    }
    s->port = front_port(s->front);
    log_info("HTTP front: %s, %d threads, up to %d connections%s", s->tls ? "HTTPS" : "HTTP", cfg->http_threads,
             cfg->max_connections, cfg->max_connections_per_ip ? "" : " (no per-address limit)");
    return s;
fail:
    capacity_free(s->cap);
    store_probe_stop(s->probe);
    kc_stop(s->kc);
    kc_free(s->kc);
    key_cache_free(s->cache);
    if (s->abort_fd >= 0) close(s->abort_fd);
    json_decref(s->models);
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
     * already open finish their current request. */
    front_stop_accepting(s->front);
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
    /* The engine must not be stopped with a connection suspended: finish
     * the key checks (each resumes its connection) first; front_stop resumes
     * every waiting stream. */
    kc_stop(s->kc);
    front_stop(s->front);
    /* After the front: a /readyz still being answered reads the probe. */
    store_probe_stop(s->probe);
    kc_free(s->kc);
    key_cache_free(s->cache);
    capacity_free(s->cap);
    close(s->abort_fd);
    json_decref(s->models);
    free(s);
}
