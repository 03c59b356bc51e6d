/* Waiting without a thread: one watcher thread for every suspended connection.
 *
 * libmicrohttpd serves many connections per thread (epoll), so nothing on its
 * threads may sleep. A stream with no line queued, or a batch request whose
 * results are not all in, suspends its connection here instead
 * (MHD_suspend_connection) and the watcher resumes it when its event queue
 * becomes readable, when the client hangs up (a suspended connection is not
 * watched by libmicrohttpd), or when shutdown aborts the streams.
 *
 * It also closes connections refused with a raw answer (request_check.c):
 * the lingering read that drops what the client already sent, without
 * holding a thread for it. */
#ifndef SIGHT_HTTP_CONN_WAIT_H
#define SIGHT_HTTP_CONN_WAIT_H

#include <microhttpd.h>
#include <stdbool.h>

typedef struct conn_waiter conn_waiter;
typedef struct cw_slot cw_slot;

/* abort_fd: readable once shutdown ends every stream. NULL on failure. */
conn_waiter *cw_start(int abort_fd);
/* Resumes every suspended connection and refuses further waits; the caller
 * may then stop the daemon. */
void cw_release_all(conn_waiter *w);
/* Joins the thread and frees everything (after the daemon has stopped). */
void cw_stop(conn_waiter *w);

/* A connection that may wait: queue_fd is readable when there is something
 * to send, client_fd is the socket. NULL when out of memory. */
cw_slot *cw_attach(conn_waiter *w, struct MHD_Connection *c, int queue_fd, int client_fd);
/* Never while suspended (a suspended connection cannot end). Accepts NULL. */
void cw_detach(cw_slot *s);
/* Suspends the connection until something happens (see above); call from the
 * connection's handler or content reader, then return without an answer (or
 * 0 bytes). false: not suspended (shutting down); the caller goes on. */
bool cw_suspend(cw_slot *s);
/* The client hung up while the connection waited. */
bool cw_client_gone(cw_slot *s);

/* Takes fd (a dup of a refused connection's socket, already shut down for
 * writing) and reads and drops what arrives for up to linger_ms or 1 MiB,
 * then closes it. Closes it at once when that cannot be done. */
void cw_linger(conn_waiter *w, int fd, int linger_ms);

#endif
