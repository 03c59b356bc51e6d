/* Image decoding through libvips (BMP through bmp.c; plain JPEG and WebP
 * pixels through direct.c). See decode.h.
 *
 * Structure: image_decode sniffs the format from its magic bytes and calls
 * that one loader (never libvips' own sniffing, which would try every
 * loader). The first open reads the header only: the pixel budget is checked
 * there, and the orientation read. A second open asks for shrink-on-load when
 * the hint allows it. The pixels then flow through ICC -> sRGB, 8-bit RGB and
 * orientation straight into a buffer we own, in one pass with sequential
 * access; only a rotated image is materialised in memory first (rotating
 * needs random access). Plain JPEG (with an ICC profile too: icc.c converts)
 * and still WebP skip the libvips pipeline after the header: direct.c has libjpeg / libwebp write the same pixels
 * into our buffer, much cheaper (see direct.h). Nothing touches the disc: sequential decoding needs
 * no temporary image, and the in-memory copy is explicit.
 *
 * Thread safety: image_init runs once before any thread; the rest keeps no
 * global state of its own. libvips' error buffer is process-wide, so under
 * concurrent failures a message may name another file's error; the status is
 * always this file's. */
#include "image/decode.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

#include "image/bmp.h"
#include "image/cost.h"
#include "image/direct.h"
#include "image/heif_orient.h"
#include "image/icc.h"
#include "image/limits.h"
#include "image/sniff.h"
#include "util/block_reuse.h"
#include "util/error.h"

#define SUPPORTED_LIST "JPEG, PNG, WebP, HEIC/HEIF, AVIF, GIF, TIFF or BMP"

/* ------------------------------------------------------------------ init */

/* The loaders a server needs, by libvips class name (each covers its
 * subclasses). Everything else under VipsForeignLoad is blocked, so even a
 * caller of vips_image_new_from_buffer could not reach PDF, SVG, ImageMagick,
 * matrix or scientific formats. Names absent from this build are skipped. */
static const char *const allowed_loaders[] = {
    "VipsForeignLoadJpegBuffer",
    "VipsForeignLoadPngBuffer",
    "VipsForeignLoadSpngBuffer",
    "VipsForeignLoadWebpBuffer",
    "VipsForeignLoadHeifBuffer",
    "VipsForeignLoadNsgifBuffer",
    "VipsForeignLoadGifBuffer",
    "VipsForeignLoadTiffBuffer",
};

static int init_rc = -1;
static const char *init_argv0;
/* --icc-to-srgb: convert images with a non-sRGB ICC profile (Display P3,
 * Adobe RGB) to sRGB. On by default (config.c): what a phone's photo shows is
 * what the model should see. The detectors' reference pipelines (Ultralytics,
 * YOLOX: cv2 / djpeg) ignore ICC profiles, and converting moves scores (bus.jpg
 * of the shared photos is Display P3), hence the switch. See README. */
static bool icc_to_srgb;

/* libvips reports loader warnings (corrupt chunks, extraneous bytes) through
 * GLib's log, to stderr by default: one hostile upload could flood the
 * server's log. The failure itself still comes back as an image_status. */
static void quiet_log(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
{
    (void)domain;
    (void)level;
    (void)message;
    (void)data;
}

static void init_once(void)
{
    if (VIPS_INIT(init_argv0 ? init_argv0 : "sightd") != 0)
        return;
    /* No operation cache: every decode is of new, untrusted bytes, and cached
     * results would only hold memory (the load test's RSS bound). */
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    /* Decodes render in the calling thread (render() below), so they start no
     * libvips workers; what does use a pipeline (the LLM stage's JPEG
     * encoding, WebP's frame decode) gets one worker, not one per core. */
    vips_concurrency_set(1);
    vips_block_untrusted_set(TRUE);
    vips_operation_block_set("VipsForeignLoad", TRUE);
    for (size_t i = 0; i < sizeof allowed_loaders / sizeof allowed_loaders[0]; i++)
        if (g_type_from_name(allowed_loaders[i]))
            vips_operation_block_set(allowed_loaders[i], FALSE);
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG, quiet_log, NULL);
    init_rc = 0;
}

void image_set_icc_to_srgb(bool on)
{
    icc_to_srgb = on;
}

int image_init(const char *argv0)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    /* Only main() passes a name, before any thread starts; the workers' calls
     * (NULL) must not write it while another thread's init_once reads it. */
    if (argv0)
        init_argv0 = argv0;
    pthread_once(&once, init_once);
    return init_rc;
}

/* ---------------------------------------------------------------- errors */

/* libvips' error text for msg: its first line without the "Domain: " prefix,
 * named as truncation when it says so. Clears the buffer. */
static image_status vips_msg(image_format f, const char *what, char *msg, size_t msg_len)
{
    char *all = vips_error_buffer_copy(); /* also clears it */
    const char *line = all ? all : "";
    size_t n = strcspn(line, "\n");
    char first[200];
    snprintf(first, sizeof first, "%.*s", (int)(n < sizeof first ? n : sizeof first - 1), line);
    const char *text = first;
    const char *colon = strstr(first, ": ");
    if (colon && !memchr(first, ' ', (size_t)(colon - first)))
        text = colon + 2;
    static const char *const cut[] = {"Premature end", "premature end", "truncated", "Truncated",
                                      "end of file", "Not enough data", "unexpected end",
                                      "Unexpected end", "out of data", "Read error", "EOF",
                                      "bad seek"}; /* a seek past the end of the buffer */
    bool truncated = false;
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++)
        if (strstr(first, cut[i]))
            truncated = true;
    /* Valid files of a variant the codec cannot read (12-bit or lossless
     * JPEG, ...), as libjpeg, libpng and libheif word it. */
    image_status st = IMAGE_CORRUPT;
    if (!truncated && (strstr(first, "nsupported") || strstr(first, "not supported") || strstr(first, "not implemented")))
        st = IMAGE_UNSUPPORTED, what = "unsupported";
    if (truncated)
        err_printf(msg, msg_len, "truncated %s data", image_format_title(f));
    else if (*text)
        err_printf(msg, msg_len, "%s %s: %s", what, image_format_title(f), text);
    else
        err_printf(msg, msg_len, "%s %s data", what, image_format_title(f));
    g_free(all);
    return st;
}

/* ----------------------------------------------------------------- loads */

/* The formats whose loader takes no option of its own: they load alike. */
typedef int (*vips_buffer_load_fn)(void *buf, size_t len, VipsImage **out, ...);
static vips_buffer_load_fn plain_loader(image_format f)
{
    return f == IMAGE_FMT_PNG ? vips_pngload_buffer : f == IMAGE_FMT_GIF ? vips_gifload_buffer
                                                                         : vips_tiffload_buffer;
}

/* memory (WebP only): libvips' WebP loader decodes the whole image first,
 * and without this puts images over 100 MB (a 50-megapixel WebP) in a
 * temporary file. The other loaders read in order straight into render()'s
 * strips (checked: 6000x6000 files of every format decode with TMPDIR
 * missing); for them "memory" would force that whole-image decode, doubling
 * the time of a small JPEG.
 * shrink: JPEG 1/2/4/8 (DCT scaling);
 * thumbnail: a HEIF's embedded thumbnail. fail_on error: truncated or
 * corrupt data fails rather than being padded with grey. JPEG only fails on
 * truncation: libjpeg reports recoverable damage ("extraneous bytes before
 * marker", common in camera files) as warnings, and such files decoded
 * before the switch to libvips (checked: a junk byte before SOS decodes). */
static int load(image_format f, const uint8_t *buf, size_t len, int shrink, bool thumbnail,
                VipsImage **out)
{
    void *b = (void *)buf; /* libvips takes void *, and only reads */
    switch (f) {
    case IMAGE_FMT_JPEG:
        return vips_jpegload_buffer(b, len, out, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                    VIPS_FAIL_ON_TRUNCATED, "shrink", shrink, NULL);
    case IMAGE_FMT_PNG:
    case IMAGE_FMT_GIF:
    case IMAGE_FMT_TIFF:
        return plain_loader(f)(b, len, out, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    case IMAGE_FMT_WEBP:
        return vips_webpload_buffer(b, len, out, "access", VIPS_ACCESS_SEQUENTIAL, "memory", TRUE, "fail_on",
                                    VIPS_FAIL_ON_ERROR, NULL);
    case IMAGE_FMT_HEIF:
    case IMAGE_FMT_AVIF:
        return vips_heifload_buffer(b, len, out, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                    VIPS_FAIL_ON_ERROR, "thumbnail", thumbnail, NULL);
    default:
        vips_error("sight", "no loader");
        return -1;
    }
}

/* Any colour space, depth and band count into 3-band 8-bit sRGB. ICC
 * profiles are applied with --icc-to-srgb (a broken profile is ignored, as
 * browsers do); CMYK always goes through one (libvips' own without); alpha
 * is dropped, not composited, as the models take RGB. Images made here are
 * owned by ctx. */
/* Is there an ICC profile to convert (--icc-to-srgb, not sRGB already)? */
static bool wants_icc(VipsImage *x)
{
    const void *icc;
    size_t icc_len;
    return icc_to_srgb && vips_image_get_typeof(x, VIPS_META_ICC_NAME) &&
        vips_image_get_blob(x, VIPS_META_ICC_NAME, &icc, &icc_len) == 0 && !image_icc_is_srgb(icc, icc_len);
}

static int to_srgb8(VipsObject *ctx, VipsImage *in, VipsImage **out)
{
    VipsImage **t = (VipsImage **)vips_object_local_array(ctx, 6);
    VipsImage *x = in;
    if (wants_icc(x)) {
        if (vips_icc_transform(x, &t[0], "srgb", "embedded", TRUE, "intent",
                               VIPS_INTENT_RELATIVE, "depth", 8, NULL) == 0)
            x = t[0];
        else
            vips_error_clear();
    }
    VipsInterpretation ti = vips_image_guess_interpretation(x);
    bool plain = x->BandFmt == VIPS_FORMAT_UCHAR && (ti == VIPS_INTERPRETATION_sRGB || ti == VIPS_INTERPRETATION_B_W);
    if (!plain && vips_colourspace_issupported(x)) {
        if (vips_colourspace(x, &t[1], VIPS_INTERPRETATION_sRGB, NULL) != 0)
            return -1;
        x = t[1];
    }
    if (x->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_cast(x, &t[2], VIPS_FORMAT_UCHAR, "shift", TRUE, NULL) != 0)
            return -1;
        x = t[2];
    }
    if (x->Bands >= 3) {
        if (x->Bands > 3) {
            if (vips_extract_band(x, &t[3], 0, "n", 3, NULL) != 0)
                return -1;
            x = t[3];
        }
    } else {
        VipsImage *g = x;
        if (x->Bands == 2) { /* grey + alpha */
            if (vips_extract_band(x, &t[3], 0, NULL) != 0)
                return -1;
            g = t[3];
        }
        VipsImage *three[3] = {g, g, g};
        if (vips_bandjoin(three, &t[4], 3, NULL) != 0)
            return -1;
        x = t[4];
    }
    *out = x;
    return 0;
}

/* ---------------------------------------------------------------- decode */

/* Rows per request when rendering: enough to keep per-request overhead low,
 * few enough that the buffers of intermediate operations stay small. */
#define RENDER_ROWS 64

/* Computes x (3-band uchar) into a new malloc'd buffer (*out, w*h*3 bytes),
 * in this thread, strip by strip from the top: no libvips worker threads and
 * no second copy of the image. Sequential loaders are read in order, as they
 * require. Returns 0, or -1 with *out NULL (no memory) or set (libvips
 * failed, or *cancelled was set: checked between strips; the caller frees it). */
static int render(VipsImage *x, uint8_t **out, const atomic_bool *cancelled)
{
    size_t w = (size_t)x->Xsize, h = (size_t)x->Ysize, size = w * h * 3;
    *out = block_alloc(size);
    if (!*out)
        return -1;
        /* The buffer is written, never read, through dst; gcc takes the const
     * void * parameter for a read of uninitialised memory. */
#if defined(__GNUC__) && !defined(__clang__) /* clang has no such warning, and says so */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
    VipsImage *dst = vips_image_new_from_memory(*out, size, (int)w, (int)h, 3, VIPS_FORMAT_UCHAR);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    if (!dst)
        return -1;
    VipsRegion *from = vips_region_new(x), *to = vips_region_new(dst);
    VipsRect all = {0, 0, (int)w, (int)h};
    int rc = vips_region_image(to, &all);
    for (int y = 0; rc == 0 && y < (int)h; y += RENDER_ROWS) {
        if (cancelled && atomic_load(cancelled)) { /* the caller tells it from a failure */
            vips_image_set_kill(x, TRUE);
            rc = -1;
            break;
        }
        VipsRect strip = {0, y, (int)w, (int)h - y < RENDER_ROWS ? (int)h - y : RENDER_ROWS};
        rc = vips_region_prepare_to(from, to, &strip, 0, y);
    }
    g_object_unref(from);
    g_object_unref(to);
    g_object_unref(dst);
    return rc;
}

static image_status decode_bmp(const uint8_t *buf, size_t len, const image_decode_opts *opts,
                               image_t *out, char *msg, size_t msg_len)
{
    bmp_header h;
    char why[160];
    int rc = bmp_parse_header(buf, len, &h, why, sizeof why);
    if (rc != 0) {
        err_printf(msg, msg_len, "%s%s", rc == -2 ? "unsupported BMP: " : "", why);
        return rc == -2 ? IMAGE_UNSUPPORTED : IMAGE_CORRUPT;
    }
    image_status st = image_check_dims(h.width, h.height, opts, "BMP", msg, msg_len);
    if (st != IMAGE_OK)
        return st;
    uint8_t *px = malloc((size_t)h.width * h.height * 3);
    if (!px) {
        err_printf(msg, msg_len, "out of memory for a %ux%u image", (unsigned)h.width, (unsigned)h.height);
        return IMAGE_NO_MEMORY;
    }
    if (bmp_read(buf, len, &h, px, why, sizeof why) != 0) {
        free(px);
        err_printf(msg, msg_len, "%s", why);
        return IMAGE_CORRUPT;
    }
    out->pixels = px;
    out->width = out->orig_width = (int)h.width;
    out->height = out->orig_height = (int)h.height;
    return IMAGE_OK;
}

/* Can image_direct_* decode this file? JPEG in YCbCr, RGB or grey, still
 * WebP, and no ICC conversion to do (see direct.h). */
static bool direct_ok(image_format f, VipsImage *head)
{
    if (wants_icc(head))
        return false;
    if (f == IMAGE_FMT_JPEG)
        return (head->Bands == 3 || head->Bands == 1) && head->Type != VIPS_INTERPRETATION_CMYK;
    int pages = 1;
    if (f == IMAGE_FMT_WEBP && vips_image_get_typeof(head, VIPS_META_N_PAGES))
        vips_image_get_int(head, VIPS_META_N_PAGES, &pages);
    return f == IMAGE_FMT_WEBP && pages <= 1;
}

/* The pixels through libvips: shrink-on-load, ICC -> sRGB, 8-bit RGB, into
 * a new buffer (*px, *w x *h). Takes head. */
static image_status decode_pipeline(image_format f, const uint8_t *buf, size_t len, VipsImage *head, int shrink,
                                    bool thumbnail, bool swap, const image_decode_opts *opts, uint8_t **px,
                                    size_t *w, size_t *h, char *msg, size_t msg_len)
{
    VipsImage *img = head;
    if (shrink > 1) {
        VipsImage *small = NULL;
        if (load(f, buf, len, shrink, false, &small) == 0)
            img = small;
        else
            vips_error_clear(); /* decode at full size instead */
    } else if (thumbnail) {
        VipsImage *thumb = NULL;
        if (load(f, buf, len, 1, true, &thumb) == 0) {
            if (thumb->Xsize < head->Xsize && image_covers(opts, (uint64_t)thumb->Xsize, (uint64_t)thumb->Ysize, swap))
                img = thumb;
            else
                g_object_unref(thumb);
        } else {
            vips_error_clear();
        }
    }
    if (img != head)
        g_object_unref(head);

    VipsObject *ctx = VIPS_OBJECT(vips_image_new());
    VipsImage **t = (VipsImage **)vips_object_local_array(ctx, 1);
    t[0] = img; /* ctx owns it from here */
    VipsImage *x = NULL;
    image_status st = IMAGE_OK;
    *px = NULL;
    if (to_srgb8(ctx, img, &x) != 0) {
        vips_msg(f, "unsupported", msg, msg_len);
        st = IMAGE_UNSUPPORTED;
    } else {
        *w = (size_t)x->Xsize;
        *h = (size_t)x->Ysize;
        if (render(x, px, opts ? opts->cancelled : NULL) != 0) {
            st = *px ? vips_msg(f, "corrupt", msg, msg_len) : IMAGE_NO_MEMORY;
            if (!*px)
                err_printf(msg, msg_len, "out of memory for a %zux%zu image", *w, *h);
            else if (opts && opts->cancelled && atomic_load(opts->cancelled))
                st = IMAGE_CANCELLED, err_printf(msg, msg_len, "decode cancelled");
            free(*px);
            *px = NULL;
        }
    }
    g_object_unref(ctx);
    return st;
}

/* Turns px (w x h) upright for an EXIF orientation of 2..8, in memory
 * (rotation reads out of order): replaces *px, swaps w and h for 5..8. */
static image_status orient(image_format f, int orientation, uint8_t **px, size_t *w, size_t *h, char *msg,
                           size_t msg_len)
{
    VipsImage *mem = vips_image_new_from_memory(*px, *w * *h * 3, (int)*w, (int)*h, 3, VIPS_FORMAT_UCHAR);
    VipsImage *turned_img = NULL;
    uint8_t *turned = NULL;
    int rc = -1;
    if (mem) {
        vips_image_set_int(mem, VIPS_META_ORIENTATION, orientation);
        if (vips_autorot(mem, &turned_img, NULL) == 0)
            rc = render(turned_img, &turned, NULL);
    }
    /* Both point into *px: release them before freeing it. */
    VIPS_UNREF(turned_img);
    VIPS_UNREF(mem);
    block_free(*px);
    *px = NULL;
    if (rc != 0) {
        image_status st = turned ? vips_msg(f, "corrupt", msg, msg_len) : IMAGE_NO_MEMORY;
        if (!turned)
            err_printf(msg, msg_len, "out of memory rotating a %zux%zu image", *w, *h);
        free(turned);
        return st;
    }
    *px = turned;
    if (orientation >= 5) {
        size_t tmp = *w;
        *w = *h;
        *h = tmp;
    }
    return IMAGE_OK;
}

/* Orientation on the decoded pixels (px, w x h; fw x fh as stored), then
 * out. Takes px. */
static image_status finish(image_format f, image_status st, uint8_t *px, size_t w, size_t h, uint64_t fw,
                           uint64_t fh, int orientation, int found, image_t *out, char *msg, size_t msg_len)
{
    if (st == IMAGE_OK && orientation > 1)
        st = orient(f, orientation, &px, &w, &h, msg, msg_len);
    if (st != IMAGE_OK)
        return st;
    bool swap = orientation >= 5;
    out->pixels = px;
    out->width = (int)w;
    out->height = (int)h;
    out->orig_width = (int)(swap ? fh : fw);
    out->orig_height = (int)(swap ? fw : fh);
    out->exif_orientation = found;
    return IMAGE_OK;
}

static image_status decode_vips(image_format f, const uint8_t *buf, size_t len,
                                const image_decode_opts *opts, image_t *out, char *msg,
                                size_t msg_len)
{
    VipsImage *head = NULL;
    if (load(f, buf, len, 1, false, &head) != 0)
        return vips_msg(f, "corrupt", msg, msg_len);
    uint64_t fw = (uint64_t)head->Xsize, fh = (uint64_t)head->Ysize;
    image_status st = image_check_dims(fw, fh, opts, image_format_title(f), msg, msg_len);
    if (st == IMAGE_OK)
        st = image_check_heif_dims(f, fw, fh, opts, msg, msg_len);
    int orientation = vips_image_get_orientation(head), found = orientation;
    if (f == IMAGE_FMT_HEIF || f == IMAGE_FMT_AVIF) {
        found = image_heif_exif_orientation(head);
        orientation = image_heif_has_transform(buf, len) ? 1 : found;
    }
    if (orientation < 1 || orientation > 8)
        orientation = found = 1;
    bool swap = orientation >= 5;
    if (st != IMAGE_OK) {
        g_object_unref(head);
        return st;
    }

    /* Shrink-on-load: JPEG by DCT scaling (limits.h), HEIF by its thumbnail.
     * Not WebP: libwebp's scaled decoding decodes at full size, then
     * rescales, which costs more than the smaller letterbox saves (12 MP:
     * 95 ms against 90 at full size, make bench). */
    int shrink = f == IMAGE_FMT_JPEG ? image_jpeg_shrink(fw, fh, opts, swap) : 1;
    bool hint = opts && opts->min_width > 0 && opts->min_height > 0;
    bool thumbnail = hint && (f == IMAGE_FMT_HEIF || f == IMAGE_FMT_AVIF);

    uint8_t *px = NULL;
    size_t w = 0, h = 0;
    if (direct_ok(f, head)) {
        g_object_unref(head);
        int dw = 0, dh = 0;
        st = f == IMAGE_FMT_JPEG ? image_direct_jpeg(buf, len, shrink, opts ? opts->cancelled : NULL, &px, &dw, &dh, msg, msg_len)
                                 : image_direct_webp(buf, len, (int)fw, (int)fh, &px, msg, msg_len);
        w = f == IMAGE_FMT_JPEG ? (size_t)dw : fw;
        h = f == IMAGE_FMT_JPEG ? (size_t)dh : fh;
    } else {
        st = decode_pipeline(f, buf, len, head, shrink, thumbnail, swap, opts, &px, &w, &h, msg, msg_len);
    }
    return finish(f, st, px, w, h, fw, fh, orientation, found, out, msg, msg_len);
}

/* JPEG: the header by libjpeg (no libvips objects for a plain file), then
 * direct.c, with a colour JPEG's ICC profile applied by icc.c (to the whole
 * image here, or later to what the consumer reads: defer_icc); CMYK, and a
 * grey JPEG with a profile, through libvips. */
static image_status decode_jpeg(const uint8_t *buf, size_t len, const image_decode_opts *opts, image_t *out,
                                char *msg, size_t msg_len)
{
    image_jpeg_header jh;
    image_status st = image_direct_jpeg_header(buf, len, &jh, msg, msg_len);
    if (st != IMAGE_OK)
        return st;
    /* A profile whose chunks libjpeg cannot reassemble goes to libvips, as
     * before, which ignores it or reads what it can. */
    bool icc = icc_to_srgb && jh.has_icc;
    if (jh.cmyk || (icc && (jh.grey || !jh.icc))) {
        free(jh.icc);
        return decode_vips(IMAGE_FMT_JPEG, buf, len, opts, out, msg, msg_len);
    }
    st = image_check_dims(jh.width, jh.height, opts, "JPEG", msg, msg_len);
    /* The transform only for an image that will be decoded. */
    image_icc *xf = icc && st == IMAGE_OK ? image_icc_acquire(jh.icc, jh.icc_len) : NULL;
    free(jh.icc);
    int shrink = image_jpeg_shrink(jh.width, jh.height, opts, jh.orientation >= 5), w = 0, h = 0;
    uint8_t *px = NULL;
    if (st == IMAGE_OK)
        st = image_direct_jpeg(buf, len, shrink, opts ? opts->cancelled : NULL, &px, &w, &h, msg, msg_len);
    if (st == IMAGE_OK && xf && !(opts && opts->defer_icc)) {
        image_icc_apply(xf, px, (size_t)w * (size_t)h);
        image_icc_release(xf);
        xf = NULL;
    }
    st = finish(IMAGE_FMT_JPEG, st, px, (size_t)w, (size_t)h, jh.width, jh.height, jh.orientation,
                jh.orientation, out, msg, msg_len);
    if (st == IMAGE_OK)
        out->icc = xf;
    else
        image_icc_release(xf);
    return st;
}

image_status image_decode(const uint8_t *buf, size_t len, const image_decode_opts *opts,
                          image_t *out, char *msg, size_t msg_len)
{
    if (msg && msg_len > 0)
        msg[0] = '\0';
    if (!out) {
        err_printf(msg, msg_len, "no output image given");
        return IMAGE_CORRUPT;
    }
    memset(out, 0, sizeof *out);
    if (!buf || len == 0) {
        err_printf(msg, msg_len, "empty input");
        return IMAGE_EMPTY;
    }
    image_format f = image_sniff(buf, len);
    if (f == IMAGE_FMT_UNKNOWN) {
        const char *what = image_sniff_other(buf, len);
        if (what)
            err_printf(msg, msg_len, "%s is not a supported image format (" SUPPORTED_LIST ")", what);
        else
            err_printf(msg, msg_len, "not a " SUPPORTED_LIST " image");
        return IMAGE_UNSUPPORTED;
    }
    if (image_init(NULL) != 0) {
        err_printf(msg, msg_len, "image library failed to start");
        return IMAGE_NO_MEMORY;
    }
    /* What decoding will cost, from the header bytes, before any decoder runs. */
    image_status st = image_check_cost(f, buf, len, opts, msg, msg_len);
    if (st != IMAGE_OK)
        return st;
    st = f == IMAGE_FMT_BMP   ? decode_bmp(buf, len, opts, out, msg, msg_len)
        : f == IMAGE_FMT_JPEG ? decode_jpeg(buf, len, opts, out, msg, msg_len)
                              : decode_vips(f, buf, len, opts, out, msg, msg_len);
    if (st != IMAGE_OK) {
        memset(out, 0, sizeof *out);
        return st;
    }
    out->format = f;
    if (!out->exif_orientation)
        out->exif_orientation = 1;
    return IMAGE_OK;
}

void image_free(image_t *img)
{
    if (!img)
        return;
    block_free(img->pixels);
    image_icc_release(img->icc);
    memset(img, 0, sizeof *img);
}
