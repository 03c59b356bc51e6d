/* Inside src/image: JPEG and WebP pixels decoded by libjpeg-turbo and libwebp
 * (the codecs libvips itself calls) straight into the output buffer.
 *
 * Why: libvips 8.14's loaders route every row through its pipeline (JPEG: one
 * scanline per call into 8-row tiles of a line cache, zeroed on allocation,
 * copied twice; WebP: two whole-frame RGBA buffers, then row by row), which
 * made decode + letterbox 10-50% slower than the codecs alone (make bench,
 * BENCH_ONLY=decode), and opening a file with libvips at all costs a 640x480
 * JPEG 10-40% (its objects fall out of the cache between images). So a JPEG's
 * header is read here (pixel budget, orientation, ICC marker); a WebP's by
 * libvips. These decode only the plain cases: JPEG in YCbCr, RGB or grey,
 * still WebP; a colour JPEG's ICC profile is handed back for icc.c to apply.
 * Everything else (CMYK, animation, grey JPEG or WebP with a profile, the
 * other formats) stays on libvips. The pixels are the same as libvips' for these cases: it calls the
 * same libraries with the same settings (the ICC conversion excepted: LittleCMS'
 * 8-bit transform against libvips' float one, within a level or two). */
#ifndef SIGHT_IMAGE_DIRECT_H
#define SIGHT_IMAGE_DIRECT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/decode.h"

typedef struct {
    uint32_t width, height; /* as stored (before orientation) */
    bool cmyk;              /* CMYK or YCCK: for libvips */
    bool has_icc;           /* an ICC_PROFILE APP2 marker */
    bool grey;              /* one component */
    int orientation;        /* EXIF orientation 1..8 (1 when none) */
    /* The profile reassembled from its markers (malloc'd; NULL when none or
     * its chunks are broken); the caller frees it. */
    uint8_t *icc;
    unsigned icc_len;
} image_jpeg_header;

/* Reads a JPEG's header with libjpeg: no pixels. On success the caller
 * frees h->icc. */
image_status image_direct_jpeg_header(const uint8_t *buf, size_t len, image_jpeg_header *h, char *msg,
                                      size_t msg_len);

/* A JPEG at 1/shrink (1, 2, 4 or 8: libjpeg's DCT scaling) as 8-bit RGB into
 * a new malloc'd buffer (*px, *w x *h). Fails like libvips' loader with
 * fail_on=truncated: truncation and fatal errors fail, recoverable damage
 * (extraneous bytes) does not; more than 100 warnings or 500 progressive
 * scans fail as corrupt (decompression bombs). Stops with IMAGE_CANCELLED
 * once *cancelled (may be NULL) is set: libjpeg's progress monitor looks
 * at it every row of blocks, during the scans and the output. */
image_status image_direct_jpeg(const uint8_t *buf, size_t len, int shrink, const atomic_bool *cancelled, uint8_t **px,
                               int *w, int *h, char *msg, size_t msg_len);

/* A still WebP of w x h (its size in the header libvips read) as 8-bit RGB,
 * any alpha dropped, into a new buffer (*px). */
image_status image_direct_webp(const uint8_t *buf, size_t len, int w, int h, uint8_t **px, char *msg, size_t msg_len);

#endif
