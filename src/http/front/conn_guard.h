/* Request deadlines, in the style of Apache's mod_reqtimeout.
 *
 * libmicrohttpd only knows an inactivity timeout, which a client defeats by
 * sending one byte now and then (slowloris): each connection then stays
 * open forever. Here every connection is registered when it opens, the HTTP
 * handler reports its progress (headers complete, body bytes, request
 * complete), and a reaper (a chore on the ticker's thread, every 250 ms)
 * cuts the connections that are late:
 *
 *   - headers: the request line and headers must be complete within
 *     header_timeout_s of the accept, or of the end of the previous request on
 *     a keep-alive connection;
 *   - body: it must have arrived by start + body_timeout_s +
 *     bytes_received / body_min_rate (a grace, then a minimum rate);
 *   - once the request is complete (its response is being produced or sent)
 *     nothing here applies.
 *
 * A cut connection gets a best-effort 408 (none under TLS: no raw bytes inside
 * the session) and is shut down (shutdown(2)); libmicrohttpd's epoll loop then
 * sees EOF and closes it. A body-phase client that half-closed with its body
 * incomplete is cut too (see cut_if_half_closed). */
#ifndef SIGHT_HTTP_CONN_GUARD_H
#define SIGHT_HTTP_CONN_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "util/ticker.h"

typedef enum { CG_HEADERS = 0,
               CG_BODY,
               CG_RESPONSE } cg_phase;
typedef enum { CG_CUT_NONE = 0,
               CG_CUT_HEADER,
               CG_CUT_BODY } cg_cut;

typedef struct {
    int header_timeout_s;  /* 0: no header deadline */
    int body_timeout_s;    /* 0: no body deadline */
    int64_t body_min_rate; /* bytes/s that extend the body deadline; 0: the grace alone */
    bool tls;              /* no raw 408 inside a TLS session: just cut */
} cg_limits;

#define CG_NO_DEADLINE INT64_MAX

/* The deadline (nanoseconds, on the clock of since_ns) of a connection that
 * entered phase ph at since_ns and has received body_bytes of body since, or
 * CG_NO_DEADLINE. Pure; exposed for the unit test. */
int64_t cg_deadline(const cg_limits *l, cg_phase ph, int64_t since_ns, int64_t body_bytes);

typedef struct conn_guard conn_guard;
typedef struct cg_conn cg_conn;

/* Starts the reaper: a chore on tk's own thread (util/ticker.h; it only
 * calls send and shutdown, never blocking). NULL on failure. */
conn_guard *cg_start(const cg_limits *l, ticker *tk);
/* Stops the reaper and frees everything; every connection must be closed. */
void cg_stop(conn_guard *g);

/* A connection opened (fd stays valid until cg_close returns); peer is for
 * the log. NULL when out of memory: the connection then goes unguarded. */
cg_conn *cg_open(conn_guard *g, int fd, const char *peer);
/* The connection is about to be closed: after this the reaper never touches
 * its fd again. */
void cg_close(cg_conn *c);

/* The handler's progress reports. All accept NULL. */
/* The handler's first call for a request (its headers are complete). */
void cg_headers_done(cg_conn *c, const char *request_id);
void cg_body_bytes(cg_conn *c, int64_t n); /* n more body bytes arrived */
void cg_request_done(cg_conn *c);          /* body complete or response queued */
void cg_next_request(cg_conn *c);          /* a request ended; the connection may wait for another */
/* Why the reaper cut this connection, if it did. */
cg_cut cg_was_cut(cg_conn *c);

#endif
