/* PaddleOCR's DBPostProcess: from the detector's text-probability map to
 * text boxes. Threshold the map, take each connected region (8-connected, as
 * OpenCV's contours), its minimum-area rectangle, keep it when the mean
 * probability inside is high enough, grow it ("unclip") and scale it back to
 * the image. */
#ifndef SIGHT_OCR_DB_POSTPROCESS_H
#define SIGHT_OCR_DB_POSTPROCESS_H

#include "ocr/geometry.h"

typedef struct {
    float thresh;       /* pixel is text above this (0.3) */
    float box_thresh;   /* region kept when its mean probability reaches this (0.6) */
    float unclip_ratio; /* growth, see ocr_unclip_rect (1.5) */
    int min_size;       /* shorter side in map pixels below which a region is noise (3) */
    int max_candidates; /* regions looked at, at most (1000) */
    int score_fast;     /* 1: score over the region's rectangle; 0 (default): over the region */
} ocr_db_params;

typedef struct {
    ocr_pt box[4]; /* tl, tr, br, bl in image pixels (whole numbers) */
    float score;   /* mean probability inside */
} ocr_det_box;

void ocr_db_defaults(ocr_db_params *p);

/* prob is map_w x map_h (row-major); boxes are scaled to an image of
 * img_w x img_h. Sets *out (malloc'd, free it) and *n; returns 0, or -1 when
 * memory runs out. */
int ocr_db_boxes(const float *prob, int map_w, int map_h, int img_w, int img_h, const ocr_db_params *p,
                 ocr_det_box **out, int *n);

#endif
