/* The server's one pool of worker threads, for work that may block (a key
 * store read, a Redis round trip, a webhook POST, a model reload) and must
 * not run on an HTTP thread or on the ticker (util/ticker.h). A job is a
 * function and its argument, with an optional completion callback that runs
 * right after it on the same thread: that is how a caller resumes a
 * suspended connection, or learns that a job it owns is over. The queue
 * knows nothing of what the jobs are for.
 *
 * Jobs start in the order queued; with more than one thread they may end in
 * any order. Bounded: a full queue refuses, and the caller does the work
 * itself or gives up, so memory stays bounded. */
#ifndef SIGHT_UTIL_WORK_QUEUE_H
#define SIGHT_UTIL_WORK_QUEUE_H

#include <stddef.h>

typedef struct work_queue work_queue;
typedef void (*wq_fn)(void *arg);

/* threads (1 to 16) workers; at most max jobs waiting. NULL: out of memory,
 * or not one thread could be started. */
work_queue *wq_start(int threads, size_t max);
/* Queues fn(arg), then done(arg) when done is not NULL. 0, or -1 when the
 * queue is full, stopped or out of memory: then nothing was queued and
 * nothing will be called (arg is still the caller's). */
int wq_push(work_queue *q, wq_fn fn, wq_fn done, void *arg);
/* Stops: later pushes get -1; every job already queued still runs, done
 * included (drained, not cancelled: a job may own a connection to resume
 * or a limit slot to give back); then the threads are joined. Not from a
 * job. Safe to call twice. */
void wq_stop(work_queue *q);
/* After wq_stop (which it calls if needed); accepts NULL. Separate, so that
 * a holder of the pointer (the ticker) may still push, and be refused,
 * between the two. */
void wq_free(work_queue *q);
int wq_threads(const work_queue *q);

#endif
