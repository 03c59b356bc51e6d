#include "http/front/conn_wait.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINGER_MAX_BYTES (1u << 20)

struct cw_slot {
    conn_waiter *w;
    struct MHD_Connection *c;
    int queue_fd, client_fd;
    bool suspended; /* in the epoll set and suspended in libmicrohttpd */
    bool gone;
    cw_slot *prev, *next;
};

typedef struct lingerer {
    int fd;
    int64_t until_ms;
    size_t dropped;
    struct lingerer *next;
} lingerer;

struct conn_waiter {
    pthread_mutex_t mu;
    pthread_t thread;
    int ep, stop_fd, abort_fd;
    bool aborted;  /* shutdown ended the streams: resume, never suspend again for long */
    bool released; /* no more suspensions */
    bool stop;
    cw_slot *head;
    lingerer *lingering;
};

/* Tags in epoll data for the two fds that are not slots'. */
static char TAG_STOP, TAG_ABORT;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* With w->mu held. */
static void resume(cw_slot *s)
{
    if (!s->suspended) return;
    epoll_ctl(s->w->ep, EPOLL_CTL_DEL, s->queue_fd, NULL);
    if (s->client_fd >= 0) epoll_ctl(s->w->ep, EPOLL_CTL_DEL, s->client_fd, NULL);
    s->suspended = false;
    MHD_resume_connection(s->c);
}

/* Lingering fds have their own epoll entries, tagged by the lingerer. With w->mu held. */
static void linger_end(conn_waiter *w, lingerer *l)
{
    epoll_ctl(w->ep, EPOLL_CTL_DEL, l->fd, NULL);
    close(l->fd);
    l->fd = -1;
}

static bool is_lingerer(conn_waiter *w, void *p)
{
    for (lingerer *l = w->lingering; l; l = l->next)
        if ((void *)l == p) return true;
    return false;
}

static void linger_read(conn_waiter *w, lingerer *l)
{
    char sink[4096];
    for (;;) {
        ssize_t r = recv(l->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (r <= 0 || (l->dropped += (size_t)r) > LINGER_MAX_BYTES) {
            linger_end(w, l);
            return;
        }
    }
}

/* Ends the lingerers past their time, frees the ended ones, and says how
 * long epoll may sleep. With w->mu held. */
static int linger_sweep(conn_waiter *w)
{
    int64_t now = now_ms(), next = -1;
    for (lingerer **pp = &w->lingering; *pp;) {
        lingerer *l = *pp;
        if (l->fd >= 0 && l->until_ms <= now) linger_end(w, l);
        if (l->fd < 0) {
            *pp = l->next;
            free(l);
            continue;
        }
        if (next < 0 || l->until_ms - now < next) next = l->until_ms - now;
        pp = &l->next;
    }
    return next < 0 ? -1 : (int)next + 1;
}

static void *watch(void *arg)
{
    conn_waiter *w = arg;
    struct epoll_event ev[64];
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        int timeout = linger_sweep(w);
        pthread_mutex_unlock(&w->mu);
        int n = epoll_wait(w->ep, ev, 64, timeout);
        pthread_mutex_lock(&w->mu);
        /* Slots are freed only by cw_detach, never while suspended, and only
         * this thread resumes them: each event's slot is still alive here. */
        for (int i = 0; i < n; i++) {
            void *p = ev[i].data.ptr;
            if (p == &TAG_STOP) {
                uint64_t v;
                ssize_t r = read(w->stop_fd, &v, sizeof v);
                (void)r;
                continue;
            }
            if (p == &TAG_ABORT) {
                w->aborted = true;
                epoll_ctl(w->ep, EPOLL_CTL_DEL, w->abort_fd, NULL);
                for (cw_slot *s = w->head; s; s = s->next) resume(s);
                continue;
            }
            if (is_lingerer(w, p)) {
                lingerer *l = p;
                if (l->fd >= 0) linger_read(w, l);
                continue;
            }
            cw_slot *s = p;
            if (!s->suspended) continue;
            /* The client fd is registered for hang-ups only. */
            if (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR) && !(ev[i].events & EPOLLIN)) s->gone = true;
            resume(s);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

conn_waiter *cw_start(int abort_fd)
{
    conn_waiter *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->abort_fd = abort_fd;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event es = {.events = EPOLLIN, .data.ptr = &TAG_STOP};
    struct epoll_event ea = {.events = EPOLLIN, .data.ptr = &TAG_ABORT};
    if (w->ep < 0 || w->stop_fd < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->stop_fd, &es) ||
        epoll_ctl(w->ep, EPOLL_CTL_ADD, abort_fd, &ea))
        goto fail;
    pthread_mutex_init(&w->mu, NULL);
    if (pthread_create(&w->thread, NULL, watch, w)) {
        pthread_mutex_destroy(&w->mu);
        goto fail;
    }
    return w;
fail:
    if (w->ep >= 0) close(w->ep);
    if (w->stop_fd >= 0) close(w->stop_fd);
    free(w);
    return NULL;
}

void cw_release_all(conn_waiter *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->released = true;
    for (cw_slot *s = w->head; s; s = s->next) resume(s);
    pthread_mutex_unlock(&w->mu);
}

void cw_stop(conn_waiter *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_mutex_unlock(&w->mu);
    uint64_t one = 1;
    ssize_t r = write(w->stop_fd, &one, sizeof one);
    (void)r;
    pthread_join(w->thread, NULL);
    for (lingerer *l = w->lingering, *n; l; l = n) {
        n = l->next;
        if (l->fd >= 0) close(l->fd);
        free(l);
    }
    while (w->head) {
        cw_slot *s = w->head;
        w->head = s->next;
        free(s);
    }
    close(w->ep);
    close(w->stop_fd);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

cw_slot *cw_attach(conn_waiter *w, struct MHD_Connection *c, int queue_fd, int client_fd)
{
    cw_slot *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    *s = (cw_slot){.w = w, .c = c, .queue_fd = queue_fd, .client_fd = client_fd};
    pthread_mutex_lock(&w->mu);
    s->next = w->head;
    if (w->head) w->head->prev = s;
    w->head = s;
    pthread_mutex_unlock(&w->mu);
    return s;
}

void cw_detach(cw_slot *s)
{
    if (!s) return;
    conn_waiter *w = s->w;
    pthread_mutex_lock(&w->mu);
    if (s->suspended) {
        /* Cannot happen (a suspended connection does not end); keep epoll clean anyway. */
        epoll_ctl(w->ep, EPOLL_CTL_DEL, s->queue_fd, NULL);
        if (s->client_fd >= 0) epoll_ctl(w->ep, EPOLL_CTL_DEL, s->client_fd, NULL);
    }
    if (s->prev) s->prev->next = s->next;
    else w->head = s->next;
    if (s->next) s->next->prev = s->prev;
    pthread_mutex_unlock(&w->mu);
    free(s);
}

bool cw_suspend(cw_slot *s)
{
    conn_waiter *w = s->w;
    pthread_mutex_lock(&w->mu);
    if (w->released || w->aborted || s->suspended) {
        pthread_mutex_unlock(&w->mu);
        return false;
    }
    /* Level-triggered: a line pushed since the caller last read the queue
     * (its eventfd readable) resumes the connection at once. */
    struct epoll_event eq = {.events = EPOLLIN, .data.ptr = s};
    struct epoll_event ec = {.events = EPOLLRDHUP, .data.ptr = s};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, s->queue_fd, &eq)) {
        pthread_mutex_unlock(&w->mu);
        return false;
    }
    if (s->client_fd >= 0 && epoll_ctl(w->ep, EPOLL_CTL_ADD, s->client_fd, &ec)) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, s->queue_fd, NULL);
        pthread_mutex_unlock(&w->mu);
        return false;
    }
    MHD_suspend_connection(s->c);
    s->suspended = true;
    pthread_mutex_unlock(&w->mu);
    return true;
}

bool cw_client_gone(cw_slot *s)
{
    pthread_mutex_lock(&s->w->mu);
    bool g = s->gone;
    pthread_mutex_unlock(&s->w->mu);
    return g;
}

void cw_linger(conn_waiter *w, int fd, int linger_ms)
{
    lingerer *l = malloc(sizeof *l);
    if (!l) {
        close(fd);
        return;
    }
    *l = (lingerer){fd, now_ms() + linger_ms, 0, NULL};
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = l};
    pthread_mutex_lock(&w->mu);
    if (w->stop || epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev)) {
        pthread_mutex_unlock(&w->mu);
        close(fd);
        free(l);
        return;
    }
    l->next = w->lingering;
    w->lingering = l;
    pthread_mutex_unlock(&w->mu);
    /* Wake the watcher so that its sleep accounts for this deadline. */
    uint64_t one = 1;
    ssize_t r = write(w->stop_fd, &one, sizeof one);
    (void)r;
}
