/* The "yolo" result's detections for each task: boxes mapped back to the
 * image, and what the task adds (keypoints, mask polygon or RLE, oriented
 * box), or the classification list. Checks that every confidence is a
 * probability before it reaches a client. */
#ifndef SIGHT_DETECT_TASK_RESULT_H
#define SIGHT_DETECT_TASK_RESULT_H

#include <jansson.h>
#include <stdbool.h>

#include "detect/letterbox.h"
#include "detect/mask.h"
#include "detect/yolo_tasks.h"
#include "util/error.h"

typedef struct {
    const yolo_task_spec *spec;
    const float *data;   /* output0 */
    int64_t N;           /* its candidates (yolov8 layout) */
    const float *protos; /* segment: output1 [1, P, mh, mw] */
    letterbox_map map;
    int img_w, img_h;   /* the decoded image */
    int orig_w, orig_h; /* full size (larger when decoded at reduced scale) */
    int in_w, in_h;
    bool mask_rle;
    const char *const *names;
    int n_names;
    const char *model_name;
} task_ctx;

double task_round(double v, double q);

/* Sets o's "mask_area" and its "rle" (rle) or "polygon" from m, a mask in an
 * orig_w x orig_h image. 0, or -1 when out of memory. */
int task_mask_json(json_t *o, const yolo_mask *m, int orig_w, int orig_h, bool rle);

/* Appends one object per detection to arr; *extra_ms gets the time spent on
 * masks / keypoints / oriented boxes. -1 with err set (detector_failed for a
 * confidence outside [0, 1], out_of_memory). */
int task_detections_json(const task_ctx *c, yolo_det *dets, size_t n, json_t *arr, double *extra_ms, sight_error *err);

/* Classification: *out = [{"class_id","class","confidence"}], the top 5. */
int task_classify_json(const task_ctx *c, const bool *allowed, json_t **out, sight_error *err);

#endif
