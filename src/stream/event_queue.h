/* Per-request queue of events between the workers that produce them and
 * whoever answers the request: the HTTP connection's NDJSON stream, a batch
 * route's one answer, or a job item's stored rows.
 *
 * Producers push events as JSON objects with a small typed header; each
 * consumer turns them into what it sends, once: the stream writes each event
 * as one NDJSON line when it reaches the connection (eq_read), the batch and
 * job consumers take the objects themselves (eq_take). Wake-ups go through an
 * eventfd, which the HTTP front's watcher (http/front/conn_wait.c) polls together
 * with the client's socket while the connection is suspended: an idle stream
 * costs neither CPU nor a thread, and a client that goes away is noticed at
 * once. */
#ifndef SIGHT_STREAM_EVENT_QUEUE_H
#define SIGHT_STREAM_EVENT_QUEUE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct event_queue event_queue;

/* What an event is, so that no consumer reads it back from its "status". */
typedef enum {
    EV_PROCESSING, /* a file's work began */
    EV_LLM_DELTA,  /* a piece of a file's LLM answer (may be dropped, see eq_push_unless_behind) */
    EV_PROGRESS,   /* another stage's progress line (none today; may be dropped too) */
    EV_FRAME,      /* one analysed frame of a video */
    EV_DONE,       /* a file's result */
    EV_ERROR,      /* a file's error */
    EV_END,        /* the request's last event: see ev_end */
} ev_kind;

/* How a request ended (EV_END). */
typedef enum {
    END_COMPLETE,           /* {"status":"complete",...}: every file settled, its use recorded */
    END_LEDGER_UNAVAILABLE, /* {"status":"error",...}: the results went out, their use is not recorded */
} ev_end;

/* The file index of an event that is the request's own (EV_END). */
#define EV_NO_FILE SIZE_MAX

typedef struct {
    ev_kind kind;
    ev_end end;   /* EV_END only */
    size_t index; /* the file, or EV_NO_FILE */
    json_t *obj;  /* the event as it is written: "status" first */
} stream_event;

event_queue *eq_new(void);
void eq_free(event_queue *q);

/* Appends ev (takes ev.obj). After eq_close it is dropped. Returns 0, or -1
 * if the queue is closed. */
int eq_push(event_queue *q, stream_event ev);

/* The same for an event the client can do without (progress): it is dropped
 * (freed, returns 1) when more than max_queued bytes would be held unread,
 * so a client that stops reading cannot make the queue grow without end. */
int eq_push_unless_behind(event_queue *q, stream_event ev, size_t max_queued);

/* No more events will come; the consumer drains what is queued, then sees EOF. */
void eq_close(event_queue *q);

/* A queue has one consumer, which uses one of these two, never both. */

/* Tells q that its consumer is a stream (eq_read), before the first push:
 * while that reader is behind, events are written to their lines at push
 * (event_queue.c, EQ_WRITE_BEHIND). Never for an eq_take consumer. */
void eq_for_stream(event_queue *q);

/* The NDJSON stream: copies up to max bytes of the events' lines, writing
 * each event's line when the read reaches it. Returns the number copied
 * (> 0), 0 when nothing is queued yet, or -1 at end of stream (closed and
 * drained). Never blocks. */
ssize_t eq_read(event_queue *q, char *buf, size_t max);

/* The next event itself (*ev; the caller owns ev->obj): 1, 0 when nothing
 * is queued yet, or -1 at end of stream. Never blocks. */
int eq_take(event_queue *q, stream_event *ev);

/* Readable (POLLIN) whenever eq_read or eq_take may have something new; they clear it. */
int eq_fd(const event_queue *q);

/* Bytes: what the queued events hold in memory. An event not written yet
 * counts as json_held_estimate's figure for its objects, one being written
 * as the length of its line's unread part (see event_queue.c). */

/* Total bytes pushed so far (for tests and logs). */
size_t eq_bytes_pushed(event_queue *q);

/* Bytes pushed and not yet read: in q, and in every queue of the process. */
size_t eq_queued(event_queue *q);
size_t eq_queued_all(void);

/* Back-pressure for the producer. Whether more than limit bytes wait unread
 * in q; if so, q remembers it and calls its room callback (eq_on_room) once,
 * on the reader's thread, after the read that leaves resume_at bytes or
 * fewer. A reader that never reads never calls it: whoever parked work on it
 * must also release that work when the stream is abandoned. */
bool eq_over(event_queue *q, size_t limit, size_t resume_at);
/* The room callback (see eq_over); it runs without q's lock held. */
void eq_on_room(event_queue *q, void (*fn)(void *arg), void *arg);

/* For a producer that must not run ahead of its reader (a video's frames):
 * blocks the calling thread while more than limit bytes wait unread in q,
 * asleep until a read leaves limit bytes or fewer (no polling). Returns 0
 * when there is room, or -1 without waiting for it once q is closed or its
 * waits are stopped. */
int eq_wait_room(event_queue *q, size_t limit);
/* Ends every eq_wait_room on q, now and later: its reader may never read
 * again (the request was cancelled). */
void eq_stop_waits(event_queue *q);

#endif
