/* Inside src/image: format sniffing helpers shared by decode.c and sniff.c. */
#ifndef SIGHT_IMAGE_SNIFF_H
#define SIGHT_IMAGE_SNIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/decode.h"

/* Big-endian 32-bit read (ISO BMFF boxes, ICC headers). */
static inline uint32_t image_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* For an unsupported_image message: what the bytes look like (PDF, SVG, ...),
 * or NULL when nothing is recognised. */
const char *image_sniff_other(const uint8_t *buf, size_t len);
/* Does this ICC profile call itself sRGB (its description tag)? */
bool image_icc_is_srgb(const uint8_t *p, size_t n);
/* The format's name in messages ("JPEG", "HEIC/HEIF"). */
const char *image_format_title(image_format f);

#endif
