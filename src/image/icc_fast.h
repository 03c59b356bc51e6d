/* Inside src/image: a matrix/TRC profile to sRGB in plain C, for icc.c.
 *
 * Why: LittleCMS' optimised 8-bit transform for a matrix/TRC profile (every
 * phone's Display P3) costs ~8.4 ns a pixel here (2.6 ms on a 640x480
 * letterbox, more than the resize itself); three table lookups, a 3x3 matrix
 * in float and a table back cost ~2.7 (0.83 ms), best of 9 each, same run. Built from the profile's own curves and colorants as
 * LittleCMS reads them, and checked against LittleCMS' transform on a grid
 * of colours before use: any difference over one level and icc.c keeps
 * LittleCMS. */
#ifndef SIGHT_IMAGE_ICC_FAST_H
#define SIGHT_IMAGE_ICC_FAST_H

#include <stddef.h>
#include <stdint.h>

#include <lcms2.h>

typedef struct icc_fast icc_fast;

/* The fast path for in -> sRGB (relative colorimetric), or NULL when in is
 * not a matrix/TRC profile or the result strays from ref (LittleCMS'
 * transform of the same, TYPE_RGB_8 both sides). Free with free(). */
icc_fast *icc_fast_build(cmsHPROFILE in, cmsHTRANSFORM ref);
void icc_fast_apply(const icc_fast *t, uint8_t *rgb, size_t n);
/* The portable loop alone; icc_fast_apply runs 8 pixels a step with AVX2
 * where the CPU has it (~3.8x faster, the same bytes: the unit test checks
 * every colour against this). */
void icc_fast_apply_plain(const icc_fast *t, uint8_t *rgb, size_t n);

#endif
