/* HEIF/AVIF orientation helpers for decode.c, and EXIF orientation for
 * direct.c (see heif_orient.c). */
#ifndef SIGHT_IMAGE_HEIF_ORIENT_H
#define SIGHT_IMAGE_HEIF_ORIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vips/vips.h>

/* Does the file carry an irot or imir property (which libheif applies)? */
bool image_heif_has_transform(const uint8_t *buf, size_t len);
/* The orientation (1..8) in an EXIF block, raw or behind "Exif\0\0"; 1 when none. */
int image_exif_orientation(const void *data, size_t n);
/* The EXIF orientation (1..8) of a HEIF as libvips loaded it; 1 when none. */
int image_heif_exif_orientation(VipsImage *im);

#endif
