/* Fork-join for short, one-off parallel work outside the server's pools:
 * the detector's warm-up (one Run per gate slot at once), the CLI's file
 * fan-out and `bench-ort`'s callers. Threads are started, and joined before
 * it returns; nothing outlives the call. */
#ifndef SIGHT_UTIL_PARALLEL_H
#define SIGHT_UTIL_PARALLEL_H

/* Runs fn(arg, i) for every i in [0, n), each on its own thread, i = 0 on
 * the caller's; returns when every call has returned. An i whose thread
 * cannot be started runs on the caller afterwards, so every call is made. */
void parallel_run(int n, void (*fn)(void *arg, int i), void *arg);

#endif
