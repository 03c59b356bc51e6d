/* Sliced inference (SAHI) options of one file: the "slice" metadata key,
 * `true` (automatic) or {"size", "overlap", "full", "merge"}. Only parsed
 * here; the detector resolves "automatic" against its model's input size. */
#ifndef SIGHT_PIPELINE_SLICE_OPTS_H
#define SIGHT_PIPELINE_SLICE_OPTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    SLICE_OFF = 0,
    SLICE_AUTO, /* `true`: tiles only when the image is over twice the model's input */
    SLICE_ON,   /* an object: always tiles */
} slice_mode;

typedef enum {
    SLICE_MERGE_NMM = 0, /* greedy non-maximum merging, then class-wise NMS */
    SLICE_MERGE_NMS,     /* class-wise NMS alone */
} slice_merge_kind;

typedef struct {
    slice_mode mode;
    int size;      /* tile side in image pixels; 0 = the model's input size */
    float overlap; /* share of a tile its neighbour covers too, [0, 0.9] */
    bool full;     /* also one pass over the whole image (large objects) */
    slice_merge_kind merge;
} slice_opts;

#define SLICE_MIN_SIZE 64
#define SLICE_MAX_SIZE 4096

/* Reads the key's value: a JSON boolean or null, an object, or (form fields)
 * the same as text ("true", "false", "1", "0", "{...}"). Returns 0, or -1
 * with msg saying what is wrong (unknown sub-key, bad value). */
int slice_opts_parse(const json_t *v, slice_opts *out, char *msg, size_t len);

/* The merge's name in results: "nmm" or "nms". */
const char *slice_merge_name(slice_merge_kind k);

#endif
