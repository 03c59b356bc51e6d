/* Sliced detection (SAHI, Akyon et al. 2022) for small objects in large
 * images: the image, decoded once at full size, is cut into overlapping
 * tiles; each tile is one model run at full resolution (plus one run over the
 * whole image for large objects), the runs spread over the pipeline's
 * workers, and their detections merged across the seams (slice_merge.h) into
 * one "yolo" result in image coordinates. */
#ifndef SIGHT_DETECT_SLICE_DETECT_H
#define SIGHT_DETECT_SLICE_DETECT_H

#include <stdbool.h>

#include "detect/detector.h"

/* Whether in asks for slicing that applies to its image: an explicit slice
 * always, `true` only when the image is over twice the model's input on a
 * side, never for a classification model. */
bool slice_wanted(const detector *d, const stage_input *in);

/* The "yolo" result of the sliced image, with "slices" ([[x, y, w, h]...]),
 * "full_pass", "merge" and "runs" (model runs, as counted in usage). -1 with
 * err: too_many_tiles (over in->max_tiles), or a run's own error. */
int slice_detect(detector *d, const stage_input *in, const detect_params *p, json_t **out, sight_error *err);

#endif
