/* BMP header parsing and pixel unpacking for image_decode (decode.c).
 *
 * libvips 8.14 reads BMP only through ImageMagick (magickload), which would
 * open every ImageMagick coder (PostScript, SVG, ...) and start its own
 * OpenMP threads. BMP without compression is a simple format, so this reads
 * the variants encoders write today: 1/4/8-bit palette, 16/24/32-bit direct
 * colour, BI_RGB and BI_BITFIELDS, bottom-up or top-down. RLE and embedded
 * JPEG/PNG are refused as unsupported. */
#ifndef SIGHT_IMAGE_BMP_H
#define SIGHT_IMAGE_BMP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t width, height; /* |height|: the header's sign only gives the row order */
    /* What bmp_read needs, from the header. */
    int top_down, bpp, dib_size;
    uint32_t data_offset, compression, palette_n;
    uint32_t mask[3]; /* r, g, b masks for 16/32-bit */
} bmp_header;

/* 0 on success; -1 corrupt (msg says why), -2 unsupported variant. */
int bmp_parse_header(const uint8_t *buf, size_t len, bmp_header *h, char *msg, size_t msg_len);
/* Unpacks the pixels as RGB into out (width*height*3 bytes, upright).
 * 0 on success; -1 when the file is shorter than the header says. */
int bmp_read(const uint8_t *buf, size_t len, const bmp_header *h, uint8_t *out, char *msg,
             size_t msg_len);

#endif
