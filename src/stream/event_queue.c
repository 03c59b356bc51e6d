#include "stream/event_queue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/json_out.h"
#include "util/log.h"

/* Accounting. The budgets on a queue (back-pressure, dropped progress, the
 * server-wide total) bound the memory a client that does not read can make
 * the server hold, as when the queue held text: they count the bytes each
 * queued event holds. An event not written yet holds its objects, counted as
 * json_held_estimate (a walk of the object, without writing it); once
 * eq_read writes its line, the object is freed and the event holds its text,
 * counted as that line's length. Counting the line's length from the start
 * would mean writing it at push only to measure it (the second
 * serialisation this queue avoids), and would let small events hold several
 * times their budget: a 4-byte llm_delta's object takes ~800 bytes for a
 * 70-byte line. The other way round, objects held for a stream's reader
 * that has stopped reading would fill the budgets with a tenth of the
 * results text would: so behind such a reader, events are written at push
 * (EQ_WRITE_BEHIND). */
/* A stream's reader that falls behind by more than this many bytes gets its
 * next events written at push, by the producer, instead of at read: still
 * once each, but queued as text, which holds several times less memory than
 * the objects (a detection box's object ~800 bytes, its text ~100), so the
 * queue's budgets hold as many results as when it held text. */
#define EQ_WRITE_BEHIND (64 * 1024)

typedef struct item {
    struct item *next;
    stream_event ev; /* ev.obj NULL once written (text) */
    size_t cost;     /* bytes of q->queued that are this item's (unread ones, once written) */
    char *text;      /* its NDJSON line, once eq_read reached it */
    size_t len, off; /* the line's length; bytes of it already read */
} item;

struct event_queue {
    pthread_mutex_t mu;
    item *head, *tail;
    size_t pushed;
    size_t queued; /* the items' costs: bytes pushed and not yet read */
    bool closed;
    bool stream; /* eq_for_stream: its consumer is eq_read */
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
    for (item *it = q->head, *n; it; it = n) {
        n = it->next;
        json_decref(it->ev.obj);
        free(it->text);
        free(it);
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

void eq_for_stream(event_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->stream = true;
    pthread_mutex_unlock(&q->mu);
}

/* Whether an event whose objects hold cost bytes is to be written now: q's
 * stream reader would be behind by more than EQ_WRITE_BEHIND with it. So at
 * most that much of a stream's queue is ever objects. */
static bool write_now(event_queue *q, size_t cost)
{
    pthread_mutex_lock(&q->mu);
    bool behind = q->stream && q->queued + cost > EQ_WRITE_BEHIND;
    pthread_mutex_unlock(&q->mu);
    return behind;
}

static int push(event_queue *q, stream_event ev, size_t max_queued)
{
    item *it = malloc(sizeof *it);
    if (!it || !ev.obj) {
        free(it);
        json_decref(ev.obj);
        return -1;
    }
    /* Outside the lock: walking the object, and writing its line. */
    *it = (item){.ev = ev, .cost = json_held_estimate(ev.obj)};
    if (write_now(q, it->cost)) {
        it->text = json_line(ev.obj, &it->len); /* the one serialisation; takes the object */
        it->ev.obj = NULL;
        it->cost = it->len;
    }
    size_t cost = it->cost;
    pthread_mutex_lock(&q->mu);
    int rc = q->closed || (!it->ev.obj && !it->text) ? -1 : q->queued + cost > max_queued ? 1
                                                                                          : 0;
    if (rc != 0) {
        pthread_mutex_unlock(&q->mu);
        json_decref(it->ev.obj);
        free(it->text);
        free(it);
        return rc;
    }
    if (q->tail) q->tail->next = it;
    else q->head = it;
    q->tail = it;
    q->pushed += cost;
    q->queued += cost;
    atomic_fetch_add(&all_queued, cost);
    pthread_mutex_unlock(&q->mu);
    wake(q);
    return 0;
}

int eq_push(event_queue *q, stream_event ev) { return push(q, ev, SIZE_MAX); }

int eq_push_unless_behind(event_queue *q, stream_event ev, size_t max_queued) { return push(q, ev, max_queued); }

void eq_close(event_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->room_cv);
    pthread_mutex_unlock(&q->mu);
    wake(q);
}

/* The consumer's wake-up is cleared before it looks: a push after this point
 * sets it again, so the consumer never sleeps on a non-empty queue. */
static void clear_wake(event_queue *q)
{
    uint64_t v;
    ssize_t r = read(q->efd, &v, sizeof v);
    (void)r;
}

static void pop_head(event_queue *q)
{
    item *it = q->head;
    q->head = it->next;
    if (!q->head) q->tail = NULL;
    free(it->text);
    free(it);
}

/* freed bytes were consumed (q->mu held, released here): the room callback
 * and the producers waiting for room learn of it. */
static void consumed(event_queue *q, size_t freed)
{
    atomic_fetch_sub(&all_queued, freed);
    void (*room)(void *) = NULL;
    if (q->room_wanted && q->queued <= q->room_at) {
        q->room_wanted = false;
        room = q->on_room;
    }
    /* Each waiter checks its own limit again; only a read can make room. */
    if (freed > 0 && q->room_waiters > 0) pthread_cond_broadcast(&q->room_cv);
    pthread_mutex_unlock(&q->mu);
    if (room) room(q->on_room_arg);
}

/* Writes the head item's line (q->mu held). The lock is let go meanwhile:
 * only this consumer takes items off, so the head stays, and producers only
 * touch its next. On failure (out of memory) the event is dropped. */
static void write_head(event_queue *q)
{
    item *it = q->head;
    json_t *obj = it->ev.obj;
    it->ev.obj = NULL;
    pthread_mutex_unlock(&q->mu);
    size_t len = 0;
    char *text = json_line(obj, &len); /* the one serialisation; takes obj */
    pthread_mutex_lock(&q->mu);
    if (!text) {
        log_error("could not write an event of the stream (out of memory)");
        len = 0;
    }
    /* Its objects are freed: it holds its text now. */
    q->queued = q->queued - it->cost + len;
    atomic_fetch_add(&all_queued, len);
    atomic_fetch_sub(&all_queued, it->cost);
    it->cost = len;
    it->text = text;
    it->len = len;
}

ssize_t eq_read(event_queue *q, char *buf, size_t max)
{
    clear_wake(q);
    size_t n = 0;
    pthread_mutex_lock(&q->mu);
    while (q->head && n < max) {
        item *it = q->head;
        if (it->ev.obj) write_head(q);
        size_t take = it->len - it->off;
        if (take > max - n) take = max - n;
        if (take) memcpy(buf + n, it->text + it->off, take);
        n += take;
        it->off += take;
        it->cost -= take;
        q->queued -= take;
        if (it->off == it->len) pop_head(q);
    }
    bool eof = !q->head && q->closed;
    consumed(q, n);
    if (n > 0) return (ssize_t)n;
    return eof ? -1 : 0;
}

int eq_take(event_queue *q, stream_event *ev)
{
    clear_wake(q);
    pthread_mutex_lock(&q->mu);
    item *it = q->head;
    /* Not mixed with eq_read (see event_queue.h), so the head is not written. */
    if (!it || !it->ev.obj) {
        bool eof = !it && q->closed;
        pthread_mutex_unlock(&q->mu);
        return eof ? -1 : 0;
    }
    *ev = it->ev;
    size_t freed = it->cost;
    q->queued -= freed;
    pop_head(q);
    consumed(q, freed);
    return 1;
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
