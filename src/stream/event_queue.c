#include "stream/event_queue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct line {
    struct line *next;
    size_t len;
    char *text;
} line;

struct event_queue {
    pthread_mutex_t mu;
    line *head, *tail;
    size_t head_off; /* bytes of head already handed out */
    size_t pushed;
    size_t queued; /* bytes pushed and not yet read */
    bool closed;
    int efd;
    /* Back-pressure (eq_over): call on_room once queued <= room_at. */
    bool room_wanted;
    size_t room_at;
    void (*on_room)(void *);
    void *on_room_arg;
    /* Producers blocked in eq_wait_room: a read that frees bytes wakes them. */
    pthread_cond_t room_cv;
    int room_waiters;
    bool waits_stopped; /* eq_stop_waits: no wait blocks any more */
};

/* Unread bytes over every queue: one server-wide budget (pipeline/backlog.c). */
static atomic_size_t all_queued;

event_queue *eq_new(void)
{
    event_queue *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) {
        free(q);
        return NULL;
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->room_cv, NULL);
    return q;
}

void eq_free(event_queue *q)
{
    if (!q) return;
    atomic_fetch_sub(&all_queued, q->queued);
    for (line *l = q->head, *n; l; l = n) {
        n = l->next;
        free(l->text);
        free(l);
    }
    close(q->efd);
    pthread_cond_destroy(&q->room_cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static void wake(event_queue *q)
{
    uint64_t one = 1;
    /* EAGAIN only when the counter is near overflow, i.e. already readable. */
    ssize_t r = write(q->efd, &one, sizeof one);
    (void)r;
}

static int push(event_queue *q, char *text, size_t len, size_t max_queued)
{
    line *l = malloc(sizeof *l);
    pthread_mutex_lock(&q->mu);
    int rc = q->closed || !l ? -1 : q->queued + len > max_queued ? 1
                                                                 : 0;
    if (rc != 0) {
        pthread_mutex_unlock(&q->mu);
        free(l);
        free(text);
        return rc;
    }
    *l = (line){NULL, len, text};
    if (q->tail) q->tail->next = l;
    else q->head = l;
    q->tail = l;
    q->pushed += len;
    q->queued += len;
    atomic_fetch_add(&all_queued, len);
    pthread_mutex_unlock(&q->mu);
    wake(q);
    return 0;
}

int eq_push(event_queue *q, char *text, size_t len) { return push(q, text, len, SIZE_MAX); }

int eq_push_unless_behind(event_queue *q, char *text, size_t len, size_t max_queued)
{
    return push(q, text, len, max_queued);
}

void eq_close(event_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->room_cv);
    pthread_mutex_unlock(&q->mu);
    wake(q);
}

ssize_t eq_read(event_queue *q, char *buf, size_t max)
{
    /* Clear the wake-up first: a push after this point sets it again, so the
     * consumer never sleeps on a non-empty queue. */
    uint64_t v;
    ssize_t r = read(q->efd, &v, sizeof v);
    (void)r;
    size_t n = 0;
    pthread_mutex_lock(&q->mu);
    while (q->head && n < max) {
        line *l = q->head;
        size_t take = l->len - q->head_off;
        if (take > max - n) take = max - n;
        memcpy(buf + n, l->text + q->head_off, take);
        n += take;
        q->queued -= take;
        q->head_off += take;
        if (q->head_off == l->len) {
            q->head = l->next;
            if (!q->head) q->tail = NULL;
            q->head_off = 0;
            free(l->text);
            free(l);
        }
    }
    bool eof = !q->head && q->closed;
    atomic_fetch_sub(&all_queued, n);
    void (*room)(void *) = NULL;
    if (q->room_wanted && q->queued <= q->room_at) {
        q->room_wanted = false;
        room = q->on_room;
    }
    /* Each waiter checks its own limit again; only a read can make room. */
    if (n > 0 && q->room_waiters > 0) pthread_cond_broadcast(&q->room_cv);
    pthread_mutex_unlock(&q->mu);
    if (room) room(q->on_room_arg);
    if (n > 0) return (ssize_t)n;
    return eof ? -1 : 0;
}

int eq_fd(const event_queue *q) { return q->efd; }

size_t eq_bytes_pushed(event_queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->pushed;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t eq_queued(event_queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->queued;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t eq_queued_all(void) { return atomic_load(&all_queued); }

bool eq_over(event_queue *q, size_t limit, size_t resume_at)
{
    pthread_mutex_lock(&q->mu);
    bool over = q->queued > limit;
    if (over) {
        /* The lowest mark asked for wins: every waiter's condition then holds. */
        q->room_at = q->room_wanted && q->room_at < resume_at ? q->room_at : resume_at;
        q->room_wanted = true;
    }
    pthread_mutex_unlock(&q->mu);
    return over;
}

void eq_on_room(event_queue *q, void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&q->mu);
    q->on_room = fn;
    q->on_room_arg = arg;
    pthread_mutex_unlock(&q->mu);
}

int eq_wait_room(event_queue *q, size_t limit)
{
    pthread_mutex_lock(&q->mu);
    q->room_waiters++;
    while (q->queued > limit && !q->closed && !q->waits_stopped) pthread_cond_wait(&q->room_cv, &q->mu);
    q->room_waiters--;
    int rc = q->queued <= limit ? 0 : -1;
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void eq_stop_waits(event_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->waits_stopped = true;
    pthread_cond_broadcast(&q->room_cv);
    pthread_mutex_unlock(&q->mu);
}
