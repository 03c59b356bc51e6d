/* Inside src/image: the pixel budget and the shrink-on-load choice, shared by
 * decode.c and direct.c's callers. */
#ifndef SIGHT_IMAGE_LIMITS_H
#define SIGHT_IMAGE_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "image/decode.h"

/* Validates header dimensions before anything proportional to them is
 * allocated: zero sides, the caller's pixel budget, and the limits of the
 * types the pixels travel in (int in image_t, size_t for w*h*3). fmt names
 * the format in msg. */
image_status image_check_dims(uint64_t w, uint64_t h, const image_decode_opts *opts, const char *fmt, char *msg,
                              size_t msg_len);
/* Does a w x h image (stored orientation; swap for orientations 5..8) cover
 * the hint? */
bool image_covers(const image_decode_opts *o, uint64_t w, uint64_t h, bool swap);
/* The JPEG DCT scale (1, 2, 4 or 8) for a w x h file: the largest reduction
 * whose output (libjpeg's sizes, rounded up) still covers the hint; 1 without
 * one. libvips 8.14 drops the partial last row and column instead: its
 * output (CMYK, ICC conversion) can be 1 px smaller. */
int image_jpeg_shrink(uint64_t w, uint64_t h, const image_decode_opts *opts, bool swap);

#endif
