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

typedef struct {
    char code[48];      /* machine-readable, e.g. "corrupt_image", "yolo_unavailable" */
    char message[512];  /* for people */
} stage_error;

/* One uploaded (or fetched) file and what the client asked for it. */
typedef struct {
    char *filename;
    size_t filename_len;
    uint8_t *data;
    size_t len;
    bool is_yolo, is_llm;
} file_job;

typedef struct {
    const char *query;        /* may be NULL */
    const json_t *params;     /* per-request options (confidence, classes, ...); may be NULL */
    const file_job *file;
    const image_t *image;
} stage_input;

typedef struct stage {
    const char *name;  /* key of its result object: "yolo", "llm" */
    void *self;
    /* Returns 0 and sets *out, or -1 and fills err. Called from many workers at once. */
    int (*run)(void *self, const stage_input *in, json_t **out, stage_error *err);
    /* Checks the request's options before the stream starts (NULL = takes none). */
    int (*validate)(void *self, const json_t *params, stage_error *err);
    /* Smallest decode this stage can work from (shrink-on-load hint, with
     * image_decode_opts.fit semantics), 0 = full size. */
    int min_width, min_height;
} stage;

typedef struct {
    const stage *yolo;   /* NULL until a detector is configured */
    const stage *llm;    /* NULL until an analyser is configured */
    int64_t max_pixels;
} stage_set;

/* Runs decode and the requested stages for one file. Returns the "result"
 * object of a done line, or NULL with err filled. Checks *cancelled between
 * stages and returns NULL with code "cancelled" when it is set. */
json_t *stages_run_file(const stage_set *set, const char *query, const json_t *params, const file_job *file,
                        const atomic_bool *cancelled, stage_error *err);

#endif
