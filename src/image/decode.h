/* Image decoding through libvips: JPEG, PNG, WebP, HEIF/HEIC, AVIF, GIF (first
 * frame), TIFF (first page) and BMP into 8-bit sRGB, with the EXIF orientation
 * applied and any embedded ICC profile converted to sRGB.
 *
 * Everything here treats the input as hostile: dimensions are checked against
 * a pixel budget from the header before any pixels are decoded (decompression
 * bombs), and so is what decoding will cost (cost.h: scans, samples, pages), only the loaders listed in decode.c may run, truncated or corrupt
 * data fails instead of being padded, and every library error becomes an
 * image_status, never an abort. */
#ifndef SIGHT_IMAGE_DECODE_H
#define SIGHT_IMAGE_DECODE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    IMAGE_OK = 0,
    IMAGE_EMPTY,       /* zero-length input */
    IMAGE_UNSUPPORTED, /* not one of the formats above (by magic bytes), or a variant they cannot load */
    IMAGE_CORRUPT,     /* recognised format, but the data is broken or truncated */
    IMAGE_TOO_LARGE,   /* width*height over max_pixels (checked from the header) */
    IMAGE_NO_MEMORY,
    IMAGE_TOO_COMPLEX, /* decoding would cost more than its pixels justify (cost.h), checked before decoding */
    IMAGE_CANCELLED,   /* opts->cancelled was set while decoding */
} image_status;

typedef enum {
    IMAGE_FMT_UNKNOWN = 0,
    IMAGE_FMT_JPEG,
    IMAGE_FMT_PNG,
    IMAGE_FMT_WEBP,
    IMAGE_FMT_HEIF,
    IMAGE_FMT_AVIF,
    IMAGE_FMT_GIF,
    IMAGE_FMT_TIFF,
    IMAGE_FMT_BMP,
} image_format;

typedef struct {
    uint64_t max_pixels; /* refuse images whose header says more; 0 = no limit */
    /* Optional shrink-on-load hint: when both are > 0 the decoder may decode at
     * reduced size (JPEG DCT scaling 1/2, 1/4, 1/8; a
     * HEIF's embedded thumbnail) as long as the decoded image stays at least
     * this large (after orientation). 0 = always decode at full size. */
    int min_width, min_height;
    /* With fit set, the decoded image need only cover a min_width x min_height
     * box when scaled to fit inside it, i.e. be at least that wide OR that
     * tall: the rule for a letterbox, which fits the image's long side. */
    bool fit;
    /* Shrink only an image whose longer stored side is at least this many
     * pixels (0: any image the hint allows). Lets a caller ask for a small
     * decode of a large photo without touching the sizes where a full-size
     * decode is what its reference does. */
    int shrink_from;
    /* HEIF/AVIF over this many pixels are refused (--max-pixels-heif):
     * libheif cannot shrink on load. 0 = only max_pixels. */
    uint64_t max_pixels_heif;
    /* When set (the request was cancelled), a decode stops as soon as it can
     * with IMAGE_CANCELLED. May be NULL. */
    const atomic_bool *cancelled;
    /* Leave a JPEG's ICC conversion to the consumer: pixels[] stays in the
     * embedded profile's colours and icc holds the transform to apply (to a
     * letterbox, after resizing: far fewer pixels than the photo). Without
     * it the decoder converts the whole image. */
    bool defer_icc;
} image_decode_opts;

typedef struct {
    int width, height;           /* of pixels[], after orientation (maybe scaled) */
    int orig_width, orig_height; /* full-size dimensions after EXIF orientation */
    image_format format;
    int exif_orientation; /* 1..8 as found (1 when absent) */
    uint8_t *pixels;      /* RGB, 3 bytes per pixel, row-major, stride width*3; free with image_free */
    /* Non-NULL only with defer_icc: pixels[] are in an embedded profile's
     * colours, and this converts them to sRGB (image_icc_apply, icc.h). */
    struct image_icc *icc;
} image_t;

/* Starts libvips for this process: once, before any thread calls image_decode
 * (main() and every test or harness that decodes). Sets the operation cache
 * off, one libvips worker per decode (the callers' own threads, --workers,
 * bound the parallelism), and blocks every loader but the ones listed in
 * decode.c. Returns 0, or -1 when libvips cannot start. Safe to call again. */
int image_init(const char *argv0);
/* Convert images with a non-sRGB ICC profile to sRGB (--icc-to-srgb; on by
 * default). Set once at start, before any decode. */
void image_set_icc_to_srgb(bool on);

/* Decodes buf into *out. On failure *out holds no memory and, when msg/msg_len
 * are given, msg receives a short human-readable reason. */
image_status image_decode(const uint8_t *buf, size_t len, const image_decode_opts *opts,
                          image_t *out, char *msg, size_t msg_len);
void image_free(image_t *img);
/* Applies a deferred ICC conversion (img->icc) to all of pixels[], in place,
 * for a consumer that reads the whole image; nothing when there is none. */
void image_to_srgb(image_t *img);

/* Sniffs the format from magic bytes only. */
image_format image_sniff(const uint8_t *buf, size_t len);
const char *image_format_name(image_format f);
/* Stable machine-readable code for a status ("corrupt_image", ...). */
const char *image_status_code(image_status s);

#endif
