/* JPEG and WebP straight into the output buffer. See direct.h. */
#include "image/direct.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <webp/decode.h>

#include "image/heif_orient.h"
#include "util/block_reuse.h"
#include "util/error.h"

/* libvips' JPEG loader gives up after as many warnings (each repeat of a
 * progressive scan is one); the scan limit bounds the work of a scan bomb
 * whose scans are each valid. */
#define JPEG_MAX_WARNINGS 100
#define JPEG_MAX_SCANS 500

/* ------------------------------------------------------------------ JPEG */

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg hands us &pub as cinfo->err */
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    int saw_eof; /* JWRN_JPEG_EOF: the source ran dry, libjpeg padded with grey */
    int why;     /* 0: libjpeg's error; 1: too many warnings; 2: too many scans; 3: cancelled */
    const atomic_bool *cancelled;
} jpeg_ctx;

/* The default error_exit calls exit(); unwind to the caller instead. */
static void jpeg_on_error(j_common_ptr cinfo)
{
    longjmp(((jpeg_ctx *)cinfo->err)->jb, 1);
}

/* Warnings are otherwise printed to stderr and decoding goes on: stay
 * silent, remember truncation, and stop a flood. */
static void jpeg_on_message(j_common_ptr cinfo, int msg_level)
{
    jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
    if (msg_level >= 0)
        return;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF)
        ctx->saw_eof = 1;
    if (++cinfo->err->num_warnings > JPEG_MAX_WARNINGS) {
        ctx->why = 1;
        longjmp(ctx->jb, 1);
    }
}

static void jpeg_silent(j_common_ptr cinfo)
{
    (void)cinfo;
}

static void jpeg_on_progress(j_common_ptr cinfo)
{
    jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > JPEG_MAX_SCANS) {
        ctx->why = 2;
        longjmp(ctx->jb, 1);
    }
    if (ctx->cancelled && atomic_load(ctx->cancelled)) {
        ctx->why = 3;
        longjmp(ctx->jb, 1);
    }
}

static image_status jpeg_failed(j_decompress_ptr cinfo, jpeg_ctx *ctx, char *msg, size_t msg_len)
{
    char text[JMSG_LENGTH_MAX];
    image_status st = IMAGE_CORRUPT;
    if (ctx->why == 3) {
        st = IMAGE_CANCELLED;
        err_printf(msg, msg_len, "decode cancelled");
    } else if (ctx->saw_eof) {
        /* A truncated header shows as a follow-on error ("JPEG datastream
         * contains no image"): name the cause. */
        err_printf(msg, msg_len, "truncated JPEG data");
    } else if (ctx->why == 1) {
        err_printf(msg, msg_len, "corrupt JPEG: more than %d warnings", JPEG_MAX_WARNINGS);
    } else if (ctx->why == 2) {
        err_printf(msg, msg_len, "corrupt JPEG: more than %d progressive scans", JPEG_MAX_SCANS);
    } else {
        ctx->pub.format_message((j_common_ptr)cinfo, text);
        switch (ctx->pub.msg_code) {
        case JERR_OUT_OF_MEMORY:
            st = IMAGE_NO_MEMORY;
            err_printf(msg, msg_len, "out of memory decoding JPEG");
            break;
        case JERR_BAD_PRECISION:
        case JERR_SOF_UNSUPPORTED:
        case JERR_ARITH_NOTIMPL:
        case JERR_CONVERSION_NOTIMPL:
        case JERR_NOTIMPL:
        case JERR_EMPTY_IMAGE: /* height 0: "DNL not supported" */
            st = IMAGE_UNSUPPORTED;
            err_printf(msg, msg_len, "unsupported JPEG: %s", text);
            break;
        default:
            err_printf(msg, msg_len, "corrupt JPEG: %s", text);
        }
    }
    return st;
}

image_status image_direct_jpeg_header(const uint8_t *buf, size_t len, image_jpeg_header *h, char *msg,
                                      size_t msg_len)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_ctx ctx;
    memset(h, 0, sizeof *h);
    memset(&ctx, 0, sizeof ctx);
    cinfo.err = jpeg_std_error(&ctx.pub);
    ctx.pub.error_exit = jpeg_on_error;
    ctx.pub.emit_message = jpeg_on_message;
    ctx.pub.output_message = jpeg_silent;
    if (setjmp(ctx.jb)) {
        image_status st = jpeg_failed(&cinfo, &ctx, msg, msg_len);
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff); /* EXIF */
    jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xffff); /* ICC_PROFILE chunks */
    jpeg_read_header(&cinfo, TRUE);
    h->width = cinfo.image_width;
    h->height = cinfo.image_height;
    h->cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    h->grey = cinfo.num_components == 1;
    h->orientation = 1;
    bool exif = false;
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 2 && m->data_length >= 12 && !memcmp(m->data, "ICC_PROFILE", 12))
            h->has_icc = true;
        /* The first EXIF block counts, as in libvips. */
        if (m->marker == JPEG_APP0 + 1 && !exif && m->data_length > 6 && !memcmp(m->data, "Exif\0\0", 6)) {
            exif = true;
            h->orientation = image_exif_orientation(m->data, m->data_length);
        }
    }
    /* libjpeg checks the chunks' numbering and reassembles them; broken
     * chunks leave icc NULL (a warning, not an error). */
    JOCTET *icc = NULL;
    unsigned icc_len = 0;
    if (h->has_icc && jpeg_read_icc_profile(&cinfo, &icc, &icc_len))
        h->icc = icc, h->icc_len = icc_len;
    jpeg_destroy_decompress(&cinfo);
    return IMAGE_OK;
}

image_status image_direct_jpeg(const uint8_t *buf, size_t len, int shrink, const atomic_bool *cancelled, uint8_t **px,
                               int *w, int *h, char *msg, size_t msg_len)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_ctx ctx;
    /* Written after setjmp and read after longjmp: volatile. */
    uint8_t *volatile pixels = NULL;

    *px = NULL;
    memset(&ctx, 0, sizeof ctx);
    cinfo.err = jpeg_std_error(&ctx.pub);
    ctx.pub.error_exit = jpeg_on_error;
    ctx.pub.emit_message = jpeg_on_message;
    ctx.pub.output_message = jpeg_silent;
    ctx.progress.progress_monitor = jpeg_on_progress;
    ctx.cancelled = cancelled;
    if (setjmp(ctx.jb)) {
        image_status st = jpeg_failed(&cinfo, &ctx, msg, msg_len);
        jpeg_destroy_decompress(&cinfo);
        block_free(pixels);
        return st;
    }
    jpeg_create_decompress(&cinfo);
    cinfo.progress = &ctx.progress;
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    /* YCbCr, RGB and grey come out as RGB; the caller sends CMYK to libvips. */
    cinfo.out_color_space = JCS_RGB;
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned)shrink;
    jpeg_start_decompress(&cinfo);
    /* Progressive files are read whole here, so truncation shows now. */
    if (ctx.saw_eof)
        longjmp(ctx.jb, 1);
    if (cinfo.output_components != 3) {
        err_printf(msg, msg_len, "unsupported JPEG: %d components", cinfo.output_components);
        jpeg_destroy_decompress(&cinfo);
        return IMAGE_UNSUPPORTED;
    }
    const size_t stride = (size_t)cinfo.output_width * 3;
    pixels = block_alloc(stride * cinfo.output_height);
    if (!pixels) {
        err_printf(msg, msg_len, "out of memory for a %ux%u image", cinfo.output_width, cinfo.output_height);
        jpeg_destroy_decompress(&cinfo);
        return IMAGE_NO_MEMORY;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        /* A few rows per call lets libjpeg fill whole row groups in place. */
        JSAMPROW rows[16];
        unsigned y = cinfo.output_scanline, n = cinfo.output_height - y < 16 ? cinfo.output_height - y : 16;
        for (unsigned i = 0; i < n; i++)
            rows[i] = pixels + (size_t)(y + i) * stride;
        /* Baseline truncation shows here: fail rather than return grey. No
         * rows cannot happen with a memory source but would loop forever. */
        if (jpeg_read_scanlines(&cinfo, rows, n) == 0 || ctx.saw_eof)
            longjmp(ctx.jb, 1);
    }
    /* No jpeg_finish_decompress: every pixel is in, and what follows the
     * last scan does not change the picture. */
    *w = (int)cinfo.output_width;
    *h = (int)cinfo.output_height;
    jpeg_destroy_decompress(&cinfo);
    *px = pixels;
    return IMAGE_OK;
}

/* ------------------------------------------------------------------ WebP */

image_status image_direct_webp(const uint8_t *buf, size_t len, int w, int h, uint8_t **px, char *msg, size_t msg_len)
{
    *px = NULL;
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg)) {
        err_printf(msg, msg_len, "unsupported WebP: libwebp version mismatch");
        return IMAGE_UNSUPPORTED;
    }
    VP8StatusCode s = WebPGetFeatures(buf, len, &cfg.input);
    /* w x h were checked against the pixel budget: decode nothing larger. */
    if (s == VP8_STATUS_OK && (cfg.input.width != w || cfg.input.height != h)) {
        err_printf(msg, msg_len, "corrupt WebP: the image is %dx%d, its canvas %dx%d", cfg.input.width,
                   cfg.input.height, w, h);
        return IMAGE_CORRUPT;
    }
    const size_t stride = (size_t)w * 3, size = stride * (size_t)h;
    uint8_t *pixels = s == VP8_STATUS_OK ? malloc(size ? size : 1) : NULL;
    if (s == VP8_STATUS_OK && !pixels) {
        err_printf(msg, msg_len, "out of memory for a %dx%d image", w, h);
        return IMAGE_NO_MEMORY;
    }
    cfg.output.colorspace = MODE_RGB; /* drops any alpha, as the libvips path does */
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = pixels;
    cfg.output.u.RGBA.stride = (int)stride;
    cfg.output.u.RGBA.size = size;
    if (s == VP8_STATUS_OK)
        s = WebPDecode(buf, len, &cfg);
    WebPFreeDecBuffer(&cfg.output); /* frees nothing of ours; releases libwebp's */
    if (s == VP8_STATUS_OK) {
        *px = pixels;
        return IMAGE_OK;
    }
    free(pixels);
    switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY:
        err_printf(msg, msg_len, "out of memory decoding WebP");
        return IMAGE_NO_MEMORY;
    case VP8_STATUS_UNSUPPORTED_FEATURE:
        err_printf(msg, msg_len, "unsupported WebP feature");
        return IMAGE_UNSUPPORTED;
    case VP8_STATUS_NOT_ENOUGH_DATA:
        err_printf(msg, msg_len, "truncated WebP data");
        return IMAGE_CORRUPT;
    default:
        err_printf(msg, msg_len, "corrupt WebP data (libwebp status %d)", (int)s);
        return IMAGE_CORRUPT;
    }
}
