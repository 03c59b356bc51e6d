/* The work done on one file: decode, then each requested analysis stage.
 *
 * A stage is a small vtable so detection (YOLO), OCR and LLM analysis plug in
 * without the pipeline knowing what they do. A stage that is not configured
 * is NULL in the stage_set; a file that asks for it fails with the stage's
 * "<name>_unavailable" code rather than getting an invented result. */
#ifndef SIGHT_PIPELINE_STAGES_H
#define SIGHT_PIPELINE_STAGES_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/decode.h"
#include "metrics/metrics.h"
#include "pipeline/slice_opts.h"
#include "util/error.h"
#include "video/video_meta.h"

/* One uploaded (or fetched) file and what the client asked for it. */
typedef struct {
    char *filename;
    size_t filename_len;
    uint8_t *data;
    size_t len;
    bool is_yolo, is_ocr, is_llm;
    char *url;        /* v2: where to fetch the bytes from (data is NULL until then) */
    bool llm_refused; /* the key's LLM-token quota is spent: is_llm ends in llm_quota_exceeded */
    char *model;      /* the detection model it names; NULL = the default */
    slice_opts slice; /* sliced detection (SAHI); mode SLICE_OFF = one pass */
    video_meta video; /* its video options (a video file; track on images too) */
    int64_t key_id;   /* the request's API key: track_stream state is per key */
} file_job;

/* Sends an extra line on the request's stream while a stage runs (e.g.
 * {"status": "llm_delta", "delta": "..."}); the pipeline adds index and
 * filename. Takes ownership of the object. */
typedef void (*stage_emit_fn)(void *emit_ctx, json_t *event);

/* Runs fn(arg, i) for every i < n on the pipeline's CPU workers, the calling
 * thread taking part, and returns once all have run (sliced detection's
 * tiles). It never waits on a worker that has not started one of them, so
 * it cannot deadlock a pool whose every worker is in such a call. */
typedef void (*stage_parallel_fn)(void *ctx, size_t n, void (*fn)(void *arg, size_t i), void *arg);

/* What one file's work is given: the request's query and options, the file,
 * and how to stream extra lines. */
typedef struct {
    const char *query;    /* may be NULL */
    const json_t *params; /* per-request options (confidence, classes, ...); may be NULL */
    const file_job *file;
    const atomic_bool *cancelled;
    stage_emit_fn emit; /* may be NULL */
    void *emit_ctx;
    stage_parallel_fn parallel; /* NULL: one after the other */
    void *parallel_ctx;
} stage_call;

/* What a stage is given. Not the file: its bytes are freed once decoded. */
typedef struct {
    const char *query;
    const json_t *params;
    const image_t *image;
    /* Results of the stages that ran before on this image ("yolo", "ocr"),
     * whether or not the client asked to see them: grounding for later stages. */
    const json_t *earlier;
    const char *model; /* the file's detection model; NULL = the default */
    const atomic_bool *cancelled;
    stage_emit_fn emit;
    void *emit_ctx;
    const slice_opts *slice; /* the file's; NULL or SLICE_OFF: one pass */
    int max_tiles;           /* tiles one sliced image may have (--max-tiles) */
    stage_parallel_fn parallel;
    void *parallel_ctx;
    /* Said about the image before the grounding, for the llm stage (a video's
     * contact sheet: which frame is where); NULL = nothing. */
    const char *context;
} stage_input;

typedef struct stage {
    const char *name; /* key of its result object: "yolo", "llm" */
    void *self;
    /* Returns 0 and sets *out, or -1 and fills err. Called from many workers at once. */
    int (*run)(void *self, const stage_input *in, json_t **out, sight_error *err);
    /* Checks the request's options before the stream starts (NULL = takes none). */
    int (*validate)(void *self, const json_t *params, sight_error *err);
    /* The same for a file that names a model (NULL = the stage has no models):
     * an unknown one is 422 unknown_model. */
    int (*validate_model)(void *self, const char *model, const json_t *params, sight_error *err);
    /* Smallest decode this stage can work from (shrink-on-load hint, with
     * image_decode_opts.fit semantics), 0 = full size. */
    int min_width, min_height;
    /* Shrink-on-load only for images whose longer side is at least this (0: any). */
    int shrink_from;
    /* Runs after detection and OCR of the same image even when the client did
     * not ask for them (their results arrive in stage_input.earlier). */
    bool wants_grounding;
} stage;

typedef struct {
    const stage *yolo; /* NULL when no detection model is configured */
    const stage *ocr;  /* NULL when no OCR models are configured */
    const stage *llm;  /* NULL when no analyser is configured */
    int64_t max_pixels;
    int max_tiles;           /* per sliced image; 0 = 64 */
    int max_video_seconds;   /* longer videos are refused; 0 = 600 */
    int max_frames;          /* analysed frames per video at most; 0 = 3000 */
    int64_t max_pixels_heif; /* 0 = only max_pixels */
} stage_set;

/* Runs decode and the requested stages for one file, in the order yolo, ocr,
 * llm. Returns the "result" object of a done line, or NULL with err filled.
 * Checks *cancelled between stages and returns NULL with code "cancelled". */
/* What a request used, for the usage ledger: counted as its files settle. */
typedef struct {
    int64_t files, succeeded, failed;
    double megapixels; /* of the decoded images, at their original size */
    int64_t bytes_in;  /* uploaded or fetched */
    int64_t yolo_runs, ocr_runs, llm_calls, llm_prompt_tokens, llm_completion_tokens;
} request_usage;

/* Adds what a done line's result shows was done: the image, the stages
 * that ran (a sliced detection counts one yolo run per model run: its tiles
 * and the full pass), the LLM tokens the provider reported. */
void stages_count_result(request_usage *u, const json_t *result);

json_t *stages_run_file(const stage_set *set, const stage_call *call, sight_error *err);

/* Runs stage st (NULL: not configured, the "<name>_unavailable" error) on
 * in->image and files its output under the stage's name in earlier, for the
 * stages after it. Sets *seconds to the time it took, also counted in the
 * stage metric. Returns 0, or -1 with err filled. The image and video paths
 * both run their stages through it. */
int stage_run_one(const stage *st, const char *name, metrics_stage metric, const stage_input *in, json_t *earlier,
                  double *seconds, sight_error *err);

/* The same in two steps, so that the pipeline can run the CPU-bound part
 * (decode, yolo, ocr) on its CPU workers and hand the LLM stage, which mostly
 * waits on a provider, to threads of its own: a slow or silent provider then
 * holds no CPU worker, and files that do not ask for it are not queued behind
 * it. stages_begin returns NULL with err filled on failure; stages_finish runs
 * what is left (the llm stage when stages_llm_left) and always frees w. */
typedef struct stage_work stage_work;
stage_work *stages_begin(const stage_set *set, const stage_call *call, sight_error *err);
bool stages_llm_left(const stage_work *w);
json_t *stages_finish(const stage_set *set, const stage_call *call, stage_work *w, sight_error *err);
void stages_work_free(stage_work *w);

#endif
