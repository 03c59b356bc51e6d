/* The prediction routes' answers, once the work is submitted: the NDJSON
 * stream (the connection suspended while no line is queued), or a batch's
 * events collected (PH_RESPOND) and answered once in the route's shape. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
#include "http/predict_answer.h"
#include "util/clock.h"
#include "util/json_out.h"
#include "util/log.h"

/* Bytes handed to the engine per read of the stream. */
#define STREAM_BLOCK (16 * 1024)

typedef struct {
    predict_request *req;
    front_wait *slot; /* suspends the connection while nothing is queued */
    server *srv;
    bool ended; /* shutdown ended the request: only its last lines are left to send */
} stream_ctx;

#define SHUTDOWN_MESSAGE "the server is shutting down: this file was not finished within --shutdown-timeout"

/* Never blocks: with nothing queued the connection is suspended (returning 0
 * bytes) and the watcher resumes it when a line is pushed, the client hangs
 * up or shutdown ends the streams; the engine then calls this again. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_ctx *s = cls;
    for (;;) {
        if (!s->ended && atomic_load(&s->srv->aborting)) {
            /* Shutdown ran out of patience. Rather than cut the stream, which a
             * client cannot tell from a network fault, end it properly: an
             * error line per unfinished file, then "complete" (both queued by
             * predict_request_end), sent by the next turns of this loop. */
            log_req(LOG_INFO, predict_request_id(s->req), "ending the stream for shutdown");
            predict_request_end(s->req, "shutting_down", SHUTDOWN_MESSAGE);
            s->ended = true;
        }
        /* Files have waited for this client to read (back-pressure) for
         * longer than --client-timeout: one that reads a trickle would hold
         * its work and what waits for it for ever. */
        double held = predict_request_held_since(s->req);
        if (held > 0 && clock_s() - held > s->srv->cfg.client_timeout_s) {
            log_req(LOG_INFO, predict_request_id(s->req), "client read too little for %d s; stream cut",
                    s->srv->cfg.client_timeout_s);
            predict_request_cancel(s->req);
            return FRONT_STREAM_ERROR;
        }
        ssize_t n = eq_read(predict_request_events(s->req), buf, max);
        if (n > 0) return n;
        if (n < 0) return FRONT_STREAM_END;
        if (front_wait_client_gone(s->slot)) {
            log_req(LOG_INFO, predict_request_id(s->req), "client went away, cancelling its work");
            predict_request_cancel(s->req);
            return FRONT_STREAM_ERROR;
        }
        if (front_wait_suspend(s->slot)) return 0;
        /* Not suspended: shutdown aborted the streams (end this one on the
         * next turn), or the daemon is being stopped. */
        if (!s->ended && atomic_load(&s->srv->aborting)) continue;
        return 0;
    }
}

static void stream_free(void *cls)
{
    stream_ctx *s = cls;
    front_wait_detach(s->slot);
    /* Normally every job is done by now; if not (client gone), skip the rest. */
    predict_request_cancel(s->req);
    predict_request_unref(s->req);
    free(s);
}


/* Answers 200 and streams pr's events as the pipeline produces them. */
front_result predict_start_stream(front_conn *c, http_req *hr, predict_request *pr)
{
    server *s = hr->srv;
    stream_ctx *sc = malloc(sizeof *sc);
    front_resp *resp = sc ? front_resp_stream(STREAM_BLOCK, stream_read, sc, stream_free) : NULL;
    if (!resp) {
        free(sc);
        predict_request_unref(pr);
        return reply_error(c, hr, 500, "out_of_memory", "out of memory");
    }
    *sc = (stream_ctx){pr, front_wait_attach(s->front, c, eq_fd(predict_request_events(pr))), s, false};
    if (!sc->slot) {
        front_resp_free(resp); /* frees sc and pr (stream_free) */
        return reply_error(c, hr, 500, "out_of_memory", "out of memory");
    }
    front_resp_header(resp, "Content-Type", "application/x-ndjson");
    /* Ask proxies (nginx) not to buffer the stream. */
    front_resp_header(resp, "X-Accel-Buffering", "no");
    front_resp_header(resp, "Cache-Control", "no-store");
    eq_for_stream(predict_request_events(pr));
    /* From here the response (sc) owns our reference; the pipeline takes one per file. */
    if (pipeline_submit(s->pipe, pr) != 0) {
        front_resp_free(resp);
        return reply_error(c, hr, 500, "out_of_memory", "out of memory");
    }
    log_req(LOG_INFO, hr->request_id, "streaming %zu file(s)", predict_request_nfiles(pr));
    return reply_queue(c, hr, 200, resp);
}

/* A batch's answer, folded from its events as they come (the objects the
 * pipeline made: nothing is read back from text). */
struct batch_result {
    json_t *files;    /* per file: its done or error event; null until then */
    json_t *frames;   /* per file: a video's frames, in order */
    json_t *complete; /* the "complete" event */
    bool unmetered;   /* it ended with ledger_unavailable: its use is not recorded */
};

static batch_result *batch_new(size_t nfiles)
{
    batch_result *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->files = json_array();
    b->frames = json_array();
    bool ok = b->files && b->frames;
    for (size_t i = 0; ok && i < nfiles; i++)
        ok = !json_array_append_new(b->files, json_null()) && !json_array_append_new(b->frames, json_array());
    if (!ok) {
        predict_batch_free(b);
        return NULL;
    }
    return b;
}

void predict_batch_free(batch_result *b)
{
    if (!b) return;
    json_decref(b->files);
    json_decref(b->frames);
    json_decref(b->complete);
    free(b);
}

/* One event of the batch (ev.obj taken). */
static void batch_add(batch_result *b, stream_event ev)
{
    json_t *frames = ev.index < json_array_size(b->frames) ? json_array_get(b->frames, ev.index) : NULL;
    switch (ev.kind) {
    case EV_END:
        if (ev.end == END_COMPLETE) {
            json_decref(b->complete);
            b->complete = json_incref(ev.obj);
        } else {
            b->unmetered = true;
        }
        break;
    case EV_FRAME:
        /* A video's frames go into its result, as "frames" (the stream's frame lines). */
        if (frames) {
            json_object_del(ev.obj, "index");
            json_object_del(ev.obj, "filename");
            json_object_del(ev.obj, "status");
            json_array_append(frames, ev.obj);
        }
        break;
    case EV_DONE:
    case EV_ERROR:
        if (!frames) break;
        if (json_array_size(frames))
            json_object_set(ev.kind == EV_DONE ? json_object_get(ev.obj, "result") : ev.obj, "frames", frames);
        json_array_set(b->files, ev.index, ev.obj);
        break;
    default: /* progress: the answer carries the whole result */
        break;
    }
    json_decref(ev.obj);
}

/* Collects every event of the batch (hr->batch_pr), the connection suspended
 * while none is queued; then answers once with all results in request order:
 * {"result": {"files": [...], "complete": {...}}, "code": 0}. */
step predict_batch_continue(front_conn *c, http_req *hr)
{
    server *s = hr->srv;
    predict_request *pr = hr->batch_pr;
    batch_result *b = hr->batch;
    for (;;) {
        if (!hr->batch_ended && atomic_load(&s->aborting)) {
            /* Shutdown: answer with what is done and shutting_down for the rest. */
            predict_request_end(pr, "shutting_down", SHUTDOWN_MESSAGE);
            hr->batch_ended = true;
        }
        /* The events of at most --max-files files, each bounded where it is
         * made (an LLM answer at 16 MiB): nothing to refuse here. */
        stream_event ev;
        int n = eq_take(predict_request_events(pr), &ev);
        if (n < 0) break;
        if (n > 0) {
            batch_add(b, ev);
            continue;
        }
        if (front_wait_client_gone(hr->batch_slot)) return STEP_CLOSE; /* cleanup cancels the work */
        if (front_wait_suspend(hr->batch_slot)) return STEP_AGAIN;
        if (!hr->batch_ended && atomic_load(&s->aborting)) continue;
        return STEP_AGAIN; /* the daemon is being stopped */
    }
    if (b->unmetered)
        return step_of(reply_error(c, hr, 503, "ledger_unavailable",
                                   "the usage ledger cannot be written; the request's use was not recorded in time"));
    return step_of(hr->route->batch_answer(c, hr, b->files, b->complete));
}

front_result predict_batch_answer(front_conn *c, http_req *hr, json_t *files, json_t *complete)
{
    size_t blen;
    char *body = json_line(json_pack("{s:{s:O,s:o},s:i}", "result", "files", files, "complete",
                                     complete ? json_incref(complete) : json_object(), "code", 0),
                           &blen);
    return body ? reply_body(c, hr, 200, "application/json", body, blen) : FRONT_CLOSE;
}

step predict_start_batch(front_conn *c, http_req *hr, predict_request *pr)
{
    server *s = hr->srv;
    hr->batch_slot = front_wait_attach(s->front, c, eq_fd(predict_request_events(pr)));
    hr->batch = batch_new(predict_request_nfiles(pr));
    if (!hr->batch_slot || !hr->batch || pipeline_submit(s->pipe, pr) != 0) {
        predict_request_unref(pr);
        return step_of(reply_error(c, hr, 500, "out_of_memory", "out of memory"));
    }
    hr->batch_pr = pr;
    log_req(LOG_INFO, hr->request_id, "batch of %zu file(s)", predict_request_nfiles(pr));
    hr->phase = PH_RESPOND;
    return STEP_NEXT;
}
