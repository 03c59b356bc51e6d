#ifndef SIGHT_UTIL_RGB_RESAMPLE_H
#define SIGHT_UTIL_RGB_RESAMPLE_H

#include <stdint.h>

/* src (w x h, RGB, 3 bytes a pixel) area-averaged to tw x th (upscaling picks
 * the nearest); returns malloc'd tw*th*3 bytes, or NULL out of memory. */
uint8_t *rgb_resample(const uint8_t *src, int w, int h, int tw, int th);

#endif
