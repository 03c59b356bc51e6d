/* Image decoding: JPEG, PNG, WebP into 8-bit RGB, EXIF orientation applied.
 *
 * Everything here treats the input as hostile: dimensions are checked against
 * a pixel budget before any pixel buffer is allocated (decompression bombs),
 * and every library error becomes an image_status, never an abort. */
#ifndef SIGHT_IMAGE_DECODE_H
#define SIGHT_IMAGE_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    IMAGE_OK = 0,
    IMAGE_EMPTY,        /* zero-length input */
    IMAGE_UNSUPPORTED,  /* not JPEG, PNG or WebP (by magic bytes) */
    IMAGE_CORRUPT,      /* recognised format, but the data is broken or truncated */
    IMAGE_TOO_LARGE,    /* width*height over max_pixels (checked from the header) */
    IMAGE_NO_MEMORY,
} image_status;

typedef enum { IMAGE_FMT_UNKNOWN = 0, IMAGE_FMT_JPEG, IMAGE_FMT_PNG, IMAGE_FMT_WEBP } image_format;

typedef struct {
    uint64_t max_pixels;  /* refuse images whose header says more; 0 = no limit */
    /* Optional shrink-on-load hint for JPEG: when both are > 0 the decoder may use
     * libjpeg's DCT scaling (1/2, 1/4, 1/8) as long as the decoded image stays at
     * least this large (after orientation). 0 = always decode at full size. */
    int min_width, min_height;
    /* With fit set, the decoded image need only cover a min_width x min_height
     * box when scaled to fit inside it, i.e. be at least that wide OR that
     * tall: the rule for a letterbox, which fits the image's long side. */
    bool fit;
} image_decode_opts;

typedef struct {
    int width, height;           /* of pixels[], after orientation (maybe scaled) */
    int orig_width, orig_height; /* full-size dimensions after EXIF orientation */
    image_format format;
    int exif_orientation;        /* 1..8 as found (1 when absent) */
    uint8_t *pixels;             /* RGB, 3 bytes per pixel, row-major, stride width*3; free with image_free */
} image_t;

/* Decodes buf into *out. On failure *out holds no memory and, when msg/msg_len
 * are given, msg receives a short human-readable reason. */
image_status image_decode(const uint8_t *buf, size_t len, const image_decode_opts *opts,
                          image_t *out, char *msg, size_t msg_len);
void image_free(image_t *img);

/* Sniffs the format from magic bytes only. */
image_format image_sniff(const uint8_t *buf, size_t len);
const char *image_format_name(image_format f);
/* Stable machine-readable code for a status ("corrupt_image", ...). */
const char *image_status_code(image_status s);

#endif
