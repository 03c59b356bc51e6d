/* Request pipeline: a prediction request becomes one job per file; a fixed pool
 * of workers takes jobs in arrival order, runs the stages and turns each
 * outcome into NDJSON lines on the request's event queue. A file that asks for
 * the llm stage is handed, after decode and the CPU stages, to a second pool
 * sized like --llm-concurrency: a provider call mostly waits, and must not
 * hold a CPU worker (a silent provider would stall every other file). Once
 * that pool has a decoded file waiting for each of its threads, further files
 * go over undecoded and are decoded there, so that files waiting on a slow
 * provider do not each hold an image.
 *
 * Lifetime: a request is reference counted. The HTTP side holds one reference
 * while it streams, and each queued job holds one. Cancelling (client gone,
 * shutdown) makes queued jobs finish at once without running stages. */
#ifndef SIGHT_PIPELINE_H
#define SIGHT_PIPELINE_H

#include <stddef.h>

#include "fetch/fetcher.h"
#include "pipeline/stages.h"
#include "stream/event_queue.h"

/* Who frees what, one rule per buffer:
 * - query, params: the request, with its last reference.
 * - files (the array), each filename and url: the request, with its last reference.
 * - each file's data (uploaded or fetched bytes): the request; the worker that
 *   decodes or skips the file frees it at once, else the last reference does. */
typedef struct predict_request predict_request;

/* A request with one reference (the caller's) and an empty event queue. It
 * takes query, params (either may be NULL), files and all they hold, whether
 * it succeeds or not (NULL: out of memory). */
predict_request *predict_request_new(const char *request_id, char *query, json_t *params, file_job *files,
                                     size_t nfiles);
void predict_request_ref(predict_request *r);
void predict_request_unref(predict_request *r);
const char *predict_request_id(const predict_request *r);
size_t predict_request_nfiles(const predict_request *r);
/* The events of the request's answer, as objects (see pipeline_submit). */
event_queue *predict_request_events(predict_request *r);
void predict_request_cancel(predict_request *r);
/* Ends a submitted request's stream now (shutdown): cancels its work, sends an
 * error line with code/message for every file not finished yet, then
 * "complete", and closes the queue. Outcomes that come later are dropped. */
void predict_request_end(predict_request *r, const char *code, const char *message);

/* Called once, just before the "complete" line is queued, with what the
 * request used; it may block (a durable commit), and the complete line
 * waits for it. It returns 0, or -1 when the use could not be recorded: the
 * last line is then {"status": "error", "error": {"code":
 * "ledger_unavailable", ...}} instead of "complete". free_ctx (may be NULL)
 * runs with the request's last reference. */
typedef int (*request_meter_fn)(void *ctx, const request_usage *u);
void predict_request_set_meter(predict_request *r, request_meter_fn fn, void *ctx, void (*free_ctx)(void *));

/* Called once, when the request's work is over: every file settled and the
 * last line queued (whether or not the client has read it), or never when
 * the request ends otherwise; free_ctx (may be NULL) runs with the request's
 * last reference in every case. For what the request holds only while it
 * works (a place in --max-inflight). */
typedef void (*request_done_fn)(void *ctx);
void predict_request_set_on_done(predict_request *r, request_done_fn fn, void *ctx, void (*free_ctx)(void *));
/* Since when (monotonic seconds) files of the request wait for its client to
 * read what was already sent (back-pressure); 0 when none waits. */
double predict_request_held_since(predict_request *r);

typedef struct pipeline pipeline;

/* workers: threads for decode and the CPU stages; llm_workers: threads for
 * the llm stage, which waits on its provider (0 = it runs on the CPU workers).
 * fetch (may be NULL) downloads files given by URL before they are queued. */
pipeline *pipeline_start(int workers, int llm_workers, const stage_set *stages, fetcher *fetch);
/* Queues every file of r (files with a URL once their download is done).
 * After this the event queue receives, per file, "processing" then "done" or
 * "error", and finally "complete" and EOF. */
int pipeline_submit(pipeline *p, predict_request *r);
/* The stages this pipeline runs (for validating options before a stream starts). */
const stage_set *pipeline_stages(const pipeline *p);
/* Stops the workers; jobs still queued are dropped as cancelled. */
void pipeline_stop(pipeline *p);

#endif
