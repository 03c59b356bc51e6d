/* ICC -> sRGB for 8-bit RGB pixels through LittleCMS, one transform per
 * distinct profile.
 *
 * Why: a fleet of phones sends a handful of profiles (every iPhone photo is
 * Display P3), and building a transform costs far more than applying it to a
 * letterbox; libvips' icc_transform builds one per image and converts the
 * whole photo through float Lab. Transforms live in a small cache keyed by a
 * hash of the profile's bytes (compared in full on a hit); a decoded image
 * holds a counted reference, so eviction never frees one in use.
 *
 * Thread safety: every function may be called from any thread. Transforms
 * are built with cmsFLAGS_NOCACHE, so one is applied by several threads at
 * once without shared state. */
#ifndef SIGHT_IMAGE_ICC_H
#define SIGHT_IMAGE_ICC_H

#include <stddef.h>
#include <stdint.h>

typedef struct image_icc image_icc;

/* A counted reference to the transform from this RGB profile to sRGB
 * (relative colorimetric, as libvips' default), built on first use. NULL
 * when there is nothing to do or nothing that can be done: an sRGB profile,
 * a profile that is not RGB, or one LittleCMS cannot read (ignored, as
 * libvips and browsers do). Release with image_icc_release. */
image_icc *image_icc_acquire(const uint8_t *profile, size_t len);
void image_icc_release(image_icc *t);

/* Converts n RGB pixels (3 bytes each) in place. */
void image_icc_apply(const image_icc *t, uint8_t *rgb, size_t n);

/* Transforms in the cache (for tests). */
int image_icc_cached(void);

#endif
