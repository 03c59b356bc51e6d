/* A parallel-for over n items shared by the thread that starts it and any
 * helpers: each takes the next item not yet taken until none are left, and
 * the starter then waits only for items already being run. A helper that
 * comes late finds nothing and leaves, so no one ever waits on a thread that
 * has not started work: safe on a pool whose every thread is a starter. */
#ifndef SIGHT_PIPELINE_FANOUT_H
#define SIGHT_PIPELINE_FANOUT_H

#include <stddef.h>

typedef struct fanout fanout;

/* One reference for the starter and one per helper (helpers). NULL: out of memory. */
fanout *fanout_new(size_t n, void (*fn)(void *arg, size_t i), void *arg, int helpers);
/* Runs items until none are left to take. */
void fanout_work(fanout *g);
/* Waits until every item has run (after fanout_work). */
void fanout_wait(fanout *g);
/* Drops a reference (a helper when done, one never started, the starter). */
void fanout_unref(fanout *g);

/* Without a pool: runs the n items on up to threads threads (the caller one
 * of them) and returns when all have run (the CLI). */
void fanout_run_threads(size_t n, void (*fn)(void *arg, size_t i), void *arg, int threads);

#endif
