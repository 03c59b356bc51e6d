/* Instance masks of a segmentation model: the mask of one detection computed
 * as Ultralytics' process_mask does (mask coefficients x prototypes, cropped
 * to the box at prototype resolution, bilinear upsampling of the logits,
 * threshold at sigmoid 0.5, i.e. logit 0), sampled straight at the full-size
 * image's pixel centres through the letterbox (upstream upsamples to the model
 * input, then resizes that binary mask to the image: one step less here); then its outer contour as a polygon, and COCO run-length encoding.
 * Pure functions, no ONNX Runtime, no JSON. */
#ifndef SIGHT_DETECT_MASK_H
#define SIGHT_DETECT_MASK_H

#include <stddef.h>
#include <stdint.h>

/* Where full-size image pixels fall in the model input. */
typedef struct {
    float gain;                            /* model pixels per decoded-image pixel */
    float pad_left, pad_top;               /* letterbox padding, model pixels */
    int in_w, in_h;                        /* model input */
    double img_per_orig_x, img_per_orig_y; /* decoded-image pixels per full-size pixel (1 unless shrunk on load) */
    int orig_w, orig_h;                    /* full-size image */
} mask_geom;

typedef struct {
    int x0, y0, w, h; /* window in full-size pixels: the box and one prototype cell around it, clipped */
    uint8_t *bits;    /* w*h row-major, 1 inside the mask; NULL when the window is empty */
    long area;        /* pixels inside */
} yolo_mask;

/* coeffs[p * stride] for p < P: the detection's mask coefficients; protos
 * [P, mh, mw]; box_in x1,y1,x2,y2 in model pixels (before the letterbox is
 * undone, as upstream crops). Returns 0, -1 on allocation failure. */
int mask_build(const float *coeffs, size_t stride, const float *protos, int P, int mh, int mw, const mask_geom *g,
               const float box_in[4], yolo_mask *m);
void mask_free(yolo_mask *m);

/* The outer contour of the mask's largest 8-connected part, as pixel
 * coordinates (x, y pairs) in the full-size image, simplified (Douglas-Peucker)
 * until it has at most max_pts points. *pts malloc'd (NULL and 0 for an empty
 * mask). Returns 0, -1 on allocation failure. */
int mask_outline(const yolo_mask *m, int max_pts, float **pts, int *npts);

/* COCO RLE of the full-size mask (orig_w x orig_h): column-major run lengths,
 * starting with a run of zeros (as pycocotools). *counts malloc'd. */
int mask_rle(const yolo_mask *m, int orig_w, int orig_h, uint32_t **counts, size_t *n);

#endif
