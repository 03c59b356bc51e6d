/* Classification preprocessing as Ultralytics' classify_transforms: the
 * image's centre, cut to the model input's aspect ratio, resized to the input
 * (no padding), RGB / 255. Upstream resizes the shorter side with PIL's
 * antialiased bilinear, then crops; here the crop comes first and the resize
 * is letterbox.c's (cv2's bilinear, no antialiasing): the same framing, pixel
 * values that differ slightly when shrinking a lot. */
#ifndef SIGHT_DETECT_CENTER_CROP_H
#define SIGHT_DETECT_CENTER_CROP_H

#include <stdint.h>

#include "detect/letterbox.h"

/* Fills dst (3 * dst_h * dst_w floats, NCHW) from the RGB image src
 * (stride src_w * 3), colour (NULL: none) applied to the resized pixels.
 * Returns 0, or -1 when out of memory (dst untouched). */
int center_crop_input(const uint8_t *src, int src_w, int src_h, float *dst, int dst_w, int dst_h,
                      const letterbox_colour *colour);

#endif
