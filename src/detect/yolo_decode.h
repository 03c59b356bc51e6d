/* Turning a YOLO model's raw output tensor into boxes, for each output layout
 * in use, plus the non-maximum suppression the non-end-to-end layouts need.
 *
 * Pure functions on float arrays: no ONNX Runtime here, so each layout is
 * unit-tested with hand-made tensors. Boxes are in model-input pixels; the
 * caller maps them back to the image (see letterbox.h). */
#ifndef SIGHT_DETECT_YOLO_DECODE_H
#define SIGHT_DETECT_YOLO_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    YOLO_LAYOUT_V8 = 0, /* [1, 4+nc, N]: cx,cy,w,h + class scores (YOLOv8, YOLO11); NMS */
    YOLO_LAYOUT_E2E,    /* [1, K, 6]: x1,y1,x2,y2,score,class (YOLO26, YOLOv10); no NMS */
    YOLO_LAYOUT_V5,     /* [1, N, 5+nc]: cx,cy,w,h,objectness + class scores (YOLOv5); NMS */
    YOLO_LAYOUT_YOLOX,  /* [1, N, 5+nc]: raw grid outputs, strides 8/16/32 (YOLOX); NMS */
} yolo_layout;

const char *yolo_layout_name(yolo_layout l); /* "yolov8", "end2end", "yolov5", "yolox" */

typedef struct {
    float x1, y1, x2, y2;
    float score;
    int cls;
    int idx; /* the candidate's column in the output (yolov8 layout), for the
              * task decoders that read more of it: keypoints, mask coefficients, angle */
} yolo_det;

typedef struct {
    float conf;          /* keep candidates with score > conf (Ultralytics: strictly greater) */
    float iou;           /* suppress a box whose IoU with a kept box of the same class is > iou */
    int max_det;         /* at most this many results (<= 0: none) */
    const bool *allowed; /* n_allowed flags, NULL = every class */
    int n_allowed;       /* length of allowed; a class >= n_allowed is not allowed (E2E outputs
                            * carry no class count, so the caller sizes this from its names) */
    int nc;              /* yolov8 layout: class channels after the 4 box ones (0 = all the rest:
                          * the pose, segment and obb outputs carry more channels after them) */
    bool skip_nms;       /* leave NMS to the caller (rotated boxes): sorted candidates, capped at max_nms */
} yolo_decode_opts;

/* Picks the layout from the output shape and what the model metadata says.
 * hint: -1 = decide, else a yolo_layout the user forced (the shape must still fit it).
 * end2end: the metadata's end2end flag (or -1 when absent).
 * in_w/in_h: the model's input size (to tell YOLOX's N = sum of grid cells
 * from YOLOv5's N = 3 anchors x grid cells).
 * Returns 0 and sets *layout and *nc (0 for E2E: the shape does not say), or
 * -1 with a message naming the shape. */
int yolo_layout_detect(const int64_t *shape, size_t ndim, int in_w, int in_h, int end2end, int hint,
                       yolo_layout *layout, int *nc, char *err, size_t err_len);

/* Decodes one image's output (batch 1). *out receives a malloc'd array of
 * *n detections sorted by score, highest first (caller frees); n may be 0, and
 * *out is then NULL. Returns 0, or -1 on allocation failure or a shape that
 * does not fit the layout (yolo_layout_detect rules that out beforehand). */
int yolo_decode(yolo_layout layout, const float *data, const int64_t *shape, size_t ndim, int in_w, int in_h,
                const yolo_decode_opts *opts, yolo_det **out, size_t *n);

/* Class-aware greedy NMS over dets (sorted by score desc) in place; returns the
 * number kept (at most max_det), in score order. Exposed for tests. */
size_t yolo_nms(yolo_det *dets, size_t n, float iou, int max_det);

#endif
