/* Fire-and-forget work on background threads, for work whose caller
 * must not wait for it (it may block: a network round trip) and need not
 * know how it went. Bounded: when full, the caller is told and does the
 * work itself, so memory stays bounded and nothing is dropped. */
#ifndef SIGHT_UTIL_BG_QUEUE_H
#define SIGHT_UTIL_BG_QUEUE_H

#include <stddef.h>

typedef struct bg_queue bg_queue;
typedef void (*bg_fn)(void *arg);

/* At most max tasks queued, run by threads threads (1 to 8; with one, in
 * the order queued). NULL: out of memory or threads. */
bg_queue *bgq_start(size_t max, int threads);
/* Queues fn(arg): 0, or -1 when full or stopped (nothing queued; the caller
 * still owns arg). */
int bgq_push(bg_queue *q, bg_fn fn, void *arg);
/* Runs every task queued, then joins the threads and frees q. */
void bgq_stop(bg_queue *q);

#endif
