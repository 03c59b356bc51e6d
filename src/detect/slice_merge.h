/* Sliced inference (SAHI): the tile grid over an image, and the merge of the
 * detections of overlapping tiles into one list. Pure functions on boxes, no
 * model and no JSON, so that each is unit-tested (tests/unit/test_slice.c)
 * and mirrored by a numpy reference (tests/integration/test_slice.py). */
#ifndef SIGHT_DETECT_SLICE_MERGE_H
#define SIGHT_DETECT_SLICE_MERGE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    int x, y, w, h;
} slice_rect;

/* The tiles (tile_w x tile_h, at most the image) covering a W x H image, row
 * by row, as SAHI's get_slice_bboxes: a step of size * (1 - overlap), the last
 * tile of a row or column moved back to end at the image's edge. Writes at
 * most max tiles to out (may be NULL when max is 0) and returns how many the
 * image needs (compare with max). */
size_t slice_grid(int W, int H, int tile_w, int tile_h, float overlap, slice_rect *out, size_t max);

typedef struct {
    double x1, y1, x2, y2;
    double score;
    int cls;
} slice_box;

/* Merges boxes from all tiles. nmm: GREEDYNMM (SAHI's greedy_nmm, class-wise):
 * in score order, a box not yet taken keeps every later box of its class
 * whose intersection over the smaller area (IOS) with it is > thr, and
 * becomes their union box (its own score and class); then class-wise NMS of
 * those boxes at IoU > thr. nms: class-wise NMS at IoU > thr alone. Ties in
 * score keep input order. At most max_det results (<= 0: no cap).
 *
 * out (n entries) receives the results, highest score first; group[i] (n
 * entries) is the result box i went into, or -1 when it was suppressed;
 * rep[r] (n entries) is result r's representative: its highest-scoring box,
 * whose class, score, keypoints or oriented box it keeps. Returns the number
 * of results, or -1 on allocation failure. */
long slice_merge(const slice_box *in, size_t n, bool nmm, double thr, int max_det, slice_box *out, int *group,
                 int *rep);

/* Intersection over union and over the smaller area (0 when empty). */
double slice_iou(const slice_box *a, const slice_box *b);
double slice_ios(const slice_box *a, const slice_box *b);

#endif
