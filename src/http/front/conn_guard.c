#include "http/front/conn_guard.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include "metrics/metrics.h"
#include "util/clock.h"
#include "util/json_out.h"
#include "util/log.h"

/* How often the reaper looks: a cut lands at most this late. */
#define REAP_INTERVAL_S 0.25
#define NS 1000000000LL

struct cg_conn {
    conn_guard *g;
    cg_conn *prev, *next;
    int fd;
    char peer[64];
    char request_id[40]; /* of the request being received, for the 408 and the log */
    cg_phase phase;
    int64_t since_ns; /* when the phase began */
    int64_t body_bytes;
    cg_cut cut;
    bool hup_seen;     /* a scan found the client done sending, all of it read */
    int64_t hup_bytes; /* body_bytes at that scan */
};

struct conn_guard {
    cg_limits lim;
    /* Guards the list and every cg_conn's fields. The reaper holds it while it
     * calls shutdown(), and cg_close (libmicrohttpd's "closed" notification,
     * which runs before it closes the fd) takes it too: the reaper can never
     * shut down a descriptor that has been closed and reused. */
    pthread_mutex_t mu;
    cg_conn *head;
    ticker *tk;
    tk_chore *reaper;
};

int64_t cg_deadline(const cg_limits *l, cg_phase ph, int64_t since_ns, int64_t body_bytes)
{
    if (ph == CG_HEADERS)
        return l->header_timeout_s > 0 ? since_ns + (int64_t)l->header_timeout_s * NS : CG_NO_DEADLINE;
    if (ph != CG_BODY || l->body_timeout_s <= 0) return CG_NO_DEADLINE;
    int64_t d = since_ns + (int64_t)l->body_timeout_s * NS;
    if (l->body_min_rate > 0 && body_bytes > 0) {
        /* bytes / rate seconds more, without overflow for any body size. */
        int64_t whole = body_bytes / l->body_min_rate;
        int64_t rest = body_bytes % l->body_min_rate;
        if (whole > (CG_NO_DEADLINE - d) / NS - 1) return CG_NO_DEADLINE;
        d += whole * NS + rest * NS / l->body_min_rate;
    }
    return d;
}

/* Tells the client why (best effort: never blocks, may be cut short), then
 * ends the connection in both directions. Called with g->mu held. */
static void cut(conn_guard *g, cg_conn *c, int64_t now)
{
    c->cut = c->phase == CG_HEADERS ? CG_CUT_HEADER : CG_CUT_BODY;
    double age = (double)(now - c->since_ns) / NS;
    char msg[200];
    if (c->cut == CG_CUT_HEADER)
        snprintf(msg, sizeof msg, "the request headers did not arrive within %d s", g->lim.header_timeout_s);
    else
        snprintf(msg, sizeof msg, "the request body arrived too slowly: %lld bytes in %.1f s (at least %lld bytes/s after %d s)",
                 (long long)c->body_bytes, age, (long long)g->lim.body_min_rate, g->lim.body_timeout_s);
    size_t bl = 0;
    char *body = json_error_body("request_timeout", msg, &bl);
    char resp[640];
    int rl = snprintf(resp, sizeof resp,
                      "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\n"
                      "%s%s%sContent-Length: %zu\r\n\r\n%s",
                      c->request_id[0] ? "X-Request-Id: " : "", c->request_id, c->request_id[0] ? "\r\n" : "",
                      body ? bl : 0, body ? body : "");
    free(body);
    /* Nothing else writes to the socket in these phases: libmicrohttpd is
     * reading, and no response is queued until the request is complete. */
    if (!g->lim.tls && rl > 0 && (size_t)rl < sizeof resp) {
        ssize_t w = send(c->fd, resp, (size_t)rl, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
    }
    shutdown(c->fd, SHUT_RDWR);
    metrics_conn_cut(c->cut == CG_CUT_HEADER ? CUT_HEADER : CUT_BODY);
    if (c->request_id[0])
        log_req(LOG_INFO, c->request_id, "cut off: %s (client %s)", msg, c->peer);
    else
        log_info("connection from %s: cut off: %s", c->peer, msg);
}

/* A client that half-closes before its body is complete can never finish it.
 * libmicrohttpd's epoll loop (edge-triggered) may not read that end of file
 * when it came with the last data, so it would wait for the body deadline:
 * seen on two scans in a row, with everything read and no byte more, the
 * connection is shut down here instead. Two scans, because for one instant a
 * complete body is read while its handler has not yet run. */
static void cut_if_half_closed(cg_conn *c)
{
    struct pollfd p = {c->fd, POLLRDHUP, 0};
    int unread = 0;
    if (poll(&p, 1, 0) != 1 || !(p.revents & (POLLRDHUP | POLLHUP)) || ioctl(c->fd, FIONREAD, &unread) || unread) {
        c->hup_seen = false;
        return;
    }
    if (c->hup_seen && c->hup_bytes == c->body_bytes) {
        c->cut = CG_CUT_BODY;
        shutdown(c->fd, SHUT_RDWR);
        log_req(LOG_INFO, c->request_id, "the client (%s) stopped sending before the end of its body", c->peer);
        return;
    }
    c->hup_seen = true;
    c->hup_bytes = c->body_bytes;
}

/* The ticker's chore, every REAP_INTERVAL_S. */
static void reap(void *arg)
{
    conn_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    int64_t now = clock_ns();
    for (cg_conn *c = g->head; c; c = c->next) {
        if (!c->cut && cg_deadline(&g->lim, c->phase, c->since_ns, c->body_bytes) <= now) cut(g, c, now);
        if (!c->cut && c->phase == CG_BODY) cut_if_half_closed(c);
    }
    pthread_mutex_unlock(&g->mu);
}

conn_guard *cg_start(const cg_limits *l, ticker *tk)
{
    conn_guard *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->lim = *l;
    g->tk = tk;
    pthread_mutex_init(&g->mu, NULL);
    if (!(g->reaper = ticker_add(tk, REAP_INTERVAL_S, false, reap, g))) {
        pthread_mutex_destroy(&g->mu);
        free(g);
        return NULL;
    }
    return g;
}

void cg_stop(conn_guard *g)
{
    if (!g) return;
    ticker_remove(g->tk, g->reaper);
    /* libmicrohttpd has closed every connection by now; anything left is a leak guard. */
    while (g->head) {
        cg_conn *c = g->head;
        g->head = c->next;
        free(c);
    }
    pthread_mutex_destroy(&g->mu);
    free(g);
}

cg_conn *cg_open(conn_guard *g, int fd, const char *peer)
{
    cg_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->g = g;
    c->fd = fd;
    snprintf(c->peer, sizeof c->peer, "%s", peer ? peer : "?");
    c->phase = CG_HEADERS;
    c->since_ns = clock_ns();
    pthread_mutex_lock(&g->mu);
    c->next = g->head;
    if (g->head) g->head->prev = c;
    g->head = c;
    pthread_mutex_unlock(&g->mu);
    return c;
}

void cg_close(cg_conn *c)
{
    if (!c) return;
    conn_guard *g = c->g;
    pthread_mutex_lock(&g->mu);
    if (c->prev) c->prev->next = c->next;
    else g->head = c->next;
    if (c->next) c->next->prev = c->prev;
    pthread_mutex_unlock(&g->mu);
    free(c);
}

static void set_phase(cg_conn *c, cg_phase ph, const char *request_id)
{
    if (!c) return;
    pthread_mutex_lock(&c->g->mu);
    if (c->phase != ph) {
        c->phase = ph;
        c->since_ns = clock_ns();
        c->body_bytes = 0;
        c->hup_seen = false;
    }
    if (request_id) snprintf(c->request_id, sizeof c->request_id, "%s", request_id);
    pthread_mutex_unlock(&c->g->mu);
}

void cg_headers_done(cg_conn *c, const char *request_id) { set_phase(c, CG_BODY, request_id ? request_id : ""); }
void cg_request_done(cg_conn *c) { set_phase(c, CG_RESPONSE, NULL); }
void cg_next_request(cg_conn *c) { set_phase(c, CG_HEADERS, ""); }

void cg_body_bytes(cg_conn *c, int64_t n)
{
    if (!c) return;
    pthread_mutex_lock(&c->g->mu);
    if (c->phase == CG_BODY) c->body_bytes += n;
    pthread_mutex_unlock(&c->g->mu);
}

cg_cut cg_was_cut(cg_conn *c)
{
    if (!c) return CG_CUT_NONE;
    pthread_mutex_lock(&c->g->mu);
    cg_cut r = c->cut;
    pthread_mutex_unlock(&c->g->mu);
    return r;
}
