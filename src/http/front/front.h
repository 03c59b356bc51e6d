/* The HTTP front: the one header through which the rest of src/http talks
 * HTTP. The engine (libmicrohttpd 0.9.75) and every workaround it needs live
 * behind it, in src/http/front/: accepting (acceptor.h), header and body
 * deadlines (conn_guard.h), suspend/resume and lingering close
 * (conn_wait.h), the strict head checks and raw refusals (request_check.h),
 * the daemon's set-up and callbacks (engine.c). Swapping the engine means
 * rewriting that folder only; nothing outside it includes the engine's
 * header (make analyze checks that).
 *
 * Per request the front calls the application's handler with the head,
 * then with each body chunk, then once with no body left (upload size 0),
 * and again after each resume, until a response is queued or it says close.
 * Every call happens on one of the front's threads, which must never sleep:
 * work that waits suspends the connection instead. */
#ifndef SIGHT_HTTP_FRONT_H
#define SIGHT_HTTP_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct front front;           /* the engine, its threads and listening socket */
typedef struct front_conn front_conn; /* one client connection (the engine's, cast inside front/) */
typedef struct front_resp front_resp; /* a response being built, until queued */
typedef struct front_wait front_wait; /* a connection that may wait for a queue (front_wait_attach) */

/* What a handler returns: go on, or end the connection now (the values are
 * the engine's own, so the glue passes them through unchanged). */
typedef enum { FRONT_CLOSE = 0,
               FRONT_OK = 1 } front_result;

/* The handler: url (decoded path) and method; upload points at a chunk of
 * the body and *upload_size its length, which the handler sets to what it
 * left unread (0 once taken); *req is the request's own pointer, NULL on
 * the first call. */
typedef front_result (*front_handler_fn)(void *cls, front_conn *c, const char *url, const char *method,
                                         const char *upload, size_t *upload_size, void **req);

/* How a request ended, for the completion callback. */
typedef struct {
    bool ok;              /* the response was sent whole */
    bool timed_out;       /* the client made no progress for client_timeout_s */
    int engine_code;      /* the engine's own termination code, for a debug log */
    bool deadline_cut;    /* the front's header or body deadline cut it (a 408) */
    unsigned engine_sent; /* req NULL: the status of a page the engine (or the front) sent itself (0: none) */
    const char *target;   /* req NULL: that request's path when known (for its route's metric), else NULL */
} front_end;

/* Called once per request that reached the front, answered or not. req is
 * the handler's pointer, NULL when the handler never ran (the head was cut
 * short, or refused by the engine itself: engine_sent says with what). */
typedef void (*front_done_fn)(void *cls, front_conn *c, void *req, const front_end *end);

typedef struct {
    const char *host;
    unsigned port;                               /* 0: any free one (front_port says which) */
    int threads;                                 /* epoll threads, each serving many connections */
    int max_connections, max_connections_per_ip; /* per ip 0: no limit */
    int client_timeout_s;                        /* no progress either way for this long: closed */
    int header_timeout_s, body_timeout_s;        /* conn_guard.h; 0: none */
    int64_t body_min_rate;
    const char *tls_cert, *tls_key; /* PEM file paths; "" for plain HTTP */
    int abort_fd;                   /* readable once shutdown ends every wait (front_wait_*) */
    front_handler_fn handler;
    front_done_fn done;
    void *cls; /* for handler and done */
} front_config;

/* Binds and starts the engine's threads; NULL with the reason logged. tk
 * runs the deadline reaper (util/ticker.h). No connection is taken before
 * front_accept, so the caller can store the pointer its handler reads. */
struct ticker;
front *front_start(const front_config *cfg, struct ticker *tk);
unsigned front_port(const front *f);
/* Starts taking connections. 0 ok; -1 (logged): call front_stop. */
int front_accept(front *f);
/* Stops accepting: new connections are refused from here on. */
void front_stop_accepting(front *f);
/* Resumes every suspended connection, stops the engine (closing every
 * connection: done is called for each request) and frees everything. Any
 * front_suspend must have been resumed, or be resumed by then. */
void front_stop(front *f);

/* ---- the request ---- */

/* A request header's value (the first of that name, case-insensitive), or
 * NULL; valid for the request's life. */
const char *front_header(front_conn *c, const char *name);
/* A query argument, decoded, or NULL. */
const char *front_query(front_conn *c, const char *name);
/* The client's socket, or -1 if unknown: to poll it for a hang-up. */
int front_client_fd(front_conn *c);

/* The head's checks (RFC 9112 framing and syntax, head size: see
 * request_check.h), on the handler's first call: 0, or the status (400,
 * 431, 501) with a message for the client in msg. */
unsigned front_check_head(front_conn *c, char *msg, size_t cap);

/* Progress reports for the header and body deadlines (conn_guard.h). */
void front_headers_done(front_conn *c, const char *request_id); /* first call; id for the log */
void front_body_bytes(front_conn *c, int64_t n);                /* n more body bytes arrived */
void front_request_done(front_conn *c);                         /* the body is in or an answer is going out: no deadline */

/* ---- waiting ---- */

/* Suspends c: the handler is not called again until front_resume (from any
 * thread). The handler then returns without an answer. */
void front_suspend(front_conn *c);
void front_resume(front_conn *c);

/* A connection that waits for queue_fd (readable when there is something to
 * send) without a thread: suspended by front_wait_suspend, resumed when the
 * queue is readable, the client hangs up, or shutdown aborts (abort_fd).
 * NULL when out of memory. */
front_wait *front_wait_attach(front *f, front_conn *c, int queue_fd);
/* false: not suspended (shutting down); the caller goes on. */
bool front_wait_suspend(front_wait *w);
/* The client hung up while the connection waited. */
bool front_wait_client_gone(front_wait *w);
/* Never while suspended. Accepts NULL. */
void front_wait_detach(front_wait *w);

/* ---- responses ---- */

/* Who frees a buffer response's body: the front (free(), once sent), or
 * nobody (it outlives the server: embedded files). */
typedef enum { FRONT_BODY_FREE,
               FRONT_BODY_STATIC } front_body;
/* NULL when out of memory (a FRONT_BODY_FREE body is then not freed). */
front_resp *front_resp_buffer(void *body, size_t len, front_body who);

/* A streamed response of unknown length (chunked): read is called for up
 * to max bytes at pos and returns how many it wrote, 0 (nothing now: it
 * suspended the connection), FRONT_STREAM_END or FRONT_STREAM_ERROR
 * (the connection is closed). free_cls runs once the stream is over (not
 * when this returns NULL: out of memory). */
#define FRONT_STREAM_END ((ssize_t)-1)
#define FRONT_STREAM_ERROR ((ssize_t)-2)
typedef ssize_t (*front_read_fn)(void *cls, uint64_t pos, char *buf, size_t max);
front_resp *front_resp_stream(size_t block, front_read_fn read, void *cls, void (*free_cls)(void *cls));

void front_resp_header(front_resp *r, const char *name, const char *value);
/* Frees a response that was never queued (a stream's free_cls runs). */
void front_resp_free(front_resp *r);
/* Queues r with status and frees the caller's hold on it. */
front_result front_respond(front_conn *c, unsigned status, front_resp *r);

/* Ends the connection with bytes written straight to the socket (a whole
 * HTTP response), bypassing the engine, then a lingering close that drops
 * what the client still sends for up to a second, so that it reads the
 * answer instead of a reset. For refusals before the body: answered
 * through the engine, the body would have to be read first. Not under TLS
 * (no raw bytes inside a session). Returns FRONT_CLOSE. */
front_result front_refuse_raw(front *f, front_conn *c, const char *bytes, size_t len);
/* The same with the head checks' JSON refusal (request_check.h's format). */
front_result front_refuse_head(front *f, front_conn *c, unsigned status, const char *request_id,
                               const char *message);

/* The reason phrase of status ("Too Many Requests"). */
const char *front_status_text(unsigned status);

#endif
