/* The server's one timer thread, on the monotonic clock, running its
 * periodic chores. A chore that must not block (the connection reaper) runs
 * on the ticker thread itself, so it must be quick: it delays every other
 * chore. One that may block (a store probe, the key-version poll, a Redis
 * PING, webhook sends) is handed to the work queue (util/work_queue.h), and
 * is never queued again while a run is pending or running: a slow store
 * gets one probe at a time, not a pile of them. */
#ifndef SIGHT_UTIL_TICKER_H
#define SIGHT_UTIL_TICKER_H

#include <stdbool.h>

#include "util/work_queue.h"

typedef struct ticker ticker;
typedef struct tk_chore tk_chore;

/* wq: where chores that may block run; NULL runs them on the ticker too (a
 * caller with no queue). NULL: out of memory or threads. */
ticker *ticker_start(work_queue *wq);
/* Runs fn(arg) every interval_s (the first time one interval from now);
 * may_block as above. A run that is due while the last one is still pending
 * is skipped; one the work queue refuses (full, stopped) too. NULL: out of
 * memory. */
tk_chore *ticker_add(ticker *t, double interval_s, bool may_block, void (*fn)(void *arg), void *arg);
/* On return fn is not running and never runs again; c is freed. Waits for
 * a run in progress, so not from fn itself nor from another work-queue job
 * (it could wait for a run queued behind it). Accepts NULL c. */
void ticker_remove(ticker *t, tk_chore *c);
/* Joins the thread and frees t; every chore should have been removed (any
 * left is waited for and dropped). Accepts NULL. */
void ticker_stop(ticker *t);

#endif
