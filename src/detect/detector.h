/* Object detection with a YOLO model on ONNX Runtime.
 *
 * One session per model, created at start-up with a warm-up run (so the first
 * request is not slow) and shared by all requests: OrtSession::Run is
 * thread-safe. A counting gate bounds how many Runs go at once; together with
 * the intra-op thread count that decides how the cores are shared. */
#ifndef SIGHT_DETECT_DETECTOR_H
#define SIGHT_DETECT_DETECTOR_H

#include <jansson.h>
#include <stdbool.h>

#include "detect/yolo_decode.h"
#include "image/decode.h"
#include "pipeline/stages.h"

typedef struct detector detector;

typedef struct {
    const char *model_path; /* the ONNX file, or NULL when model_data is given */
    const void *model_data; /* the ONNX file in memory (the built-in model) */
    size_t model_size;
    const char *model_name;  /* shown in results; NULL = model_path's base name */
    const char *labels_path; /* one class name per line; used when the model has no names; may be NULL */
    const char *labels_text; /* the same from memory, when labels_path is NULL; may be NULL */
    int intra_threads;       /* ORT intra-op threads per Run; 0 = cores / concurrency */
    int concurrency;         /* Runs at once; 0 = one per core */
    int layout_hint;         /* -1 = from the output shape, else a yolo_layout */
} detector_config;

/* Per-request options: confidence, iou, max_detections, classes, mask_format. */
typedef struct {
    float confidence, iou;
    int max_detections;
    bool *allowed; /* n_names flags, NULL = all classes */
    bool mask_rle; /* segment: mask_format=rle (COCO RLE) instead of the polygon */
} detect_params;

/* Loads the model, reads its metadata, picks the output decoder and does the
 * warm-up run. NULL with err filled when anything is wrong (the message names
 * the file, the shape or the metadata at fault). */
detector *detector_open(const detector_config *cfg, char *err, size_t err_len);
void detector_close(detector *d);

/* The pipeline stage ("yolo") backed by this detector. */
const stage *detector_stage(detector *d);

/* Reads options from a JSON object whose values may be numbers or strings
 * (form fields arrive as strings). Unknown keys are ignored here (the caller
 * owns the set of keys). Returns 0, or -1 with err (code "invalid_option"). */
int detector_parse_params(const detector *d, const json_t *params, detect_params *out, sight_error *err);
void detect_params_free(detect_params *p);

/* Detects objects in img and returns the "yolo" result object. */
int detector_detect(detector *d, const image_t *img, const detect_params *p, json_t **out, sight_error *err);

/* The model's classes: how many (from its output, else from its names), how
 * many names it has, and the name of one (NULL past them). */
int detector_class_count(const detector *d);
int detector_name_count(const detector *d);
const char *detector_class_name(const detector *d, int id);

/* Describes the loaded model for logs and `sightd detect`. */
const char *detector_model_name(const detector *d);
const char *detector_layout_name(const detector *d); /* "yolov8", "end2end", "yolov5", "yolox" */
const char *detector_task_name(const detector *d);   /* "detect", "segment", "pose", "obb", "classify" */
void detector_input_size(const detector *d, int *w, int *h);
void detector_describe(const detector *d, char *buf, size_t len);

/* Debugging and reference tests: from now on, each detection also writes the
 * model's raw outputs and the letterbox geometry into dir (see raw_dump.h). */
int detector_set_raw_dump(detector *d, const char *dir);

/* One Run of the model on input (detector_input_floats() floats, the model's
 * NCHW input), for timing: *ms gets the Run alone, without the wait for a
 * slot. Thread-safe; the input is only read. */
size_t detector_input_floats(const detector *d);
int detector_time_run(detector *d, float *input, double *ms);

#endif
