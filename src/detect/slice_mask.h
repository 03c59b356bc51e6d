/* Segmentation under sliced detection: each tile's masks come back as COCO
 * RLE over the tile; a merged detection's mask is the union of its parts,
 * painted at their tiles' places in the image. */
#ifndef SIGHT_DETECT_SLICE_MASK_H
#define SIGHT_DETECT_SLICE_MASK_H

#include <jansson.h>
#include <stddef.h>

#include "detect/mask.h"

typedef struct {
    const json_t *rle; /* {"size": [h, w], "counts": [...]} over the part's tile */
    int tx, ty;        /* where that tile sits in the image */
} slice_mask_part;

/* The union of the parts as a mask of the image (window and bits, as
 * mask_build makes them; empty when no part has a pixel). Returns 0, or -1
 * on allocation failure or an RLE that does not fit its size. */
int slice_mask_union(const slice_mask_part *parts, size_t n, yolo_mask *m);

#endif
