/* Image decoding: JPEG (libjpeg-turbo), PNG (libpng 1.6), WebP (libwebp) into
 * 8-bit RGB with the EXIF orientation applied. See decode.h.
 *
 * Structure: image_decode sniffs the format, reads the EXIF orientation, runs
 * one decoder that produces the stored (not yet oriented) pixels, then rotates
 * or mirrors them upright. Each decoder reads the dimensions from the header
 * and checks them against the pixel budget before the pixel buffer, or any
 * library buffer that scales with the image, is allocated.
 *
 * Thread safety: no global mutable state; each call owns its library
 * contexts, and errors travel through per-call jmp_bufs. */
#include "image/decode.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <webp/decode.h>

#include "image/exif.h"

/* A progressive JPEG may have any number of scans, each a full pass over the
 * coefficients: a small file can cost minutes of CPU. Real encoders use ~10. */
#define JPEG_MAX_SCANS 500
/* Bound on the memory libpng may spend on a single ancillary chunk (text,
 * iCCP, ...), decompressed size included. */
#define PNG_CHUNK_MALLOC_MAX (8u << 20)

static void set_msg(char *msg, size_t msg_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_msg(char *msg, size_t msg_len, const char *fmt, ...)
{
    if (!msg || msg_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msg_len, fmt, ap);
    va_end(ap);
}

/* "12.3 megapixels" or, for small budgets where that would print 0.0, "4096 pixels". */
static void fmt_pixels(char *dst, size_t n, uint64_t px, const char *unit_suffix)
{
    if (px >= 100000)
        snprintf(dst, n, "%.1f megapixel%s", (double)px / 1e6, unit_suffix);
    else
        snprintf(dst, n, "%llu pixel%s", (unsigned long long)px, unit_suffix);
}

/* Validates header dimensions before anything proportional to them is
 * allocated: zero sides, the caller's pixel budget, and the limits of the
 * types the pixels travel in (int in image_t, size_t for w*h*3). */
static image_status check_dims(uint64_t w, uint64_t h, const image_decode_opts *opts,
                               const char *fmt, char *msg, size_t msg_len)
{
    if (w == 0 || h == 0) {
        set_msg(msg, msg_len, "%s header says %llux%llu", fmt, (unsigned long long)w,
                (unsigned long long)h);
        return IMAGE_CORRUPT;
    }
    uint64_t px = w * h; /* each side < 2^32, so no overflow */
    if (opts && opts->max_pixels > 0 && px > opts->max_pixels) {
        char have[48], limit[48];
        fmt_pixels(have, sizeof have, px, "s");
        fmt_pixels(limit, sizeof limit, opts->max_pixels, "");
        set_msg(msg, msg_len, "image is %llux%llu (%s), over the %s limit",
                (unsigned long long)w, (unsigned long long)h, have, limit);
        return IMAGE_TOO_LARGE;
    }
    if (w > INT_MAX || h > INT_MAX || px > SIZE_MAX / 3) {
        set_msg(msg, msg_len, "image is %llux%llu, too large to decode", (unsigned long long)w,
                (unsigned long long)h);
        return IMAGE_TOO_LARGE;
    }
    return IMAGE_OK;
}

/* Stored-orientation pixels as a decoder returns them. */
typedef struct {
    uint8_t *pixels;
    int width, height;           /* of pixels[] */
    int full_width, full_height; /* header dimensions, before any DCT scaling */
} raw_image;

/* ------------------------------------------------------------------ JPEG */

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg hands us &pub as cinfo->err */
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    int saw_eof;         /* JWRN_JPEG_EOF: the source ran dry, libjpeg padded */
    int too_many_scans;
} jpeg_ctx;

/* The default error_exit calls exit(); unwind to image_decode instead. */
static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
    longjmp(ctx->jb, 1);
}

/* Warnings (level -1) are otherwise printed to stderr and decoding goes on
 * with made-up data. We stay silent and remember truncation, which libjpeg
 * reports as a warning and papers over by filling the rest with grey. */
static void jpeg_on_message(j_common_ptr cinfo, int msg_level)
{
    jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
    if (msg_level < 0) {
        cinfo->err->num_warnings++;
        if (cinfo->err->msg_code == JWRN_JPEG_EOF)
            ctx->saw_eof = 1;
    }
}

static void jpeg_silent_output(j_common_ptr cinfo)
{
    (void)cinfo;
}

static void jpeg_on_progress(j_common_ptr cinfo)
{
    jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
    if (cinfo->is_decompressor &&
        ((j_decompress_ptr)cinfo)->input_scan_number > JPEG_MAX_SCANS) {
        ctx->too_many_scans = 1;
        longjmp(ctx->jb, 1);
    }
}

/* CMYK as libjpeg returns it. Adobe (Photoshop) files, i.e. those with an
 * APP14 Adobe marker, which is nearly all CMYK JPEGs, store the channels
 * inverted (255 = no ink); otherwise assume plain CMYK (0 = no ink). */
static void cmyk_row_to_rgb(const uint8_t *src, uint8_t *dst, unsigned w, int inverted)
{
    for (unsigned x = 0; x < w; x++, src += 4, dst += 3) {
        unsigned c = src[0], m = src[1], y = src[2], k = src[3];
        if (!inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        dst[0] = (uint8_t)((c * k + 127) / 255);
        dst[1] = (uint8_t)((m * k + 127) / 255);
        dst[2] = (uint8_t)((y * k + 127) / 255);
    }
}

static image_status decode_jpeg(const uint8_t *buf, size_t len, const image_decode_opts *opts,
                                int orientation, raw_image *out, char *msg, size_t msg_len)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_ctx ctx;
    /* Written after setjmp and read after longjmp: must be volatile. */
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile rowbuf = NULL;

    memset(&ctx, 0, sizeof ctx);
    cinfo.err = jpeg_std_error(&ctx.pub);
    ctx.pub.error_exit = jpeg_on_error;
    ctx.pub.emit_message = jpeg_on_message;
    ctx.pub.output_message = jpeg_silent_output;
    ctx.progress.progress_monitor = jpeg_on_progress;

    if (setjmp(ctx.jb)) {
        image_status st = IMAGE_CORRUPT;
        if (ctx.too_many_scans) {
            set_msg(msg, msg_len, "JPEG has more than %d progressive scans", JPEG_MAX_SCANS);
        } else {
            char text[JMSG_LENGTH_MAX];
            ctx.pub.format_message((j_common_ptr)&cinfo, text);
            switch (ctx.pub.msg_code) {
            case JERR_OUT_OF_MEMORY:
                st = IMAGE_NO_MEMORY;
                set_msg(msg, msg_len, "out of memory decoding JPEG");
                break;
            case JERR_BAD_PRECISION:
            case JERR_SOF_UNSUPPORTED:
            case JERR_ARITH_NOTIMPL:
            case JERR_CONVERSION_NOTIMPL:
                st = IMAGE_UNSUPPORTED;
                set_msg(msg, msg_len, "unsupported JPEG: %s", text);
                break;
            default:
                /* A truncated header shows up as a follow-on error (e.g. "JPEG
                 * datastream contains no image"); name the real cause. */
                if (ctx.saw_eof)
                    set_msg(msg, msg_len, "truncated JPEG data");
                else
                    set_msg(msg, msg_len, "corrupt JPEG: %s", text);
            }
        }
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(rowbuf);
        return st;
    }

    jpeg_create_decompress(&cinfo);
    cinfo.progress = &ctx.progress;
    if ((unsigned long)len != len) {
        set_msg(msg, msg_len, "JPEG input too large");
        jpeg_destroy_decompress(&cinfo);
        return IMAGE_TOO_LARGE;
    }
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);

    image_status st = check_dims(cinfo.image_width, cinfo.image_height, opts, "JPEG", msg, msg_len);
    if (st != IMAGE_OK) {
        jpeg_destroy_decompress(&cinfo);
        return st;
    }

    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    /* libjpeg-turbo converts greyscale and YCbCr to RGB itself; CMYK and YCCK
     * come out as CMYK and are converted below. */
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;

    /* Shrink-on-load: DCT scaling skips most of the IDCT work, so pick the
     * smallest 1/N whose output (after orientation) still covers the minimum. */
    if (opts && opts->min_width > 0 && opts->min_height > 0) {
        static const unsigned denoms[] = {8, 4, 2};
        int swap = orientation >= 5;
        cinfo.scale_num = 1;
        cinfo.scale_denom = 1;
        for (size_t i = 0; i < sizeof denoms / sizeof denoms[0]; i++) {
            cinfo.scale_denom = denoms[i];
            jpeg_calc_output_dimensions(&cinfo);
            unsigned ow = swap ? cinfo.output_height : cinfo.output_width;
            unsigned oh = swap ? cinfo.output_width : cinfo.output_height;
            bool wide = ow >= (unsigned)opts->min_width, tall = oh >= (unsigned)opts->min_height;
            if (opts->fit ? (wide || tall) : (wide && tall))
                break;
            cinfo.scale_denom = 1;
        }
    }

    jpeg_start_decompress(&cinfo);
    /* Progressive files are read entirely here, so truncation shows now. */
    if (ctx.saw_eof) {
        set_msg(msg, msg_len, "truncated JPEG data");
        jpeg_destroy_decompress(&cinfo);
        return IMAGE_CORRUPT;
    }
    unsigned w = cinfo.output_width, h = cinfo.output_height;
    int comps = cinfo.output_components;
    if (comps != (cmyk ? 4 : 3) || w == 0 || h == 0) {
        set_msg(msg, msg_len, "unexpected JPEG output layout (%d components)", comps);
        jpeg_destroy_decompress(&cinfo);
        return IMAGE_UNSUPPORTED;
    }

    size_t stride = (size_t)w * 3;
    pixels = malloc(stride * h);
    if (cmyk)
        rowbuf = malloc((size_t)w * 4);
    if (!pixels || (cmyk && !rowbuf)) {
        set_msg(msg, msg_len, "out of memory for a %ux%u image", w, h);
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(rowbuf);
        return IMAGE_NO_MEMORY;
    }

    while (cinfo.output_scanline < h) {
        unsigned y = cinfo.output_scanline;
        JDIMENSION got;
        if (cmyk) {
            JSAMPROW row = rowbuf;
            got = jpeg_read_scanlines(&cinfo, &row, 1);
            if (got == 1)
                cmyk_row_to_rgb(rowbuf, pixels + y * stride, w, cinfo.saw_Adobe_marker);
        } else {
            /* A few rows per call lets libjpeg fill whole iMCU row groups. */
            JSAMPROW rows[16];
            unsigned n = h - y < 16 ? h - y : 16;
            for (unsigned i = 0; i < n; i++)
                rows[i] = pixels + (size_t)(y + i) * stride;
            got = jpeg_read_scanlines(&cinfo, rows, n);
        }
        /* Baseline truncation shows here; stop early rather than decode grey.
         * got == 0 cannot happen with a memory source but would loop forever. */
        if (ctx.saw_eof || got == 0) {
            set_msg(msg, msg_len, "truncated JPEG data");
            jpeg_destroy_decompress(&cinfo);
            free(pixels);
            free(rowbuf);
            return IMAGE_CORRUPT;
        }
    }

    /* No jpeg_finish_decompress: every pixel is in, and what follows the last
     * scan (trailing junk after EOI, say) does not change the picture. A file
     * missing only its EOI usually fails above anyway: libjpeg-turbo's entropy
     * decoder reads ahead and so reports EOF while decoding the last rows. */
    out->full_width = (int)cinfo.image_width;
    out->full_height = (int)cinfo.image_height;
    jpeg_destroy_decompress(&cinfo);
    free(rowbuf);
    out->pixels = pixels;
    out->width = (int)w;
    out->height = (int)h;
    return IMAGE_OK;
}

/* ------------------------------------------------------------------- PNG */

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    int truncated;
    char err[96];
} png_ctx;

static void png_mem_read(png_structp png, png_bytep dst, size_t n)
{
    png_ctx *ctx = png_get_io_ptr(png);
    if (n > ctx->len - ctx->pos) {
        ctx->truncated = 1;
        png_error(png, "truncated PNG data");
    }
    memcpy(dst, ctx->buf + ctx->pos, n);
    ctx->pos += n;
}

/* The default handler prints to stderr and longjmps; keep the message instead. */
static void png_on_error(png_structp png, png_const_charp text)
{
    png_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->err, sizeof ctx->err, "%s", text ? text : "error");
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp text)
{
    (void)png;
    (void)text;
}

static image_status decode_png(const uint8_t *buf, size_t len, const image_decode_opts *opts,
                               raw_image *out, char *msg, size_t msg_len)
{
    png_ctx ctx = {.buf = buf, .len = len};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error,
                                             png_on_warning);
    if (!png) {
        set_msg(msg, msg_len, "out of memory decoding PNG");
        return IMAGE_NO_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_msg(msg, msg_len, "out of memory decoding PNG");
        return IMAGE_NO_MEMORY;
    }

    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        image_status st = IMAGE_CORRUPT;
        if (ctx.truncated) {
            set_msg(msg, msg_len, "truncated PNG data");
        } else if (strstr(ctx.err, "memory")) { /* "Out of memory", "Insufficient memory" */
            st = IMAGE_NO_MEMORY;
            set_msg(msg, msg_len, "out of memory decoding PNG");
        } else {
            set_msg(msg, msg_len, "corrupt PNG: %s", ctx.err);
        }
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        return st;
    }

    png_set_read_fn(png, &ctx, png_mem_read);
    /* libpng's own default cap is 1,000,000 per side and fails with a generic
     * error; lift it to the format's maximum and apply our pixel budget below,
     * which also gives the right status. */
    png_set_user_limits(png, 0x7FFFFFFFu, 0x7FFFFFFFu);
    png_set_chunk_malloc_max(png, PNG_CHUNK_MALLOC_MAX);

    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    /* png_read_info has only read the chunks before IDAT; row buffers are
     * allocated by png_read_update_info, so this is early enough. */
    image_status st = check_dims(w, h, opts, "PNG", msg, msg_len);
    if (st != IMAGE_OK) {
        png_destroy_read_struct(&png, &info, NULL);
        return st;
    }

    /* Everything becomes 8-bit RGB. Alpha (an alpha channel, or tRNS which
     * palette expansion would turn into one) is dropped, not composited: the
     * models take RGB, and the colour under transparent pixels is what the
     * encoder left there. png_set_strip_alpha also cancels tRNS expansion. */
    if (depth == 16)
        png_set_scale_16(png); /* rounds, unlike png_set_strip_16 */
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);
    if (interlace != PNG_INTERLACE_NONE)
        png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t stride = (size_t)w * 3;
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != stride) {
        set_msg(msg, msg_len, "unsupported PNG layout (colour type %d, depth %d)", color, depth);
        png_destroy_read_struct(&png, &info, NULL);
        return IMAGE_UNSUPPORTED;
    }

    pixels = malloc(stride * h);
    rows = malloc((size_t)h * sizeof *rows);
    if (!pixels || !rows) {
        set_msg(msg, msg_len, "out of memory for a %ux%u image", (unsigned)w, (unsigned)h);
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        return IMAGE_NO_MEMORY;
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = pixels + y * stride;
    png_read_image(png, rows);

    /* No png_read_end: the pixels are complete, and chunks after IDAT are
     * metadata (eXIf there is found by exif.c). */
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->pixels = pixels;
    out->width = out->full_width = (int)w;
    out->height = out->full_height = (int)h;
    return IMAGE_OK;
}

/* ------------------------------------------------------------------ WebP */

static image_status webp_status(VP8StatusCode s, char *msg, size_t msg_len)
{
    switch (s) {
    case VP8_STATUS_OK:
        return IMAGE_OK;
    case VP8_STATUS_OUT_OF_MEMORY:
        set_msg(msg, msg_len, "out of memory decoding WebP");
        return IMAGE_NO_MEMORY;
    case VP8_STATUS_UNSUPPORTED_FEATURE:
        set_msg(msg, msg_len, "unsupported WebP feature");
        return IMAGE_UNSUPPORTED;
    case VP8_STATUS_NOT_ENOUGH_DATA:
        set_msg(msg, msg_len, "truncated WebP data");
        return IMAGE_CORRUPT;
    default:
        set_msg(msg, msg_len, "corrupt WebP data (libwebp status %d)", (int)s);
        return IMAGE_CORRUPT;
    }
}

static image_status decode_webp(const uint8_t *buf, size_t len, const image_decode_opts *opts,
                                raw_image *out, char *msg, size_t msg_len)
{
    WebPDecoderConfig cfg;
    if (!WebPInitDecoderConfig(&cfg)) {
        set_msg(msg, msg_len, "libwebp version mismatch");
        return IMAGE_UNSUPPORTED;
    }
    image_status st = webp_status(WebPGetFeatures(buf, len, &cfg.input), msg, msg_len);
    if (st != IMAGE_OK)
        return st;
    /* The still-image decoder cannot do animations (that needs libwebpdemux). */
    if (cfg.input.has_animation) {
        set_msg(msg, msg_len, "animated WebP is not supported");
        return IMAGE_UNSUPPORTED;
    }
    st = check_dims((uint64_t)(unsigned)cfg.input.width, (uint64_t)(unsigned)cfg.input.height,
                    opts, "WebP", msg, msg_len);
    if (st != IMAGE_OK)
        return st;

    int w = cfg.input.width, h = cfg.input.height;
    size_t stride = (size_t)w * 3, size = stride * (size_t)h;
    uint8_t *pixels = malloc(size);
    if (!pixels) {
        set_msg(msg, msg_len, "out of memory for a %dx%d image", w, h);
        return IMAGE_NO_MEMORY;
    }
    /* Decode straight into our buffer; MODE_RGB drops any alpha. */
    cfg.output.colorspace = MODE_RGB;
    cfg.output.is_external_memory = 1;
    cfg.output.u.RGBA.rgba = pixels;
    cfg.output.u.RGBA.stride = (int)stride;
    cfg.output.u.RGBA.size = size;
    st = webp_status(WebPDecode(buf, len, &cfg), msg, msg_len);
    WebPFreeDecBuffer(&cfg.output); /* frees nothing of ours; releases any internals */
    if (st != IMAGE_OK) {
        free(pixels);
        return st;
    }
    out->pixels = pixels;
    out->width = out->full_width = w;
    out->height = out->full_height = h;
    return IMAGE_OK;
}

/* ----------------------------------------------------------- orientation */

/* Rewrites the stored pixels upright. Every orientation is an affine map
 * from output (x, y) to a stored pixel index: start + x*dx + y*dy. With
 * W x H the stored size (EXIF 2.3, tag 0x0112):
 *   1 identity            out(x,y) = in(x, y)
 *   2 mirror horizontal   out(x,y) = in(W-1-x, y)
 *   3 rotate 180          out(x,y) = in(W-1-x, H-1-y)
 *   4 mirror vertical     out(x,y) = in(x, H-1-y)
 *   5 transpose           out(x,y) = in(y, x)              (output H x W)
 *   6 rotate 90 CW        out(x,y) = in(y, H-1-x)          (output H x W)
 *   7 transverse          out(x,y) = in(W-1-y, H-1-x)      (output H x W)
 *   8 rotate 90 CCW       out(x,y) = in(W-1-y, x)          (output H x W)
 * e.g. 6: "row 0 is the visual right side": stored row 0 becomes the right
 * column, so the picture is turned 90 degrees clockwise to display. */
static image_status apply_orientation(raw_image *img, int orientation)
{
    if (orientation < 2 || orientation > 8)
        return IMAGE_OK;
    ptrdiff_t W = img->width, H = img->height;
    ptrdiff_t start, dx, dy;
    switch (orientation) {
    case 2:  start = W - 1;               dx = -1; dy = W;  break;
    case 3:  start = (H - 1) * W + W - 1; dx = -1; dy = -W; break;
    case 4:  start = (H - 1) * W;         dx = 1;  dy = -W; break;
    case 5:  start = 0;                   dx = W;  dy = 1;  break;
    case 6:  start = (H - 1) * W;         dx = -W; dy = 1;  break;
    case 7:  start = (H - 1) * W + W - 1; dx = -W; dy = -1; break;
    default: start = W - 1;               dx = W;  dy = -1; break; /* 8 */
    }
    int swap = orientation >= 5;
    ptrdiff_t ow = swap ? H : W, oh = swap ? W : H;

    uint8_t *dst = malloc((size_t)W * (size_t)H * 3);
    if (!dst)
        return IMAGE_NO_MEMORY;
    const uint8_t *src = img->pixels;
    /* Tiles keep the strided reads of the 90-degree cases in cache. */
    enum { T = 64 };
    for (ptrdiff_t ty = 0; ty < oh; ty += T) {
        ptrdiff_t ey = ty + T < oh ? ty + T : oh;
        for (ptrdiff_t tx = 0; tx < ow; tx += T) {
            ptrdiff_t ex = tx + T < ow ? tx + T : ow;
            for (ptrdiff_t y = ty; y < ey; y++) {
                uint8_t *d = dst + (y * ow + tx) * 3;
                ptrdiff_t s = start + tx * dx + y * dy;
                for (ptrdiff_t x = tx; x < ex; x++, d += 3, s += dx) {
                    const uint8_t *p = src + s * 3;
                    d[0] = p[0];
                    d[1] = p[1];
                    d[2] = p[2];
                }
            }
        }
    }
    free(img->pixels);
    img->pixels = dst;
    img->width = (int)ow;
    img->height = (int)oh;
    return IMAGE_OK;
}

/* ------------------------------------------------------------- public API */

image_format image_sniff(const uint8_t *buf, size_t len)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (!buf)
        return IMAGE_FMT_UNKNOWN;
    if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
        return IMAGE_FMT_JPEG;
    if (len >= 8 && memcmp(buf, png_sig, 8) == 0)
        return IMAGE_FMT_PNG;
    if (len >= 12 && memcmp(buf, "RIFF", 4) == 0 && memcmp(buf + 8, "WEBP", 4) == 0)
        return IMAGE_FMT_WEBP;
    return IMAGE_FMT_UNKNOWN;
}

const char *image_format_name(image_format f)
{
    switch (f) {
    case IMAGE_FMT_JPEG: return "jpeg";
    case IMAGE_FMT_PNG: return "png";
    case IMAGE_FMT_WEBP: return "webp";
    default: return "unknown";
    }
}

const char *image_status_code(image_status s)
{
    switch (s) {
    case IMAGE_OK: return "ok";
    case IMAGE_EMPTY: return "empty_file";
    case IMAGE_UNSUPPORTED: return "unsupported_image";
    case IMAGE_CORRUPT: return "corrupt_image";
    case IMAGE_TOO_LARGE: return "image_too_large";
    case IMAGE_NO_MEMORY: return "out_of_memory";
    }
    return "unknown";
}

image_status image_decode(const uint8_t *buf, size_t len, const image_decode_opts *opts,
                          image_t *out, char *msg, size_t msg_len)
{
    if (msg && msg_len > 0)
        msg[0] = '\0';
    if (!out) {
        set_msg(msg, msg_len, "no output image given");
        return IMAGE_CORRUPT;
    }
    memset(out, 0, sizeof *out);
    if (!buf || len == 0) {
        set_msg(msg, msg_len, "empty input");
        return IMAGE_EMPTY;
    }

    image_format fmt = image_sniff(buf, len);
    raw_image raw = {0};
    int orientation = 1;
    image_status st;
    switch (fmt) {
    case IMAGE_FMT_JPEG:
        orientation = exif_orientation_jpeg(buf, len);
        st = decode_jpeg(buf, len, opts, orientation, &raw, msg, msg_len);
        break;
    case IMAGE_FMT_PNG:
        orientation = exif_orientation_png(buf, len);
        st = decode_png(buf, len, opts, &raw, msg, msg_len);
        break;
    case IMAGE_FMT_WEBP:
        orientation = exif_orientation_webp(buf, len);
        st = decode_webp(buf, len, opts, &raw, msg, msg_len);
        break;
    default:
        set_msg(msg, msg_len, "not a JPEG, PNG or WebP image");
        return IMAGE_UNSUPPORTED;
    }
    if (st != IMAGE_OK)
        return st;

    if (apply_orientation(&raw, orientation) != IMAGE_OK) {
        set_msg(msg, msg_len, "out of memory rotating a %dx%d image", raw.width, raw.height);
        free(raw.pixels);
        return IMAGE_NO_MEMORY;
    }
    int swap = orientation >= 5;
    out->pixels = raw.pixels;
    out->width = raw.width;
    out->height = raw.height;
    out->orig_width = swap ? raw.full_height : raw.full_width;
    out->orig_height = swap ? raw.full_width : raw.full_height;
    out->format = fmt;
    out->exif_orientation = orientation;
    return IMAGE_OK;
}

void image_free(image_t *img)
{
    if (!img)
        return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}
