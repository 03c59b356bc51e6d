/* The front end's listening socket, owned here rather than by libmicrohttpd.
 *
 * libmicrohttpd 0.9.75 cannot stop accepting safely with a thread pool in
 * epoll mode: MHD_quiesce_daemon removes the listening socket from each
 * worker's epoll set while the worker may be removing it too (it does so
 * itself once it sees the quiesce flag, or at its connection limit), and a
 * lost race is a panic ("Failed to remove listen FD from epoll set", abort).
 * Closing or shutting down a socket libmicrohttpd still polls is no better
 * (a reused descriptor number, or a socket readable for ever and a worker
 * spinning on accept's EINVAL). So the daemon runs without a listening
 * socket (MHD_USE_NO_LISTEN_SOCKET): one thread accepts and hands each
 * connection to it (MHD_add_connection, safe from another thread with
 * MHD_USE_ITC), and at shutdown that thread stops and the socket is closed,
 * which refuses new connections at once. */
#ifndef SIGHT_HTTP_ACCEPTOR_H
#define SIGHT_HTTP_ACCEPTOR_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct acceptor acceptor;

/* Resolves host, binds and listens (SO_REUSEADDR; IPv6 only for an IPv6
 * address). NULL on failure (logged). */
acceptor *acc_open(const char *host, uint16_t port);
/* The bound port (the one chosen when asked for 0). */
unsigned acc_port(const acceptor *a);
/* Starts the thread that hands connections to d. While *open >= max (the
 * connections open, counted by the caller) it leaves new ones queued in the
 * kernel's backlog, as libmicrohttpd does at its limit. 0 ok, -1 error. */
int acc_start(acceptor *a, struct MHD_Daemon *d, const atomic_int *open, int max);
/* Stops accepting and closes the socket: new connections are refused from
 * here. Connections already handed over are the daemon's. */
void acc_stop(acceptor *a);
/* After acc_stop (or instead of it, when never started). Accepts NULL. */
void acc_free(acceptor *a);

#endif
