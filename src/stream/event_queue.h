/* Per-request queue of NDJSON lines between the workers that produce them and
 * the HTTP connection that sends them.
 *
 * Producers push whole lines; the single consumer reads bytes. Wake-ups go
 * through an eventfd, which the HTTP front's watcher (http/front/conn_wait.c) polls
 * together with the client's socket while the connection is suspended: an
 * idle stream costs neither CPU nor a thread, and a client that goes away is
 * noticed at once. */
#ifndef SIGHT_STREAM_EVENT_QUEUE_H
#define SIGHT_STREAM_EVENT_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct event_queue event_queue;

event_queue *eq_new(void);
void eq_free(event_queue *q);

/* Appends a line (takes ownership of the malloc'd text). After eq_close the
 * line is dropped. Returns 0, or -1 if the queue is closed. */
int eq_push(event_queue *q, char *line, size_t len);

/* The same for a line the client can do without (progress): it is dropped
 * (freed, returns 1) when more than max_queued bytes would be waiting unread,
 * so a client that stops reading cannot make the queue grow without end. */
int eq_push_unless_behind(event_queue *q, char *line, size_t len, size_t max_queued);

/* No more lines will come; the consumer drains what is queued, then sees EOF. */
void eq_close(event_queue *q);

/* Copies up to max bytes. Returns the number copied (> 0), 0 when nothing is
 * queued yet, or -1 at end of stream (closed and drained). Never blocks. */
ssize_t eq_read(event_queue *q, char *buf, size_t max);

/* Readable (POLLIN) whenever eq_read may have something new. eq_read clears it. */
int eq_fd(const event_queue *q);

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
