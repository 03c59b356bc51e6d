/* Inside the front only: the engine's state, shared by engine.c (the
 * daemon's set-up and callbacks) and conn.c (front.h's per-connection
 * calls). */
#ifndef SIGHT_HTTP_FRONT_ENGINE_H
#define SIGHT_HTTP_FRONT_ENGINE_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdint.h>

#include "http/front/acceptor.h"
#include "http/front/conn_guard.h"
#include "http/front/conn_wait.h"
#include "http/front/front.h"

struct front {
    struct MHD_Daemon *daemon;
    acceptor *acc;                    /* the listening socket and its accept thread */
    conn_guard *guard;                /* header and body deadlines */
    conn_waiter *cw;                  /* resumes suspended connections; lingering closes */
    atomic_int open_conns;            /* connections the daemon holds (on_connection) */
    char *tls_cert_pem, *tls_key_pem; /* the engine copies neither: kept for its life */
    front_handler_fn handler;
    front_done_fn done;
    void *cls;
    unsigned port;
    int max_connections; /* for the acceptor (front_accept) */
};

/* The engine's request closure: what the head checks need, and the
 * application's own pointer. */
typedef struct {
    void *app;             /* the handler's *req */
    bool called;           /* the handler ran for this request */
    char target_error[80]; /* what is wrong with the raw request target ("" if nothing) */
    uintptr_t target_at;   /* where the engine had the raw target (0: unknown), and its length */
    size_t target_len;
    const char *method, *version; /* of the handler's first call, in the engine's head buffer */
    unsigned refused;             /* the front refused the head itself (engine.c, cl_refusal): with this */
    char refused_target[96];      /* and the raw target's path then, copied: the engine reuses its buffer */
} front_req;

/* The request whose handler call is running on this thread (engine.c sets it
 * around the call; front_check_head reads it). */
extern _Thread_local front_req *front_current;

/* The deadline tracking registered for c when it opened (on_connection). */
cg_conn *front_guard_of(struct MHD_Connection *c);

#endif
