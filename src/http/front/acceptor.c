#include "http/front/acceptor.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

struct acceptor {
    int fd;      /* the listening socket; -1 once closed */
    int stop_fd; /* eventfd: readable once the thread must end */
    unsigned port;
    struct MHD_Daemon *daemon;
    const atomic_int *open;
    int max;
    pthread_t thread;
    bool running;
};

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char ports[8];
    snprintf(ports, sizeof ports, "%u", port);
    int rc = getaddrinfo(host, ports, &hints, &res);
    if (rc != 0 || !res) {
        log_error("cannot resolve listen address '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

acceptor *acc_open(const char *host, uint16_t port)
{
    struct sockaddr_storage addr;
    socklen_t len;
    if (resolve(host, port, &addr, &len) != 0) return NULL;
    const struct sockaddr *sa = (const struct sockaddr *)&addr;
    acceptor *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int one = 1;
    if (a->fd < 0 || a->stop_fd < 0) goto fail;
    /* A restart need not wait for the old connections' TIME_WAIT. */
    if (setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) goto fail;
    if (sa->sa_family == AF_INET6 && setsockopt(a->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) goto fail;
    if (bind(a->fd, sa, len) != 0 || listen(a->fd, SOMAXCONN) != 0) goto fail;
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    if (getsockname(a->fd, (struct sockaddr *)&got, &gl) != 0) goto fail;
    a->port = got.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&got)->sin_port);
    return a;
fail:;
    log_error("cannot listen on %s:%u: %s", host, port, strerror(errno));
    acc_free(a);
    return NULL;
}

unsigned acc_port(const acceptor *a) { return a->port; }

/* Waits up to ms for the stop signal; true once it came. */
static bool stop_wait(acceptor *a, int ms)
{
    struct pollfd p = {a->stop_fd, POLLIN, 0};
    return poll(&p, 1, ms) > 0;
}

static void *run(void *arg)
{
    acceptor *a = arg;
    for (;;) {
        if (atomic_load(a->open) >= a->max) {
            /* Full: leave them in the backlog and look again shortly. */
            if (stop_wait(a, 20)) break;
            continue;
        }
        struct pollfd p[2] = {{a->stop_fd, POLLIN, 0}, {a->fd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            log_error("accept loop: poll failed (errno %d)", errno);
            if (stop_wait(a, 100)) break;
            continue;
        }
        if (p[0].revents) break;
        if (!p[1].revents) continue;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int c = accept4(a->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: retrying at once would spin; the
                 * connection waits in the backlog meanwhile. */
                log_warn("cannot accept a connection (errno %d): retrying in 50 ms", errno);
                if (stop_wait(a, 50)) break;
            }
            continue; /* EAGAIN, ECONNABORTED, EINTR, ... */
        }
        /* On refusal (limits, out of memory) libmicrohttpd closes c itself. */
        (void)MHD_add_connection(a->daemon, c, (struct sockaddr *)&ss, sl);
    }
    return NULL;
}

int acc_start(acceptor *a, struct MHD_Daemon *d, const atomic_int *open, int max)
{
    a->daemon = d;
    a->open = open;
    a->max = max;
    if (pthread_create(&a->thread, NULL, run, a) != 0) return -1;
    a->running = true;
    return 0;
}

void acc_stop(acceptor *a)
{
    if (!a) return;
    if (a->running) {
        uint64_t one = 1;
        ssize_t w = write(a->stop_fd, &one, sizeof one);
        (void)w;
        pthread_join(a->thread, NULL);
        a->running = false;
    }
    /* Closed now, before the drain: a new connection is refused (RST) at
     * once, and those still in the backlog are reset. */
    if (a->fd >= 0) close(a->fd);
    a->fd = -1;
}

void acc_free(acceptor *a)
{
    if (!a) return;
    acc_stop(a);
    if (a->stop_fd >= 0) close(a->stop_fd);
    free(a);
}
