/* Back-pressure between a request's workers and its client (pipeline
 * internal). A file of a request whose client has not taken what was already
 * sent is not started: its job is parked on the request and handed back to
 * the pipeline once the client has read enough, or the request is
 * cancelled. The bounds (what may wait unsent before new files wait):
 *   - BACKLOG_MAX per request (4 MiB; the kernel's socket buffer holds up
 *     to another 4 MiB on Linux by default);
 *   - BACKLOG_ALL_MAX over every request of the process (32 MiB): past it,
 *     each request may keep only BACKLOG_FLOOR (256 KiB) waiting, so that
 *     many clients that never read cannot add up to hundreds of MB.
 * A file already started always finishes, so a request holds at most these
 * plus the lines of the files its workers have in hand. */
#ifndef SIGHT_PIPELINE_BACKLOG_H
#define SIGHT_PIPELINE_BACKLOG_H

#include <stdbool.h>

#include "pipeline/pipeline.h"

#define BACKLOG_MAX (4u << 20)
#define BACKLOG_RESUME (2u << 20)
#define BACKLOG_ALL_MAX (32u << 20)
#define BACKLOG_FLOOR (256u << 10)

/* Called by pipeline_submit: parked jobs go back through requeue(pipe, job). */
void backlog_init(predict_request *r, void (*requeue)(void *pipe, void *job), void *pipe);
/* Parks job (true) when r's client is behind; false: run it now (also when
 * r is cancelled: the caller then skips it as usual). */
bool backlog_park(predict_request *r, void *job);
/* Hands every parked job back (r cancelled: they are skipped there). */
void backlog_release(predict_request *r);

#endif
