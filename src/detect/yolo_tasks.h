/* The Ultralytics tasks beyond plain boxes: which one a model is (from its
 * metadata and output shapes, refusing what does not add up), and the pure
 * decoders for the parts boxes do not carry: pose keypoints, oriented boxes
 * with their rotated NMS, classification scores. Masks are in mask.h. */
#ifndef SIGHT_DETECT_YOLO_TASKS_H
#define SIGHT_DETECT_YOLO_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "detect/yolo_decode.h"

typedef enum {
    YOLO_TASK_DETECT = 0,
    YOLO_TASK_SEGMENT,
    YOLO_TASK_POSE,
    YOLO_TASK_OBB,
    YOLO_TASK_CLASSIFY,
} yolo_task;

const char *yolo_task_name(yolo_task t); /* "detect", "segment", "pose", "obb", "classify" */

/* What the model's metadata says (absent: task NULL, kpt 0, n_names -1). */
typedef struct {
    const char *task; /* metadata `task`, or NULL */
    int kpt_k, kpt_d; /* metadata `kpt_shape` [K, D], or 0 */
    int n_names;      /* names (metadata or labels file), -1 when none */
    int in_w, in_h;
    int end2end;     /* metadata end2end: 1, 0, or -1 when absent */
    int layout_hint; /* -1 or a forced yolo_layout */
} yolo_model_info;

typedef struct {
    yolo_task task;
    yolo_layout layout; /* of output0 (not used for classify) */
    int nc;             /* class count the outputs imply (0 for end2end: its output does not say) */
    int kpt_k, kpt_d;   /* pose */
    int n_proto;        /* segment: mask coefficients = prototype channels */
    int proto_h, proto_w;
} yolo_task_spec;

/* Decides the task from the metadata and the output shapes (out_shapes[i]
 * with out_ndims[i] dimensions, n_out outputs) and checks that they add up,
 * names included. Returns 0, or -1 with err naming the shapes and what was
 * expected (the caller prefixes the model's name). */
int yolo_task_detect(const yolo_model_info *mi, const int64_t *const *out_shapes, const size_t *out_ndims, size_t n_out,
                     yolo_task_spec *spec, char *err, size_t err_len);

/* Pose: keypoint kp (0..K-1) of candidate idx in a [1, C, N] output, in model
 * pixels; *conf is -1 when D = 2 (no confidence in the model). */
void yolo_keypoint(const yolo_task_spec *s, const float *data, int64_t N, int idx, int kp, float *x, float *y,
                   float *conf);

/* COCO's keypoint names (K = 17) and the limbs the playground draws. */
extern const char *const yolo_coco_keypoints[17];

/* An oriented box, in model pixels: centre, sides, angle in radians,
 * regularised as upstream's regularize_rboxes: angle in [0, pi/2), the sides
 * swapped when the raw angle (mod pi) was past pi/2. */
typedef struct {
    float cx, cy, w, h, angle;
} yolo_obb;

/* The oriented box of candidate idx in an obb output [1, 4+nc+1, N]. */
yolo_obb yolo_obb_at(const float *data, int64_t N, int nc, int idx);

/* Probabilistic IoU of two oriented boxes (Ultralytics' probiou: 1 - the
 * Hellinger distance of the Gaussians the boxes stand for). */
float yolo_probiou(const yolo_obb *a, const yolo_obb *b);

/* Rotated NMS over dets (sorted by score, highest first) of an obb output: a
 * box is dropped when a higher-scoring box of its class overlaps it by probiou
 * >= iou (upstream's single-pass matrix form, which also counts boxes dropped
 * themselves). Keeps at most max_det, in place; returns how many. Each det's
 * x1..y2 become the axis-aligned bounds of its rotated box. -1 on allocation failure. */
long yolo_obb_nms(yolo_det *dets, size_t n, const float *data, int64_t N, int nc, float iou, int max_det);

/* The four corners of an oriented box (x0,y0, x1,y1, ...). */
void yolo_obb_corners(const yolo_obb *o, float pts[8]);

/* Classification: the top k (at most 5) class ids of scores[0..nc), highest
 * first, skipping classes allowed[] rules out (NULL = all); returns how many. */
int yolo_top_classes(const float *scores, int nc, const bool *allowed, int n_allowed, int k, int *ids);

#endif
