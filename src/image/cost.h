/* Inside src/image: what decoding a file will cost, read from its header
 * bytes before any decoder runs, and the budget it must fit (issue 25).
 *
 * Pixels alone do not bound a decode: a progressive JPEG may repeat scans
 * (each walks every block again, ~100 bytes apiece), a TIFF may declare 256
 * samples per pixel or 32-bit floats with every strip pointing at one tiny
 * compressed strip, a TIFF may chain thousands of pages (libtiff counts them
 * all) and a GIF thousands of frames. The walkers here read only markers,
 * directories and block headers, in time linear in the file (a few ms for a
 * 20 MiB upload), and refuse what exceeds the budget with
 * IMAGE_TOO_COMPLEX, naming the limit.
 *
 * The budget, with --max-pixels = P (the caller's max_pixels):
 * - width x height x ceil(samples x bytes per sample / 4) <= P: a pixel of up
 *   to 4 decoded bytes (grey, RGB, RGBA, CMYK at 8 bits) counts once, so an
 *   ordinary 50 MP photo passes the 50M default; 16-bit RGB counts twice.
 * - at most 4 samples per pixel (5 when one is alpha), at most 16 bits each.
 * - JPEG: at most IMAGE_JPEG_MAX_SCANS scans, and the blocks all scans walk
 *   at most IMAGE_JPEG_SCAN_PASSES passes over a P-pixel image (P / 64
 *   blocks each). Legitimate progressive files have about 10 scans, 5-15
 *   passes over their own blocks. A file
 *   of several scans (progressive) is decoded through a buffer of every
 *   block's coefficients, 128 bytes a block: that buffer, counted in 4-byte
 *   pixels, is within P too (4:2:0 is 3 bytes a pixel, 4:4:4 6, CMYK 8: a
 *   progressive CMYK JPEG of over 25 MP is refused; a 7000x7000 one of 300
 *   KB needed 550 MB).
 * - TIFF: at most IMAGE_TIFF_MAX_PAGES pages, IMAGE_TIFF_MAX_STRIPS strips or
 *   tiles, tiles no larger than the image (or 1024 a side); JPEG-compressed
 *   strips (each a JPEG that libtiff lets repeat 100 scans) within the JPEG
 *   scan budget, summed over the strips.
 * - GIF: at most IMAGE_GIF_MAX_FRAMES frames.
 * - HEIF/AVIF: width x height <= --max-pixels-heif (libheif decodes at full
 *   size, ~12x the CPU of a JPEG of the same size), checked by decode.c from
 *   libheif's header. */
#ifndef SIGHT_IMAGE_COST_H
#define SIGHT_IMAGE_COST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/decode.h"

#define IMAGE_MAX_SAMPLES 4
#define IMAGE_MAX_BITS 16
#define IMAGE_JPEG_MAX_SCANS 500
#define IMAGE_JPEG_SCAN_PASSES 20
#define IMAGE_TIFF_MAX_PAGES 1000
#define IMAGE_TIFF_MAX_STRIPS 65536
#define IMAGE_GIF_MAX_FRAMES 10000

/* What a header walk found; 0 where the format has no such thing or the
 * walk did not get that far. Counts stop a little past their limit. */
typedef struct {
    uint64_t width, height;
    unsigned samples;      /* per pixel, alpha included */
    bool alpha;            /* one of them is alpha (TIFF ExtraSamples) */
    unsigned bits;         /* per sample, the largest */
    uint64_t scans;        /* JPEG: scans before EOI */
    uint64_t blocks;       /* JPEG, and TIFF's JPEG strips: 8x8 blocks all scans walk, summed */
    uint64_t frame_blocks; /* JPEG: blocks of the whole frame, every component */
    uint64_t strips;       /* TIFF: strips or tiles of the first page */
    uint64_t tile_w, tile_h;
    uint64_t pages; /* TIFF pages, GIF frames */
} image_cost;

/* Walks buf's header for format f into *c. Returns false when nothing could
 * be read (the decoder then reports what is wrong). Never reads past len. */
bool image_cost_read(image_format f, const uint8_t *buf, size_t len, image_cost *c);
/* Checks *c against the budget above (opts->max_pixels; 0 = no pixel-based
 * budget, the fixed limits still apply). */
image_status image_cost_check(image_format f, const image_cost *c, const image_decode_opts *opts, char *msg,
                              size_t msg_len);
/* Both: what image_decode runs before any decoder. */
image_status image_check_cost(image_format f, const uint8_t *buf, size_t len, const image_decode_opts *opts,
                              char *msg, size_t msg_len);
/* HEIF/AVIF of w x h (from libheif's header) against opts->max_pixels_heif. */
image_status image_check_heif_dims(image_format f, uint64_t w, uint64_t h, const image_decode_opts *opts, char *msg,
                                   size_t msg_len);

#endif
