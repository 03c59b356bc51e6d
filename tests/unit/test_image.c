/* Unit tests for src/image (decode.c through libvips, bmp.c).
 *
 * Every test image is generated here with the libraries' own encoders, with
 * known pixel patterns, so results can be checked pixel by pixel. Inputs are
 * always handed to the decoder as an exact-size heap copy so that ASan and
 * valgrind flag any read past the end.
 *
 * If $SIGHT_TESTDATA/images exists, every image in it must decode too. */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <jpeglib.h>
#include <lcms2.h>
#include <math.h>
#include <png.h>
#include <webp/encode.h>

#include "check.h"
#include "image/decode.h"
#include "image/icc.h"
#include "image/icc_fast.h"

#include <vips/vips.h>

/* Under LeakSanitizer (make test-asan): x265, which libvips' heifsave uses to
 * write this test's HEIC inputs, keeps one allocation for the life of the
 * process (x265_malloc, never freed by design). Only the test encodes; the
 * server only decodes (libde265). Unused in other builds. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:x265_malloc\n";
}

/* ------------------------------------------------------------ helpers */

typedef struct {
    uint8_t *data;
    size_t len;
} blob;

static void blob_free(blob *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (!d) {
        perror("malloc");
        exit(2);
    }
    if (n)
        memcpy(d, p, n);
    return d;
}

static blob blob_dup(const uint8_t *p, size_t n)
{
    return (blob){dup_exact(p, n), n};
}

/* Decodes the first n bytes of b from an exact-size copy. */
static image_status dec_n(const blob *b, size_t n, const image_decode_opts *o, image_t *img,
                          char *msg, size_t msg_len)
{
    uint8_t *copy = dup_exact(b->data, n);
    image_status st = image_decode(copy, n, o, img, msg, msg_len);
    free(copy);
    return st;
}

static image_status dec(const blob *b, const image_decode_opts *o, image_t *img)
{
    char msg[256];
    return dec_n(b, b->len, o, img, msg, sizeof msg);
}

static int out_is_empty(const image_t *img)
{
    return img->pixels == NULL && img->width == 0 && img->height == 0;
}

/* Deterministic PRNG (xorshift64*) so failures reproduce. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const uint8_t *px_at(const image_t *img, int x, int y)
{
    return img->pixels + ((size_t)y * img->width + x) * 3;
}

static int near(const uint8_t *p, int r, int g, int b, int tol)
{
    return abs(p[0] - r) <= tol && abs(p[1] - g) <= tol && abs(p[2] - b) <= tol;
}

static void put16(uint8_t *p, unsigned v, int big)
{
    if (big) {
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
    } else {
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
    }
}

static void put32(uint8_t *p, uint32_t v, int big)
{
    if (big) {
        put16(p, v >> 16, 1);
        put16(p + 2, v & 0xFFFF, 1);
    } else {
        put16(p, v & 0xFFFF, 0);
        put16(p + 2, v >> 16, 0);
    }
}

/* CRC-32 (PNG/zlib polynomial), bitwise: the test then needs no -lz. */
static uint32_t crc32_buf(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

/* ----------------------------------------------------------- patterns */

/* Quadrants: top-left red, top-right green, bottom-left blue, bottom-right white. */
static const int quad_rgb[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};

static uint8_t *make_quadrants(int w, int h)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int q = (y >= h / 2) * 2 + (x >= w / 2);
            uint8_t *d = p + ((size_t)y * w + x) * 3;
            d[0] = (uint8_t)quad_rgb[q][0];
            d[1] = (uint8_t)quad_rgb[q][1];
            d[2] = (uint8_t)quad_rgb[q][2];
        }
    return p;
}

/* Every pixel distinct (for w, h <= 256): r = x, g = y. */
static uint8_t *make_gradient(int w, int h)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *d = p + ((size_t)y * w + x) * 3;
            d[0] = (uint8_t)x;
            d[1] = (uint8_t)y;
            d[2] = (uint8_t)((x * 7 + y * 13) & 255);
        }
    return p;
}

static uint8_t *make_noise(int w, int h)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        p[i] = (uint8_t)rnd();
    return p;
}

/* ----------------------------------------------------------- encoders */

static blob jpeg_encode(const uint8_t *px, int w, int h, int comps, J_COLOR_SPACE in_cs,
                        J_COLOR_SPACE jpeg_cs, int quality, int progressive,
                        const uint8_t *app1, size_t app1_len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *out = NULL;
    unsigned long outlen = 0;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &out, &outlen);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = in_cs;
    jpeg_set_defaults(&c);
    if (jpeg_cs != JCS_UNKNOWN)
        jpeg_set_colorspace(&c, jpeg_cs);
    jpeg_set_quality(&c, quality, TRUE);
    if (progressive)
        jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    if (app1)
        jpeg_write_marker(&c, JPEG_APP0 + 1, app1, (unsigned)app1_len);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    /* jpeg_mem_dest over-allocates; keep an exact copy. */
    blob b = blob_dup(out, outlen);
    free(out);
    return b;
}

static blob jpeg_rgb(const uint8_t *px, int w, int h, const uint8_t *app1, size_t app1_len)
{
    return jpeg_encode(px, w, h, 3, JCS_RGB, JCS_UNKNOWN, 95, 0, app1, app1_len);
}

/* A flat-colour JPEG (quality 100) carrying an ICC profile. */
static blob jpeg_flat_icc(const uint8_t rgb[3], int w, int h, const uint8_t *icc, size_t icc_len)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++)
        memcpy(px + (size_t)i * 3, rgb, 3);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *out = NULL;
    unsigned long outlen = 0;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &out, &outlen);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    jpeg_write_icc_profile(&c, icc, (unsigned)icc_len);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    blob b = blob_dup(out, outlen);
    free(out);
    free(px);
    return b;
}

typedef struct {
    uint8_t *data;
    size_t len, cap;
} wbuf;

static void png_wr(png_structp png, png_bytep d, size_t n)
{
    wbuf *b = png_get_io_ptr(png);
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, d, n);
    b->len += n;
}

static void png_fl(png_structp png)
{
    (void)png;
}

typedef struct {
    int w, h, color, depth, interlace;
    const uint8_t *rows; /* PNG-format row bytes (big-endian 16-bit, packed sub-byte) */
    size_t stride;
    const png_color *pal;
    int npal;
    const uint8_t *trns; /* palette alpha */
    int ntrns;
    const png_color_16 *trns_color;
    const uint8_t *exif;
    size_t exif_len;
} png_spec;

static blob png_encode(const png_spec *s)
{
    wbuf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_bytep *rows = malloc(sizeof *rows * (size_t)s->h);
    if (setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "test PNG encoder failed\n");
        exit(2);
    }
    png_set_write_fn(png, &b, png_wr, png_fl);
    png_set_IHDR(png, info, (png_uint_32)s->w, (png_uint_32)s->h, s->depth, s->color, s->interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->pal)
        png_set_PLTE(png, info, s->pal, s->npal);
    if (s->trns || s->trns_color)
        png_set_tRNS(png, info, s->trns, s->ntrns, s->trns_color);
    if (s->exif)
        png_set_eXIf_1(png, info, (png_uint_32)s->exif_len, (png_bytep)s->exif);
    png_write_info(png, info);
    for (int y = 0; y < s->h; y++)
        rows[y] = (png_bytep)(s->rows + (size_t)y * s->stride);
    png_write_image(png, rows); /* does the Adam7 passes itself */
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    blob out = blob_dup(b.data, b.len);
    free(b.data);
    return out;
}

static blob png_rgb(const uint8_t *px, int w, int h, int interlace, const uint8_t *exif,
                    size_t exif_len)
{
    png_spec s = {.w = w, .h = h, .color = PNG_COLOR_TYPE_RGB, .depth = 8, .interlace = interlace, .rows = px, .stride = (size_t)w * 3, .exif = exif, .exif_len = exif_len};
    return png_encode(&s);
}

static blob webp_lossless(const uint8_t *px, int w, int h)
{
    uint8_t *out = NULL;
    size_t n = WebPEncodeLosslessRGB(px, w, h, w * 3, &out);
    if (!n) {
        fprintf(stderr, "WebPEncodeLosslessRGB failed\n");
        exit(2);
    }
    blob b = blob_dup(out, n);
    WebPFree(out);
    return b;
}

static void le24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
}

/* Rewraps a simple-format WebP as extended (VP8X) with an EXIF chunk. */
static blob webp_with_exif(const blob *simple, int w, int h, const uint8_t *exif, size_t exif_len)
{
    size_t body = simple->len - 12, pad = exif_len & 1;
    size_t total = 12 + 18 + body + 8 + exif_len + pad;
    uint8_t *o = calloc(1, total);
    memcpy(o, "RIFF", 4);
    put32(o + 4, (uint32_t)(total - 8), 0);
    memcpy(o + 8, "WEBP", 4);
    memcpy(o + 12, "VP8X", 4);
    put32(o + 16, 10, 0);
    o[20] = 0x08; /* EXIF present */
    le24(o + 24, (uint32_t)w - 1);
    le24(o + 27, (uint32_t)h - 1);
    memcpy(o + 30, simple->data + 12, body);
    uint8_t *p = o + 30 + body;
    memcpy(p, "EXIF", 4);
    put32(p + 4, (uint32_t)exif_len, 0);
    memcpy(p + 8, exif, exif_len);
    return (blob){o, total};
}

/* "Exif\0\0" (when prefix) + a TIFF block whose IFD0 holds Make (out of
 * line), Orientation and Software (inline), like a camera would write. */
static size_t make_exif(uint8_t *out, int big, unsigned orientation, int type, int prefix)
{
    uint8_t *t = out;
    if (prefix) {
        memcpy(out, "Exif\0\0", 6);
        t += 6;
    }
    memset(t, 0, 56);
    t[0] = t[1] = big ? 'M' : 'I';
    put16(t + 2, 42, big);
    put32(t + 4, 8, big);
    put16(t + 8, 3, big);
    uint8_t *e = t + 10;
    put16(e, 0x010F, big);
    put16(e + 2, 2, big);
    put32(e + 4, 6, big);
    put32(e + 8, 50, big);
    e += 12;
    put16(e, 0x0112, big);
    put16(e + 2, (unsigned)type, big);
    put32(e + 4, 1, big);
    if (type == 3)
        put16(e + 8, orientation, big);
    else
        put32(e + 8, orientation, big);
    e += 12;
    put16(e, 0x0131, big);
    put16(e + 2, 2, big);
    put32(e + 4, 4, big);
    memcpy(e + 8, "abc", 4);
    put32(t + 46, 0, big);
    memcpy(t + 50, "Sight", 6);
    return (size_t)(prefix ? 6 : 0) + 56;
}

/* -------------------------------------------------------- orientation */

/* Where the stored image's top-left, top-right and bottom-left corners are
 * shown, in units of (display width - 1, display height - 1). Derived from
 * the EXIF 2.3 wording for tag 0x0112 ("the 0th row represents the visual X
 * side, the 0th column the visual Y side"); e.g. 6: row 0 = right side, column
 * 0 = top, so stored TL is shown top-right, stored TR bottom-right, stored BL
 * top-left: a 90 degree clockwise turn. */
static const int corner_pos[9][3][2] = {
    {{0, 0}, {1, 0}, {0, 1}},
    {{0, 0}, {1, 0}, {0, 1}}, /* 1 row0 top,    col0 left  */
    {{1, 0}, {0, 0}, {1, 1}}, /* 2 row0 top,    col0 right */
    {{1, 1}, {0, 1}, {1, 0}}, /* 3 row0 bottom, col0 right */
    {{0, 1}, {1, 1}, {0, 0}}, /* 4 row0 bottom, col0 left  */
    {{0, 0}, {0, 1}, {1, 0}}, /* 5 row0 left,   col0 top   */
    {{1, 0}, {1, 1}, {0, 0}}, /* 6 row0 right,  col0 top   */
    {{1, 1}, {1, 0}, {0, 1}}, /* 7 row0 right,  col0 bottom */
    {{0, 1}, {0, 0}, {1, 1}}, /* 8 row0 left,   col0 bottom */
};

/* Display position of stored pixel (x, y): the map is affine, fixed by the corners. */
static void shown_at(int o, int x, int y, int dw, int dh, int *dx, int *dy)
{
    const int(*c)[2] = corner_pos[o];
    *dx = c[0][0] * (dw - 1) + x * (c[1][0] - c[0][0]) + y * (c[2][0] - c[0][0]);
    *dy = c[0][1] * (dh - 1) + x * (c[1][1] - c[0][1]) + y * (c[2][1] - c[0][1]);
}

/* Lossless formats: every stored pixel must appear exactly where the map says. */
static int oriented_mismatches(const image_t *img, const uint8_t *stored, int w, int h, int o)
{
    int swap = o >= 5, bad = 0;
    if (img->width != (swap ? h : w) || img->height != (swap ? w : h))
        return -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int dx, dy;
            shown_at(o, x, y, img->width, img->height, &dx, &dy);
            if (dx < 0 || dy < 0 || dx >= img->width || dy >= img->height ||
                memcmp(px_at(img, dx, dy), stored + ((size_t)y * w + x) * 3, 3) != 0)
                bad++;
        }
    return bad;
}

/* Lossy: sample each quadrant a few pixels in from its stored corner. */
/* CMYK goes through a press profile (libvips' built-in CMYK profile when the
 * file has none), whose gamut is smaller than sRGB's: compare hues, i.e.
 * which channel dominates, and that white stays light. */
static int quadrant_hue_mismatches(const image_t *img, int w, int h)
{
    int bad = 0;
    const int xs[2] = {4, w - 5}, ys[2] = {4, h - 5};
    for (int q = 0; q < 4; q++) {
        const uint8_t *p = px_at(img, xs[q & 1], ys[q >> 1]);
        int ok;
        if (q == 3) {
            ok = p[0] > 200 && p[1] > 200 && p[2] > 200;
        } else {
            int top = p[0] >= p[1] && p[0] >= p[2] ? 0 : p[1] >= p[2] ? 1
                                                                      : 2;
            ok = top == q && p[q] > 100;
        }
        if (!ok) {
            fprintf(stderr, "  CMYK quadrant %d: %d,%d,%d\n", q, p[0], p[1], p[2]);
            bad++;
        }
    }
    return bad;
}

static int quadrant_mismatches(const image_t *img, int w, int h, int o)
{
    static const int inset = 4;
    int bad = 0;
    const int xs[2] = {inset, w - 1 - inset}, ys[2] = {inset, h - 1 - inset};
    for (int q = 0; q < 4; q++) {
        int dx, dy;
        shown_at(o, xs[q & 1], ys[q >> 1], img->width, img->height, &dx, &dy);
        const uint8_t *p = px_at(img, dx, dy);
        if (!near(p, quad_rgb[q][0], quad_rgb[q][1], quad_rgb[q][2], 48)) {
            fprintf(stderr, "  orientation %d quadrant %d at (%d,%d): %d,%d,%d\n", o, q, dx, dy,
                    p[0], p[1], p[2]);
            bad++;
        }
    }
    return bad;
}

/* -------------------------------------------------------------- tests */

static size_t find_marker(const blob *b, uint8_t code);

static void test_names(void)
{
    CHECK_STR(image_status_code(IMAGE_OK), "ok");
    CHECK_STR(image_status_code(IMAGE_EMPTY), "empty_file");
    CHECK_STR(image_status_code(IMAGE_UNSUPPORTED), "unsupported_image");
    CHECK_STR(image_status_code(IMAGE_CORRUPT), "corrupt_image");
    CHECK_STR(image_status_code(IMAGE_TOO_LARGE), "image_too_large");
    CHECK_STR(image_status_code(IMAGE_NO_MEMORY), "out_of_memory");
    CHECK_STR(image_format_name(IMAGE_FMT_JPEG), "jpeg");
    CHECK_STR(image_format_name(IMAGE_FMT_PNG), "png");
    CHECK_STR(image_format_name(IMAGE_FMT_WEBP), "webp");
    CHECK_STR(image_format_name(IMAGE_FMT_UNKNOWN), "unknown");

    static const uint8_t j[] = {0xFF, 0xD8, 0xFF, 0xE0};
    static const uint8_t p[] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    static const uint8_t w[] = {'R', 'I', 'F', 'F', 1, 2, 3, 4, 'W', 'E', 'B', 'P'};
    static const uint8_t a[] = {'R', 'I', 'F', 'F', 1, 2, 3, 4, 'W', 'A', 'V', 'E'};
    CHECK_EQ_INT(image_sniff(j, sizeof j), IMAGE_FMT_JPEG);
    CHECK_EQ_INT(image_sniff(j, 2), IMAGE_FMT_UNKNOWN);
    CHECK_EQ_INT(image_sniff(p, sizeof p), IMAGE_FMT_PNG);
    CHECK_EQ_INT(image_sniff(p, 7), IMAGE_FMT_UNKNOWN);
    CHECK_EQ_INT(image_sniff(w, sizeof w), IMAGE_FMT_WEBP);
    CHECK_EQ_INT(image_sniff(w, 11), IMAGE_FMT_UNKNOWN);
    CHECK_EQ_INT(image_sniff(a, sizeof a), IMAGE_FMT_UNKNOWN);
    CHECK_EQ_INT(image_sniff(NULL, 0), IMAGE_FMT_UNKNOWN);
}

static void test_empty_and_garbage(void)
{
    image_t img;
    char msg[128];
    uint8_t one = 0;
    CHECK_EQ_INT(image_decode(&one, 0, NULL, &img, msg, sizeof msg), IMAGE_EMPTY);
    CHECK(out_is_empty(&img));
    CHECK(msg[0] != '\0');
    CHECK_EQ_INT(image_decode(NULL, 0, NULL, &img, NULL, 0), IMAGE_EMPTY);

    /* Random bytes that start with no known magic. */
    blob g = {malloc(4096), 4096};
    for (size_t i = 0; i < g.len; i++)
        g.data[i] = (uint8_t)rnd();
    g.data[0] = 'x';
    CHECK_EQ_INT(dec_n(&g, g.len, NULL, &img, msg, sizeof msg), IMAGE_UNSUPPORTED);
    CHECK_STR(msg, "not a JPEG, PNG, WebP, HEIC/HEIF, AVIF, GIF, TIFF or BMP image");
    CHECK(out_is_empty(&img));
    CHECK_EQ_INT(dec_n(&g, 1, NULL, &img, msg, sizeof msg), IMAGE_UNSUPPORTED);

    /* Known magic followed by garbage: recognised, but broken. */
    static const uint8_t jpg[] = {0xFF, 0xD8, 0xFF};
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    static const uint8_t webp[] = {'R', 'I', 'F', 'F', 0xF0, 0x0F, 0, 0, 'W', 'E', 'B', 'P'};
    const struct {
        const uint8_t *magic;
        size_t n;
    } heads[] = {
        {jpg, sizeof jpg}, {png, sizeof png}, {webp, sizeof webp}};
    for (int round = 0; round < 20; round++)
        for (size_t k = 0; k < 3; k++) {
            for (size_t i = 0; i < g.len; i++)
                g.data[i] = round == 0 ? 0 : (uint8_t)rnd();
            memcpy(g.data, heads[k].magic, heads[k].n);
            image_status st = dec_n(&g, g.len, NULL, &img, msg, sizeof msg);
            /* Random bytes may make a header that claims a cost over the
             * budget (a JPEG of 6 components): refused for that first. */
            CHECK(st == IMAGE_CORRUPT || st == IMAGE_UNSUPPORTED || st == IMAGE_TOO_COMPLEX);
            if (round == 0)
                CHECK_EQ_INT(st, IMAGE_CORRUPT);
            CHECK(out_is_empty(&img));
            CHECK(msg[0] != '\0');
        }
    blob_free(&g);

    /* image_free is safe on a failed result and twice. */
    image_free(&img);
    image_free(&img);
    image_free(NULL);
}

static void test_tiny(void)
{
    const uint8_t px[3] = {200, 40, 90};
    image_t img;
    blob b[3] = {jpeg_rgb(px, 1, 1, NULL, 0), png_rgb(px, 1, 1, PNG_INTERLACE_NONE, NULL, 0),
                 webp_lossless(px, 1, 1)};
    const image_format fmts[3] = {IMAGE_FMT_JPEG, IMAGE_FMT_PNG, IMAGE_FMT_WEBP};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(dec(&b[i], NULL, &img), IMAGE_OK);
        CHECK_EQ_INT(img.format, fmts[i]);
        CHECK_EQ_INT(img.width, 1);
        CHECK_EQ_INT(img.height, 1);
        CHECK_EQ_INT(img.orig_width, 1);
        CHECK_EQ_INT(img.orig_height, 1);
        CHECK_EQ_INT(img.exif_orientation, 1);
        CHECK(img.pixels && near(img.pixels, 200, 40, 90, i == 0 ? 12 : 0));
        image_free(&img);
        CHECK(img.pixels == NULL);
        blob_free(&b[i]);
    }
}

static void test_jpeg_variants(void)
{
    image_t img;
    const int w = 64, h = 32;
    uint8_t *q = make_quadrants(w, h);

    /* Baseline and progressive RGB. */
    for (int prog = 0; prog < 2; prog++) {
        blob b = jpeg_encode(q, w, h, 3, JCS_RGB, JCS_UNKNOWN, 95, prog, NULL, 0);
        CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
        CHECK_EQ_INT(img.width, w);
        CHECK_EQ_INT(img.height, h);
        CHECK_EQ_INT(quadrant_mismatches(&img, w, h, 1), 0);
        image_free(&img);
        blob_free(&b);
    }

    /* Greyscale JPEG comes out as RGB with r == g == b. */
    uint8_t *grey = malloc((size_t)w * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            grey[y * w + x] = x < w / 2 ? 30 : 220;
    blob g = jpeg_encode(grey, w, h, 1, JCS_GRAYSCALE, JCS_UNKNOWN, 95, 0, NULL, 0);
    CHECK_EQ_INT(dec(&g, NULL, &img), IMAGE_OK);
    if (img.pixels) {
        int equal = 1;
        for (int i = 0; i < w * h; i++)
            equal &= img.pixels[i * 3] == img.pixels[i * 3 + 1] &&
                img.pixels[i * 3] == img.pixels[i * 3 + 2];
        CHECK(equal);
        CHECK(near(px_at(&img, 4, 4), 30, 30, 30, 6));
        CHECK(near(px_at(&img, w - 5, h - 5), 220, 220, 220, 6));
    }
    image_free(&img);
    blob_free(&g);
    free(grey);

    /* CMYK and YCCK (as Photoshop writes them: Adobe marker, inverted values)
     * are converted to RGB through a CMYK profile. Ink amounts are 255 - stored value. */
    uint8_t *cmyk = malloc((size_t)w * h * 4);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *d = cmyk + ((size_t)y * w + x) * 4;
            int qd = (y >= h / 2) * 2 + (x >= w / 2);
            /* ink = 255 - rgb, no black; stored inverted = rgb itself */
            d[0] = (uint8_t)quad_rgb[qd][0];
            d[1] = (uint8_t)quad_rgb[qd][1];
            d[2] = (uint8_t)quad_rgb[qd][2];
            d[3] = 255; /* no black ink */
        }
    for (int ycck = 0; ycck < 2; ycck++) {
        blob c = jpeg_encode(cmyk, w, h, 4, JCS_CMYK, ycck ? JCS_YCCK : JCS_CMYK, 95, 0, NULL, 0);
        CHECK_EQ_INT(dec(&c, NULL, &img), IMAGE_OK);
        CHECK_EQ_INT(img.width, w);
        if (img.pixels)
            CHECK_EQ_INT(quadrant_hue_mismatches(&img, w, h), 0);
        image_free(&img);
        blob_free(&c);
    }
    free(cmyk);
    free(q);
}

/* JPEG streams that are valid-ish but hostile or unusual. */
static void test_jpeg_edges(void)
{
    image_t img;
    char msg[256];
    const int w = 32, h = 16;
    uint8_t *q = make_quadrants(w, h);

    /* Trailing junk after EOI is ignored. */
    blob b = jpeg_rgb(q, w, h, NULL, 0);
    blob t = {malloc(b.len + 100), b.len + 100};
    memcpy(t.data, b.data, b.len);
    memset(t.data + b.len, 0xAB, 100);
    CHECK_EQ_INT(dec(&t, NULL, &img), IMAGE_OK);
    CHECK_EQ_INT(quadrant_mismatches(&img, w, h, 1), 0);
    image_free(&img);
    blob_free(&t);

    /* 12-bit precision and lossless (SOF3) are valid JPEG this build of
     * libjpeg cannot decode: unsupported, not corrupt. */
    size_t sof = find_marker(&b, 0xC0);
    CHECK(sof > 0);
    t = blob_dup(b.data, b.len);
    t.data[sof + 4] = 12;
    CHECK_EQ_INT(dec_n(&t, t.len, NULL, &img, msg, sizeof msg), IMAGE_UNSUPPORTED);
    CHECK(strstr(msg, "precision") != NULL);
    memcpy(t.data, b.data, b.len);
    t.data[sof + 1] = 0xC3;
    CHECK_EQ_INT(dec(&t, NULL, &img), IMAGE_UNSUPPORTED);
    CHECK(out_is_empty(&img));
    blob_free(&t);
    blob_free(&b);

    /* Progressive scan bomb: the last scan repeated. Each repeat is a libjpeg
     * warning (bogus progression); a few may decode, hundreds are refused
     * from the markers before decoding (cost.h: over 500 scans). */
    b = jpeg_encode(q, w, h, 3, JCS_RGB, JCS_UNKNOWN, 90, 1, NULL, 0);
    size_t last = 0;
    for (size_t i = 2; i + 1 < b.len; i++)
        if (b.data[i] == 0xFF && b.data[i + 1] == 0xDA)
            last = i;
    CHECK(last > 0);
    size_t scan = b.len - 2 - last;
    const int reps[2] = {10, 600};
    for (int r = 0; r < 2; r++) {
        t.len = last + (size_t)reps[r] * scan + 2;
        t.data = malloc(t.len);
        memcpy(t.data, b.data, last);
        for (int k = 0; k < reps[r]; k++)
            memcpy(t.data + last + (size_t)k * scan, b.data + last, scan);
        t.data[t.len - 2] = 0xFF;
        t.data[t.len - 1] = 0xD9;
        image_status st = dec_n(&t, t.len, NULL, &img, msg, sizeof msg);
        if (r == 0) {
            CHECK(st == IMAGE_OK || st == IMAGE_CORRUPT);
            if (st == IMAGE_OK)
                CHECK_EQ_INT(quadrant_mismatches(&img, w, h, 1), 0);
        } else {
            CHECK_EQ_INT(st, IMAGE_TOO_COMPLEX);
            CHECK(strstr(msg, "scans, over the limit of 500") != NULL);
        }
        image_free(&img);
        blob_free(&t);
    }
    blob_free(&b);
    free(q);
}

static void test_png_variants(void)
{
    image_t img;
    const int w = 13, h = 9;
    uint8_t rows[9 * 13 * 8];

    /* 8-bit grey -> r == g == b == value. */
    for (int i = 0; i < w * h; i++)
        rows[i] = (uint8_t)(i * 2);
    png_spec s = {.w = w, .h = h, .color = PNG_COLOR_TYPE_GRAY, .depth = 8, .rows = rows, .stride = (size_t)w};
    blob b = png_encode(&s);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    int ok = img.pixels != NULL;
    for (int i = 0; ok && i < w * h; i++)
        ok = near(img.pixels + i * 3, i * 2, i * 2, i * 2, 0);
    CHECK(ok);
    image_free(&img);
    blob_free(&b);

    /* 16-bit grey, big-endian samples: scaled to 8 bits (rounded). */
    for (int i = 0; i < w * h; i++) {
        unsigned v = (unsigned)(i * 557) & 0xFFFF;
        rows[i * 2] = (uint8_t)(v >> 8);
        rows[i * 2 + 1] = (uint8_t)v;
    }
    s = (png_spec){.w = w, .h = h, .color = PNG_COLOR_TYPE_GRAY, .depth = 16, .rows = rows, .stride = (size_t)w * 2};
    b = png_encode(&s);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    ok = img.pixels != NULL;
    for (int i = 0; ok && i < w * h; i++) {
        int v = (int)(((unsigned)(i * 557) & 0xFFFF) * 255.0 / 65535.0 + 0.5);
        ok = near(img.pixels + i * 3, v, v, v, 1);
    }
    CHECK(ok);
    image_free(&img);
    blob_free(&b);

    /* 1-bit grey: packed, MSB first; black/white checkerboard by column. */
    memset(rows, 0, sizeof rows);
    size_t st1 = ((size_t)w + 7) / 8;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if ((x + y) & 1)
                rows[y * st1 + x / 8] |= (uint8_t)(0x80 >> (x % 8));
    s = (png_spec){.w = w, .h = h, .color = PNG_COLOR_TYPE_GRAY, .depth = 1, .rows = rows, .stride = st1};
    b = png_encode(&s);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    ok = img.pixels != NULL;
    for (int y = 0; ok && y < h; y++)
        for (int x = 0; ok && x < w; x++) {
            int v = ((x + y) & 1) ? 255 : 0;
            ok = near(px_at(&img, x, y), v, v, v, 0);
        }
    CHECK(ok);
    image_free(&img);
    blob_free(&b);

    /* Grey + alpha: alpha dropped, grey kept even where fully transparent. */
    for (int i = 0; i < w * h; i++) {
        rows[i * 2] = (uint8_t)(100 + i);
        rows[i * 2 + 1] = (uint8_t)(i & 1 ? 0 : 255);
    }
    s = (png_spec){.w = w, .h = h, .color = PNG_COLOR_TYPE_GRAY_ALPHA, .depth = 8, .rows = rows, .stride = (size_t)w * 2};
    b = png_encode(&s);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    ok = img.pixels != NULL;
    for (int i = 0; ok && i < w * h; i++)
        ok = near(img.pixels + i * 3, 100 + i, 100 + i, 100 + i, 0);
    CHECK(ok);
    image_free(&img);
    blob_free(&b);

    /* Palette with tRNS: palette colours, transparency ignored. */
    const png_color pal[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
    const uint8_t trns[4] = {0, 128, 255, 7};
    for (int i = 0; i < w * h; i++)
        rows[i] = (uint8_t)(i % 4);
    s = (png_spec){.w = w, .h = h, .color = PNG_COLOR_TYPE_PALETTE, .depth = 8, .rows = rows, .stride = (size_t)w, .pal = pal, .npal = 4, .trns = trns, .ntrns = 4};
    b = png_encode(&s);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    ok = img.pixels != NULL;
    for (int i = 0; ok && i < w * h; i++) {
        const png_color *c = &pal[i % 4];
        ok = near(img.pixels + i * 3, c->red, c->green, c->blue, 0);
    }
    CHECK(ok);
    image_free(&img);
    blob_free(&b);

    /* 2-bit palette (packed indices, MSB first), with tRNS, interlaced. */
    memset(rows, 0, sizeof rows);
    size_t st2 = ((size_t)w * 2 + 7) / 8;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            rows[y * st2 + x / 4] |= (uint8_t)(((x + 2 * y) % 4) << (6 - 2 * (x % 4)));
    s = (png_spec){.w = w, .h = h, .color = PNG_COLOR_TYPE_PALETTE, .depth = 2, .rows = rows, .stride = st2, .pal = pal, .npal = 4, .trns = trns, .ntrns = 2, .interlace = PNG_INTERLACE_ADAM7};
    b = png_encode(&s);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    ok = img.pixels != NULL;
    for (int y = 0; ok && y < h; y++)
        for (int x = 0; ok && x < w; x++) {
            const png_color *c = &pal[(x + 2 * y) % 4];
            ok = near(px_at(&img, x, y), c->red, c->green, c->blue, 0);
        }
    CHECK(ok);
    image_free(&img);
    blob_free(&b);

    /* RGB with a tRNS colour key: ignored. */
    uint8_t *grad = make_gradient(w, h);
    const png_color_16 key = {.red = 0, .green = 0, .blue = 0};
    s = (png_spec){.w = w, .h = h, .color = PNG_COLOR_TYPE_RGB, .depth = 8, .rows = grad, .stride = (size_t)w * 3, .trns_color = &key};
    b = png_encode(&s);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    CHECK(img.pixels && memcmp(img.pixels, grad, (size_t)w * h * 3) == 0);
    image_free(&img);
    blob_free(&b);

    /* RGBA: alpha dropped, colour of transparent pixels kept. */
    for (int i = 0; i < w * h; i++) {
        memcpy(rows + i * 4, grad + i * 3, 3);
        rows[i * 4 + 3] = (uint8_t)(i % 3 == 0 ? 0 : 200);
    }
    s = (png_spec){.w = w, .h = h, .color = PNG_COLOR_TYPE_RGB_ALPHA, .depth = 8, .rows = rows, .stride = (size_t)w * 4};
    b = png_encode(&s);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    CHECK(img.pixels && memcmp(img.pixels, grad, (size_t)w * h * 3) == 0);
    image_free(&img);
    blob_free(&b);

    /* 16-bit RGBA: high bytes carry the gradient. */
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 4; c++) {
            rows[i * 8 + c * 2] = c < 3 ? grad[i * 3 + c] : 0xFF;
            rows[i * 8 + c * 2 + 1] = c < 3 ? grad[i * 3 + c] : 0xFF; /* v * 257 scales back to v */
        }
    s = (png_spec){.w = w, .h = h, .color = PNG_COLOR_TYPE_RGB_ALPHA, .depth = 16, .rows = rows, .stride = (size_t)w * 8};
    b = png_encode(&s);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    CHECK(img.pixels && memcmp(img.pixels, grad, (size_t)w * h * 3) == 0);
    image_free(&img);
    blob_free(&b);

    /* Interlaced (Adam7), odd size so every pass is partial. */
    b = png_rgb(grad, w, h, PNG_INTERLACE_ADAM7, NULL, 0);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    CHECK_EQ_INT(img.width, w);
    CHECK_EQ_INT(img.height, h);
    CHECK(img.pixels && memcmp(img.pixels, grad, (size_t)w * h * 3) == 0);
    image_free(&img);
    blob_free(&b);

    /* min_width/min_height only applies to JPEG: PNG stays full size. */
    b = png_rgb(grad, w, h, PNG_INTERLACE_NONE, NULL, 0);
    image_decode_opts o = {.min_width = 2, .min_height = 2};
    CHECK_EQ_INT(dec(&b, &o, &img), IMAGE_OK);
    CHECK_EQ_INT(img.width, w);
    image_free(&img);
    blob_free(&b);
    free(grad);
}

static void test_webp_variants(void)
{
    image_t img;
    const int w = 37, h = 23;
    uint8_t *grad = make_gradient(w, h);

    blob b = webp_lossless(grad, w, h);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    CHECK_EQ_INT(img.format, IMAGE_FMT_WEBP);
    CHECK_EQ_INT(img.width, w);
    CHECK_EQ_INT(img.height, h);
    CHECK(img.pixels && memcmp(img.pixels, grad, (size_t)w * h * 3) == 0);
    image_free(&img);
    blob_free(&b);

    /* Lossless RGBA: alpha dropped, colour kept (exact=1 keeps it under alpha 0). */
    uint8_t *rgba = malloc((size_t)w * h * 4);
    for (int i = 0; i < w * h; i++) {
        memcpy(rgba + i * 4, grad + i * 3, 3);
        rgba[i * 4 + 3] = (uint8_t)(i & 1 ? 255 : 60);
    }
    uint8_t *out = NULL;
    size_t n = WebPEncodeLosslessRGBA(rgba, w, h, w * 4, &out);
    CHECK(n > 0);
    b = blob_dup(out, n);
    WebPFree(out);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    CHECK(img.pixels && memcmp(img.pixels, grad, (size_t)w * h * 3) == 0);
    image_free(&img);
    blob_free(&b);
    free(rgba);

    /* Lossy. */
    uint8_t *q = make_quadrants(64, 32);
    n = WebPEncodeRGB(q, 64, 32, 64 * 3, 95, &out);
    CHECK(n > 0);
    b = blob_dup(out, n);
    WebPFree(out);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    CHECK_EQ_INT(img.width, 64);
    if (img.pixels)
        CHECK_EQ_INT(quadrant_mismatches(&img, 64, 32, 1), 0);
    image_free(&img);
    blob_free(&b);
    free(q);
    free(grad);
}

static void test_orientation(void)
{
    image_t img;
    uint8_t exif[80];

    /* JPEG: APP1 Exif, both byte orders, SHORT and LONG values. */
    const int w = 64, h = 32;
    uint8_t *q = make_quadrants(w, h);
    for (int o = 1; o <= 8; o++)
        for (int big = 0; big < 2; big++) {
            size_t n = make_exif(exif, big, (unsigned)o, big ? 3 : (o == 6 ? 4 : 3), 1);
            blob b = jpeg_rgb(q, w, h, exif, n);
            CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
            CHECK_EQ_INT(img.exif_orientation, o);
            int swap = o >= 5;
            CHECK_EQ_INT(img.width, swap ? h : w);
            CHECK_EQ_INT(img.height, swap ? w : h);
            CHECK_EQ_INT(img.orig_width, swap ? h : w);
            CHECK_EQ_INT(img.orig_height, swap ? w : h);
            if (img.pixels && img.width == (swap ? h : w))
                CHECK_EQ_INT(quadrant_mismatches(&img, w, h, o), 0);
            image_free(&img);
            blob_free(&b);
        }
    free(q);

    /* An XMP APP1 before the Exif APP1 does not hide it. */
    {
        uint8_t *px = make_quadrants(16, 16);
        struct jpeg_compress_struct c;
        struct jpeg_error_mgr e;
        unsigned char *out = NULL;
        unsigned long outlen = 0;
        c.err = jpeg_std_error(&e);
        jpeg_create_compress(&c);
        jpeg_mem_dest(&c, &out, &outlen);
        c.image_width = c.image_height = 16;
        c.input_components = 3;
        c.in_color_space = JCS_RGB;
        jpeg_set_defaults(&c);
        jpeg_start_compress(&c, TRUE);
        static const char xmp[] = "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>";
        jpeg_write_marker(&c, JPEG_APP0 + 1, (const JOCTET *)xmp, sizeof xmp);
        size_t n = make_exif(exif, 1, 8, 3, 1);
        jpeg_write_marker(&c, JPEG_APP0 + 1, exif, (unsigned)n);
        for (int y = 0; y < 16; y++) {
            JSAMPROW row = px + y * 48;
            jpeg_write_scanlines(&c, &row, 1);
        }
        jpeg_finish_compress(&c);
        jpeg_destroy_compress(&c);
        blob b = blob_dup(out, outlen);
        free(out);
        CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
        CHECK_EQ_INT(img.exif_orientation, 8);
        image_free(&img);
        blob_free(&b);
        free(px);
    }

    /* PNG eXIf and WebP EXIF chunk: lossless, so check every pixel. The PNG
     * chunk holds bare TIFF; the WebP one alternates with and without the
     * "Exif\0\0" prefix that some writers add. */
    const int gw = 11, gh = 6;
    uint8_t *grad = make_gradient(gw, gh);
    blob simple = webp_lossless(grad, gw, gh);
    for (int o = 1; o <= 8; o++) {
        size_t n = make_exif(exif, o & 1, (unsigned)o, 3, 0);
        blob b = png_rgb(grad, gw, gh, o == 7 ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, exif, n);
        CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
        CHECK_EQ_INT(img.exif_orientation, o);
        CHECK_EQ_INT(img.orig_width, o >= 5 ? gh : gw);
        CHECK_EQ_INT(oriented_mismatches(&img, grad, gw, gh, o), 0);
        image_free(&img);
        blob_free(&b);

        n = make_exif(exif, !(o & 1), (unsigned)o, 3, o & 2);
        b = webp_with_exif(&simple, gw, gh, exif, n);
        CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
        CHECK_EQ_INT(img.exif_orientation, o);
        CHECK_EQ_INT(img.orig_height, o >= 5 ? gw : gh);
        CHECK_EQ_INT(oriented_mismatches(&img, grad, gw, gh, o), 0);
        image_free(&img);
        blob_free(&b);
    }
    blob_free(&simple);
    free(grad);
}

/* EXIF is libvips' (libexif's) to parse now: hostile EXIF blocks inside a
 * valid JPEG must still decode, with an orientation in 1..8, and the hostile
 * container layouts the old hand-written walker was tested with must fail
 * cleanly. Each input as an exact heap copy. */
static void test_exif_hostile(void)
{
    const uint8_t px[12] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120};
    image_t img;
    char msg[256];
    uint8_t t[80];
    for (int big = 0; big < 2; big++)
        for (unsigned o = 0; o <= 10; o++) {
            int want = o >= 1 && o <= 8 ? (int)o : 1;
            size_t n = make_exif(t, big, o, 3, 1);
            blob b = jpeg_rgb(px, 2, 2, t, n);
            CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
            CHECK_EQ_INT(img.exif_orientation, want);
            image_free(&img);
            blob_free(&b);
            /* Every truncation of the block: decodes, orientation in range. */
            for (size_t cut = 0; cut < n; cut += 3) {
                b = jpeg_rgb(px, 2, 2, t, cut);
                image_status st = dec(&b, NULL, &img);
                CHECK_EQ_INT(st, IMAGE_OK);
                CHECK(img.exif_orientation >= 1 && img.exif_orientation <= 8);
                image_free(&img);
                blob_free(&b);
            }
        }
    /* Malformed blocks: bad magic, bad 42, IFD offset past the end, entry
     * count larger than the data, wrong type, zero count. */
    size_t n = make_exif(t, 0, 6, 3, 0);
    for (int k = 0; k < 6; k++) {
        uint8_t m[80];
        memcpy(m, t, n);
        switch (k) {
        case 0: m[0] = 'X'; break;
        case 1: m[2] = 43; break;
        case 2: put32(m + 4, 0xFFFFFFFFu, 0); break;
        case 3: put16(m + 8, 0xFFFF, 0); break;
        case 4: put16(m + 22 + 2, 2, 0); break;
        default: put32(m + 22 + 4, 0, 0); break;
        }
        blob b = jpeg_rgb(px, 2, 2, m, n);
        CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
        CHECK(img.exif_orientation >= 1 && img.exif_orientation <= 8);
        image_free(&img);
        blob_free(&b);
    }

    static const uint8_t j1[] = {0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xF0, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M'};
    static const uint8_t j2[] = {0xFF, 0xD8, 0xFF, 0xFF, 0xFF};
    static const uint8_t j3[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0xFF, 0xE1};
    static const uint8_t p1[] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A,
                                 0x7F, 0xFF, 0xFF, 0xF0, 'I', 'H', 'D', 'R', 0, 0};
    static const uint8_t p2[] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A,
                                 0x00, 0x00, 0x01, 0x00, 'e', 'X', 'I', 'f', 'M', 'M', 0, 42, 0};
    static const uint8_t w1[] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P',
                                 'V', 'P', '8', 'X', 0xFF, 0xFF, 0xFF, 0xFF, 1, 2};
    static const uint8_t w2[] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P',
                                 'E', 'X', 'I', 'F', 0xFE, 0xFF, 0xFF, 0xFF, 'I', 'I', 42, 0};
    const struct {
        const uint8_t *p;
        size_t n;
    } hostile[] = {
        {j1, sizeof j1}, {j2, sizeof j2}, {j3, sizeof j3}, {p1, sizeof p1}, {p2, sizeof p2}, {w1, sizeof w1}, {w2, sizeof w2}};
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        blob b = blob_dup(hostile[i].p, hostile[i].n);
        CHECK_EQ_INT(dec_n(&b, b.len, NULL, &img, msg, sizeof msg), IMAGE_CORRUPT);
        CHECK(out_is_empty(&img));
        blob_free(&b);
    }
}

/* Display P3 (D65, P3 primaries, the sRGB tone curve) built with lcms2. */
static blob p3_profile(void)
{
    cmsCIExyY white = {0.3127, 0.3290, 1.0};
    cmsCIExyYTRIPLE prim = {{0.680, 0.320, 1.0}, {0.265, 0.690, 1.0}, {0.150, 0.060, 1.0}};
    double srgb_curve[5] = {2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045};
    cmsToneCurve *t = cmsBuildParametricToneCurve(NULL, 4, srgb_curve);
    cmsToneCurve *c3[3] = {t, t, t};
    cmsHPROFILE p = cmsCreateRGBProfile(&white, &prim, c3);
    cmsMLU *desc = cmsMLUalloc(NULL, 1);
    cmsMLUsetASCII(desc, "en", "US", "Display P3 (test)");
    cmsWriteTag(p, cmsSigProfileDescriptionTag, desc);
    cmsMLUfree(desc);
    cmsUInt32Number n = 0;
    cmsSaveProfileToMem(p, NULL, &n);
    blob b = {malloc(n), n};
    cmsSaveProfileToMem(p, b.data, &n);
    cmsCloseProfile(p);
    cmsFreeToneCurve(t);
    return b;
}

static double srgb_lin(double v)
{
    v /= 255.0;
    return v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
}

static int srgb_enc(double v)
{
    v = v < 0 ? 0 : v > 1 ? 1
                          : v;
    v = v <= 0.0031308 ? v * 12.92 : 1.055 * pow(v, 1 / 2.4) - 0.055;
    return (int)lround(v * 255.0);
}

/* --icc-to-srgb (set by main): a Display P3 JPEG comes out in sRGB, as
 * the P3 -> sRGB matrix says; an sRGB profile and a broken one leave the
 * pixels as stored. */
static void test_icc(void)
{
    image_t img;
    const uint8_t p3[3] = {200, 60, 60}, grey[3] = {128, 128, 128};
    /* P3 -> sRGB on linear values (both D65). */
    static const double m[3][3] = {{1.2249, -0.2247, 0.0}, {-0.0420, 1.0419, 0.0}, {-0.0197, -0.0786, 1.0979}};
    double lin[3] = {srgb_lin(p3[0]), srgb_lin(p3[1]), srgb_lin(p3[2])};
    int want[3];
    for (int k = 0; k < 3; k++)
        want[k] = srgb_enc(m[k][0] * lin[0] + m[k][1] * lin[1] + m[k][2] * lin[2]);
    blob prof = p3_profile();
    blob b = jpeg_flat_icc(p3, 32, 32, prof.data, prof.len);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    if (img.pixels) {
        const uint8_t *p = px_at(&img, 16, 16);
        if (!near(p, want[0], want[1], want[2], 3))
            fprintf(stderr, "  P3 (200,60,60): got %d,%d,%d want %d,%d,%d\n", p[0], p[1], p[2],
                    want[0], want[1], want[2]);
        CHECK(near(p, want[0], want[1], want[2], 3));
        CHECK(p[0] > 215); /* visibly more saturated than stored */
    }
    image_free(&img);
    blob_free(&b);
    /* Grey stays grey (same tone curve). */
    b = jpeg_flat_icc(grey, 16, 16, prof.data, prof.len);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    if (img.pixels)
        CHECK(near(px_at(&img, 8, 8), 128, 128, 128, 2));
    image_free(&img);
    blob_free(&b);

    /* sRGB profile: no conversion at all, the stored values come back. */
    cmsHPROFILE s = cmsCreate_sRGBProfile();
    cmsUInt32Number n = 0;
    cmsSaveProfileToMem(s, NULL, &n);
    blob sp = {malloc(n), n};
    cmsSaveProfileToMem(s, sp.data, &n);
    cmsCloseProfile(s);
    b = jpeg_flat_icc(p3, 16, 16, sp.data, sp.len);
    CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
    if (img.pixels)
        CHECK(near(px_at(&img, 8, 8), 200, 60, 60, 2));
    image_free(&img);
    blob_free(&b);
    blob_free(&sp);

    /* A broken profile (truncated, then garbage) is ignored. */
    for (int k = 0; k < 2; k++) {
        blob bad = blob_dup(prof.data, k ? prof.len : 200);
        if (k)
            memset(bad.data + 128, 0xEE, bad.len - 128);
        b = jpeg_flat_icc(p3, 16, 16, bad.data, bad.len);
        CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
        if (img.pixels)
            CHECK(near(px_at(&img, 8, 8), 200, 60, 60, 2));
        image_free(&img);
        blob_free(&b);
        blob_free(&bad);
    }
    blob_free(&prof);
}

/* icc_fast.c against LittleCMS on the P3 profile: used (a matrix/TRC
 * profile), and within one level on 100k pseudo-random colours. */
static void test_icc_fast(void)
{
    blob prof = p3_profile();
    cmsHPROFILE in = cmsOpenProfileFromMem(prof.data, (cmsUInt32Number)prof.len), s = cmsCreate_sRGBProfile();
    cmsHTRANSFORM x = cmsCreateTransform(in, TYPE_RGB_8, s, TYPE_RGB_8, INTENT_RELATIVE_COLORIMETRIC, 0);
    icc_fast *f = icc_fast_build(in, x);
    CHECK(f != NULL);
    enum { N = 100000 };
    uint8_t *a = malloc(N * 3), *b = malloc(N * 3);
    uint32_t r = 12345;
    for (int i = 0; i < N * 3; i++)
        a[i] = b[i] = (uint8_t)((r = r * 1103515245u + 12345u) >> 16);
    int worst = 0;
    if (f) {
        cmsDoTransform(x, a, a, N);
        icc_fast_apply(f, b, N);
        for (int i = 0; i < N * 3; i++)
            worst = abs(a[i] - b[i]) > worst ? abs(a[i] - b[i]) : worst;
    }
    CHECK(worst <= 1);
    /* The vector path gives the plain loop's bytes for every colour, whatever
     * the count (the last pixels go to the plain loop). */
    enum { ROW = 65536 };
    uint8_t *v = malloc(ROW * 3 + 3), *w = malloc(ROW * 3 + 3);
    size_t differ = 0;
    for (int red = 0; f && v && w && red < 256; red++) {
        for (int i = 0; i < ROW; i++) v[3 * i] = (uint8_t)red, v[3 * i + 1] = (uint8_t)(i >> 8), v[3 * i + 2] = (uint8_t)i;
        memcpy(w, v, ROW * 3);
        size_t n = ROW - (size_t)red % 9; /* tails of 0..8 pixels */
        icc_fast_apply(f, v, n);
        icc_fast_apply_plain(f, w, n);
        differ += memcmp(v, w, ROW * 3) != 0;
    }
    CHECK(v && w && differ == 0);
    free(v), free(w);
    free(a), free(b), free(f);
    cmsDeleteTransform(x);
    cmsCloseProfile(in);
    cmsCloseProfile(s);
    blob_free(&prof);
}

/* defer_icc: the pixels come back as stored with the transform beside them;
 * image_to_srgb then gives what the decoder's own conversion gives. The
 * transform is built once per profile, whatever the number of images. */
static void test_icc_deferred(void)
{
    const uint8_t p3[3] = {200, 60, 60};
    blob prof = p3_profile();
    blob b = jpeg_flat_icc(p3, 24, 16, prof.data, prof.len);
    image_t now, later;
    CHECK_EQ_INT(dec(&b, NULL, &now), IMAGE_OK);
    CHECK(now.icc == NULL);
    int cached = image_icc_cached();
    image_decode_opts o = {.defer_icc = true};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(dec(&b, &o, &later), IMAGE_OK);
        CHECK(later.icc != NULL);
        if (later.pixels && now.pixels) {
            CHECK(near(px_at(&later, 8, 8), 200, 60, 60, 2));
            image_to_srgb(&later);
            CHECK(later.icc == NULL);
            CHECK(!memcmp(later.pixels, now.pixels, (size_t)now.width * now.height * 3));
        }
        image_free(&later);
    }
    CHECK_EQ_INT(image_icc_cached(), cached);
    /* Freed with the conversion still pending: the reference is released
     * (ASan's leak check). */
    CHECK_EQ_INT(dec(&b, &o, &later), IMAGE_OK);
    image_free(&later);
    image_free(&now);
    blob_free(&b);
    blob_free(&prof);
}

/* ---------------------------------------------- formats through libvips */

/* Encodes RGB pixels with libvips' own savers ("gif", "tif", "heic", "avif"). */
static blob vips_encode(const uint8_t *px, int w, int h, const char *suffix)
{
    VipsImage *im = vips_image_new_from_memory(px, (size_t)w * h * 3, w, h, 3, VIPS_FORMAT_UCHAR);
    void *buf = NULL;
    size_t len = 0;
    int rc = -1;
    if (!strcmp(suffix, "gif"))
        rc = vips_gifsave_buffer(im, &buf, &len, NULL);
    else if (!strcmp(suffix, "tif"))
        rc = vips_tiffsave_buffer(im, &buf, &len, NULL);
    else if (!strcmp(suffix, "heic"))
        rc = vips_heifsave_buffer(im, &buf, &len, "Q", 90, "compression", VIPS_FOREIGN_HEIF_COMPRESSION_HEVC, NULL);
    else if (!strcmp(suffix, "avif"))
        rc = vips_heifsave_buffer(im, &buf, &len, "Q", 90, "compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1, NULL);
    g_object_unref(im);
    if (rc != 0) {
        fprintf(stderr, "  cannot write %s: %s\n", suffix, vips_error_buffer());
        vips_error_clear();
        return (blob){dup_exact(NULL, 0), 0};
    }
    blob b = blob_dup(buf, len);
    g_free(buf);
    return b;
}

/* BMP writer: 24-bit bottom-up, 32-bit top-down with bit fields, 8-bit
 * palette (the four quadrant colours), 1-bit (black/white). */
static blob bmp_encode(const uint8_t *px, int w, int h, int bpp)
{
    int pal_n = bpp == 8 ? 4 : bpp == 1 ? 2
                                        : 0;
    size_t stride = (((size_t)w * bpp + 31) / 32) * 4;
    size_t dib = bpp == 32 ? 108 : 40, off = 14 + dib + (size_t)pal_n * 4;
    size_t len = off + stride * h;
    uint8_t *b = calloc(1, len);
    b[0] = 'B';
    b[1] = 'M';
    put32(b + 2, (uint32_t)len, 0);
    put32(b + 10, (uint32_t)off, 0);
    put32(b + 14, (uint32_t)dib, 0);
    put32(b + 18, (uint32_t)w, 0);
    put32(b + 22, bpp == 32 ? (uint32_t)-h : (uint32_t)h, 0);
    put16(b + 26, 1, 0);
    put16(b + 28, (unsigned)bpp, 0);
    put32(b + 30, bpp == 32 ? 3 : 0, 0);
    put32(b + 46, (uint32_t)pal_n, 0);
    if (bpp == 32) { /* masks for B, G, R in bytes 0..2 of each pixel's word, as ARGB */
        put32(b + 54, 0x00FF0000u, 0);
        put32(b + 58, 0x0000FF00u, 0);
        put32(b + 62, 0x000000FFu, 0);
    }
    uint8_t *pal = b + 14 + dib;
    for (int i = 0; i < pal_n; i++) {
        const int *c = bpp == 8 ? quad_rgb[i] : (const int[3]){i ? 255 : 0, i ? 255 : 0, i ? 255 : 0};
        pal[i * 4] = (uint8_t)c[2];
        pal[i * 4 + 1] = (uint8_t)c[1];
        pal[i * 4 + 2] = (uint8_t)c[0];
    }
    for (int y = 0; y < h; y++) {
        uint8_t *row = b + off + stride * (size_t)(bpp == 32 ? y : h - 1 - y);
        for (int x = 0; x < w; x++) {
            const uint8_t *p = px + ((size_t)y * w + x) * 3;
            if (bpp == 24) {
                row[x * 3] = p[2];
                row[x * 3 + 1] = p[1];
                row[x * 3 + 2] = p[0];
            } else if (bpp == 32) {
                row[x * 4] = p[2];
                row[x * 4 + 1] = p[1];
                row[x * 4 + 2] = p[0];
            } else if (bpp == 8) {
                row[x] = (uint8_t)((y >= h / 2) * 2 + (x >= w / 2));
            } else if (p[0] > 127) {
                row[x / 8] |= (uint8_t)(0x80 >> (x % 8));
            }
        }
    }
    blob out = blob_dup(b, len);
    free(b);
    return out;
}

static void test_more_formats(void)
{
    image_t img;
    char msg[256];
    const int w = 64, h = 32;
    uint8_t *q = make_quadrants(w, h);
    static const char *const suffix[] = {"gif", "tif", "heic", "avif"};
    static const image_format fmt[] = {IMAGE_FMT_GIF, IMAGE_FMT_TIFF, IMAGE_FMT_HEIF, IMAGE_FMT_AVIF};
    for (int i = 0; i < 4; i++) {
        blob b = vips_encode(q, w, h, suffix[i]);
        CHECK(b.len > 0);
        CHECK_EQ_INT(image_sniff(b.data, b.len), fmt[i]);
        CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
        CHECK_EQ_INT(img.format, fmt[i]);
        CHECK_EQ_INT(img.width, w);
        CHECK_EQ_INT(img.height, h);
        CHECK_EQ_INT(img.orig_width, w);
        if (img.pixels && img.width == w && img.height == h)
            CHECK_EQ_INT(quadrant_mismatches(&img, w, h, 1), 0);
        image_free(&img);
        /* Over the pixel budget: refused from the header. */
        image_decode_opts lim = {.max_pixels = (uint64_t)w * h - 1};
        CHECK_EQ_INT(dec_n(&b, b.len, &lim, &img, msg, sizeof msg), IMAGE_TOO_LARGE);
        CHECK(out_is_empty(&img));
        /* Truncated anywhere after the magic: an error, never pixels. */
        int bad = 0;
        for (size_t cut = 12; cut < b.len; cut += b.len / 97 + 1) {
            image_status st = dec_n(&b, cut, NULL, &img, msg, sizeof msg);
            if (st == IMAGE_OK || !out_is_empty(&img) || !msg[0]) {
                if (bad++ < 3)
                    fprintf(stderr, "  %s cut at %zu/%zu: %s\n", suffix[i], cut, b.len, image_status_code(st));
                image_free(&img);
            }
        }
        CHECK_EQ_INT(bad, 0);
        blob_free(&b);
    }

    static const int bpps[] = {24, 32, 8, 1};
    for (int i = 0; i < 4; i++) {
        blob b = bmp_encode(q, w, h, bpps[i]);
        CHECK_EQ_INT(image_sniff(b.data, b.len), IMAGE_FMT_BMP);
        CHECK_EQ_INT(dec(&b, NULL, &img), IMAGE_OK);
        CHECK_EQ_INT(img.format, IMAGE_FMT_BMP);
        CHECK_EQ_INT(img.width, w);
        CHECK_EQ_INT(img.height, h);
        if (img.pixels && bpps[i] != 1)
            CHECK_EQ_INT(quadrant_mismatches(&img, w, h, 1), 0);
        if (img.pixels && bpps[i] == 1) { /* red and white quadrants are light, green and blue dark */
            CHECK(near(px_at(&img, 4, 4), 255, 255, 255, 0));
            CHECK(near(px_at(&img, w - 5, 4), 0, 0, 0, 0));
        }
        image_free(&img);
        for (size_t cut = 2; cut < b.len; cut += cut < 80 ? 1 : 97) {
            image_status st = dec_n(&b, cut, NULL, &img, msg, sizeof msg);
            CHECK(st == IMAGE_CORRUPT || (cut < 26 && st == IMAGE_UNSUPPORTED));
            CHECK(out_is_empty(&img));
        }
        blob_free(&b);
    }
    /* RLE is a valid BMP we do not read; a huge header is refused before any allocation. */
    blob b = bmp_encode(q, w, h, 8);
    put32(b.data + 30, 1, 0);
    CHECK_EQ_INT(dec_n(&b, b.len, NULL, &img, msg, sizeof msg), IMAGE_UNSUPPORTED);
    put32(b.data + 30, 0, 0);
    put32(b.data + 18, 100000, 0);
    put32(b.data + 22, 100000, 0);
    image_decode_opts lim = {.max_pixels = 50000000};
    CHECK_EQ_INT(dec_n(&b, b.len, &lim, &img, msg, sizeof msg), IMAGE_TOO_LARGE);
    put32(b.data + 18, 0x7FFFFFFF, 0);
    put32(b.data + 22, 0x80000000u, 0);
    CHECK_EQ_INT(dec_n(&b, b.len, NULL, &img, msg, sizeof msg), IMAGE_CORRUPT);
    blob_free(&b);

    /* What other formats are called when they are refused. */
    static const char pdf[] = "%PDF-1.7\n...", svg[] = "<?xml version=\"1.0\"?><svg xmlns=...>";
    blob p = blob_dup((const uint8_t *)pdf, sizeof pdf - 1);
    CHECK_EQ_INT(dec_n(&p, p.len, NULL, &img, msg, sizeof msg), IMAGE_UNSUPPORTED);
    CHECK(strncmp(msg, "PDF is not a supported image format", 35) == 0);
    blob_free(&p);
    p = blob_dup((const uint8_t *)svg, sizeof svg - 1);
    CHECK_EQ_INT(dec_n(&p, p.len, NULL, &img, msg, sizeof msg), IMAGE_UNSUPPORTED);
    CHECK(strncmp(msg, "SVG is not", 10) == 0);
    blob_free(&p);
    free(q);
}

static void test_truncated(void)
{
    image_t img;
    char msg[256];
    const int w = 48, h = 40;
    uint8_t *noise = make_noise(w, h);
    blob b[4] = {
        jpeg_rgb(noise, w, h, NULL, 0),
        jpeg_encode(noise, w, h, 3, JCS_RGB, JCS_UNKNOWN, 90, 1, NULL, 0),
        png_rgb(noise, w, h, PNG_INTERLACE_NONE, NULL, 0),
        webp_lossless(noise, w, h),
    };
    const char *name[4] = {"baseline JPEG", "progressive JPEG", "PNG", "WebP"};
    const size_t magic[4] = {3, 3, 8, 12};
    uint8_t *lossy = NULL;
    size_t nl = WebPEncodeRGB(noise, w, h, w * 3, 80, &lossy);
    blob lw = blob_dup(lossy, nl);
    WebPFree(lossy);

    for (int f = 0; f < 5; f++) {
        const blob *src = f < 4 ? &b[f] : &lw;
        const char *nm = f < 4 ? name[f] : "lossy WebP";
        size_t mg = f < 4 ? magic[f] : 12;
        CHECK_EQ_INT(dec(src, NULL, &img), IMAGE_OK);
        image_free(&img);
        /* Where the image data ends: JPEG before EOI, PNG before IEND;
         * cutting only the end marker may still decode. */
        size_t end = src->len;
        if (f < 2)
            end -= 2;
        else if (f == 2)
            end -= 12;
        /* Every cut through the headers, then ~300 through the data. */
        size_t step = end > 600 ? (end - 600) / 300 + 1 : 1;
        int bad = 0;
        for (size_t cut = mg; cut < end; cut += cut < 600 ? 1 : step) {
            image_status st = dec_n(src, cut, NULL, &img, msg, sizeof msg);
            if (st != IMAGE_CORRUPT || !out_is_empty(&img)) {
                if (bad++ < 5)
                    fprintf(stderr, "  %s cut at %zu/%zu: %s (%s)\n", nm, cut, src->len,
                            image_status_code(st), msg);
                image_free(&img);
            }
        }
        CHECK_EQ_INT(bad, 0);
        /* Cuts inside the magic are not recognised at all. */
        CHECK_EQ_INT(dec_n(src, mg - 1, NULL, &img, msg, sizeof msg), IMAGE_UNSUPPORTED);
    }
    /* The messages name the cause. */
    dec_n(&b[0], b[0].len / 2, NULL, &img, msg, sizeof msg);
    CHECK_STR(msg, "truncated JPEG data");
    /* libpng and libwebp report a short read as a generic error; the message
     * still names the format. */
    dec_n(&b[2], b[2].len / 2, NULL, &img, msg, sizeof msg);
    CHECK(strstr(msg, "PNG") != NULL);
    dec_n(&b[3], b[3].len / 2, NULL, &img, msg, sizeof msg);
    CHECK(strstr(msg, "WebP") != NULL);

    for (int f = 0; f < 4; f++)
        blob_free(&b[f]);
    blob_free(&lw);
    free(noise);
}

/* Finds a JPEG marker (FF xx) before SOS; returns its offset or 0. */
static size_t find_marker(const blob *b, uint8_t code)
{
    for (size_t i = 2; i + 1 < b->len; i++)
        if (b->data[i] == 0xFF && b->data[i + 1] == code)
            return i;
    return 0;
}

static void png_patch_ihdr(blob *b, uint32_t pw, uint32_t ph)
{
    /* signature(8) length(4) "IHDR"(4) width(4) height(4) ... crc at 29 */
    put32(b->data + 16, pw, 1);
    put32(b->data + 20, ph, 1);
    put32(b->data + 29, crc32_buf(b->data + 12, 17), 1);
}

static void test_too_large(void)
{
    image_t img;
    char msg[256];
    image_decode_opts lim = {.max_pixels = 50000000};
    uint8_t *q = make_quadrants(16, 16);

    /* JPEG whose SOF claims 20000x20000: refused from the header. */
    blob j = jpeg_rgb(q, 16, 16, NULL, 0);
    size_t sof = find_marker(&j, 0xC0);
    CHECK(sof > 0);
    put16(j.data + sof + 5, 20000, 1);
    put16(j.data + sof + 7, 20000, 1);
    double t0 = now_s();
    CHECK_EQ_INT(dec_n(&j, j.len, &lim, &img, msg, sizeof msg), IMAGE_TOO_LARGE);
    CHECK(now_s() - t0 < 1.0);
    CHECK_STR(msg, "image is 20000x20000 (400.0 megapixels), over the 50.0 megapixel limit");
    CHECK(out_is_empty(&img));
    /* Height 0 (the height comes later, in a DNL marker) is valid JPEG that
     * libjpeg does not implement: refused as unsupported. */
    put16(j.data + sof + 5, 0, 1);
    CHECK_EQ_INT(dec(&j, &lim, &img), IMAGE_UNSUPPORTED);
    blob_free(&j);

    /* PNG whose IHDR claims 20000x20000, CRC fixed up so libpng accepts it. */
    blob p = png_rgb(q, 16, 16, PNG_INTERLACE_NONE, NULL, 0);
    png_patch_ihdr(&p, 20000, 20000);
    t0 = now_s();
    CHECK_EQ_INT(dec_n(&p, p.len, &lim, &img, msg, sizeof msg), IMAGE_TOO_LARGE);
    CHECK(now_s() - t0 < 1.0);
    CHECK_STR(msg, "image is 20000x20000 (400.0 megapixels), over the 50.0 megapixel limit");
    /* Wider than libpng's default 1,000,000 user limit: still our status. */
    png_patch_ihdr(&p, 2000000, 1);
    image_decode_opts lim1m = {.max_pixels = 1000000};
    CHECK_EQ_INT(dec(&p, &lim1m, &img), IMAGE_TOO_LARGE);
    png_patch_ihdr(&p, 0, 16);
    CHECK_EQ_INT(dec(&p, &lim, &img), IMAGE_CORRUPT);
    blob_free(&p);

    /* WebP (VP8L) whose bitstream header claims 16000x16000. */
    blob wp = webp_lossless(q, 16, 16);
    CHECK(memcmp(wp.data + 12, "VP8L", 4) == 0 && wp.data[20] == 0x2F);
    uint32_t bits = (uint32_t)wp.data[21] | (uint32_t)wp.data[22] << 8 |
        (uint32_t)wp.data[23] << 16 | (uint32_t)wp.data[24] << 24;
    bits = (bits & 0xF0000000u) | 15999u | 15999u << 14;
    put32(wp.data + 21, bits, 0);
    CHECK_EQ_INT(dec_n(&wp, wp.len, &lim, &img, msg, sizeof msg), IMAGE_TOO_LARGE);
    CHECK(strstr(msg, "16000x16000") != NULL);
    blob_free(&wp);

    /* Exactly at the budget passes, one pixel over does not; small budgets
     * are reported in pixels. */
    blob all[3] = {jpeg_rgb(q, 16, 16, NULL, 0), png_rgb(q, 16, 16, PNG_INTERLACE_NONE, NULL, 0),
                   webp_lossless(q, 16, 16)};
    for (int i = 0; i < 3; i++) {
        image_decode_opts at = {.max_pixels = 256}, under = {.max_pixels = 255};
        CHECK_EQ_INT(dec(&all[i], &at, &img), IMAGE_OK);
        image_free(&img);
        CHECK_EQ_INT(dec_n(&all[i], all[i].len, &under, &img, msg, sizeof msg), IMAGE_TOO_LARGE);
        CHECK_STR(msg, "image is 16x16 (256 pixels), over the 255 pixel limit");
        CHECK(out_is_empty(&img));
        blob_free(&all[i]);
    }
    free(q);
}

static void test_dct_scaling(void)
{
    image_t img;
    const int w = 1600, h = 1200;
    uint8_t *q = make_quadrants(w, h);
    blob b = jpeg_rgb(q, w, h, NULL, 0);
    uint8_t exif[80];
    size_t n = make_exif(exif, 1, 6, 3, 1);
    blob r = jpeg_rgb(q, w, h, exif, n);

    /* {min_w, min_h, orientation-6 file?, expected w, h, orig w, h, fit} */
    const struct {
        int mw, mh, rot, ew, eh, ow, oh, fit;
    } cases[] = {
        {400, 300, 0, 400, 300, 1600, 1200, 0}, /* 1/4 exactly */
        {401, 300, 0, 800, 600, 1600, 1200, 0}, /* 1/4 one short: 1/2 */
        {640, 480, 0, 800, 600, 1600, 1200, 0},
        {640, 640, 0, 1600, 1200, 1600, 1200, 0}, /* 1/2 is 600 high < 640: full size */
        {200, 150, 0, 200, 150, 1600, 1200, 0},   /* 1/8 */
        {1, 1, 0, 200, 150, 1600, 1200, 0},       /* 1/8 is the smallest scale */
        {0, 300, 0, 1600, 1200, 1600, 1200, 0},   /* both must be > 0 */
        {1600, 1200, 0, 1600, 1200, 1600, 1200, 0},
        /* Rotated 90 degrees: the minimum applies to the upright image. */
        {300, 400, 1, 300, 400, 1200, 1600, 0},
        {400, 300, 1, 600, 800, 1200, 1600, 0},
        /* fit: covering the box on either side is enough (a letterbox fits the long side). */
        {1920, 1920, 0, 1600, 1200, 1600, 1200, 1}, /* 1/2 is 800x600: covers neither */
        {700, 2000, 0, 800, 600, 1600, 1200, 1},    /* 1/2 is wide enough */
        {2000, 550, 0, 800, 600, 1600, 1200, 1},    /* 1/2 is tall enough, 1/4 is not */
        {400, 5000, 0, 400, 300, 1600, 1200, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        image_decode_opts o = {.max_pixels = 50000000, .min_width = cases[i].mw, .min_height = cases[i].mh, .fit = cases[i].fit};
        CHECK_EQ_INT(dec(cases[i].rot ? &r : &b, &o, &img), IMAGE_OK);
        CHECK_EQ_INT(img.width, cases[i].ew);
        CHECK_EQ_INT(img.height, cases[i].eh);
        CHECK_EQ_INT(img.orig_width, cases[i].ow);
        CHECK_EQ_INT(img.orig_height, cases[i].oh);
        if (img.pixels && img.width == cases[i].ew && img.height == cases[i].eh)
            CHECK_EQ_INT(quadrant_mismatches(&img, cases[i].rot ? img.height : img.width,
                                             cases[i].rot ? img.width : img.height,
                                             cases[i].rot ? 6 : 1),
                         0);
        image_free(&img);
    }
    blob_free(&b);
    blob_free(&r);
    free(q);

    /* CMYK goes through its own row conversion; scaled too. */
    const int cw = 256, ch = 128;
    uint8_t *cmyk = malloc((size_t)cw * ch * 4);
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++) {
            int qd = (y >= ch / 2) * 2 + (x >= cw / 2);
            uint8_t *d = cmyk + ((size_t)y * cw + x) * 4;
            d[0] = (uint8_t)quad_rgb[qd][0];
            d[1] = (uint8_t)quad_rgb[qd][1];
            d[2] = (uint8_t)quad_rgb[qd][2];
            d[3] = 255;
        }
    b = jpeg_encode(cmyk, cw, ch, 4, JCS_CMYK, JCS_CMYK, 95, 0, NULL, 0);
    image_decode_opts o = {.min_width = 64, .min_height = 32};
    CHECK_EQ_INT(dec(&b, &o, &img), IMAGE_OK);
    CHECK_EQ_INT(img.width, 64);
    CHECK_EQ_INT(img.height, 32);
    CHECK_EQ_INT(img.orig_width, cw);
    if (img.pixels && img.width == 64 && img.height == 32)
        CHECK_EQ_INT(quadrant_hue_mismatches(&img, 64, 32), 0);
    image_free(&img);
    blob_free(&b);
    free(cmyk);
}

typedef struct {
    const blob *inputs;
    const image_t *refs;
    int n, rounds, mismatches;
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *job = arg;
    for (int r = 0; r < job->rounds; r++)
        for (int i = 0; i < job->n; i++) {
            image_t img;
            const image_t *ref = &job->refs[i];
            if (dec(&job->inputs[i], NULL, &img) != IMAGE_OK || img.width != ref->width ||
                img.height != ref->height ||
                memcmp(img.pixels, ref->pixels, (size_t)img.width * img.height * 3) != 0)
                job->mismatches++;
            image_free(&img);
        }
    return NULL;
}

static void test_threads(void)
{
    const int w = 96, h = 64;
    uint8_t *noise = make_noise(w, h);
    uint8_t exif[80];
    size_t n = make_exif(exif, 0, 6, 3, 1);
    blob in[4] = {jpeg_rgb(noise, w, h, exif, n),
                  jpeg_encode(noise, w, h, 3, JCS_RGB, JCS_UNKNOWN, 90, 1, NULL, 0),
                  png_rgb(noise, w, h, PNG_INTERLACE_ADAM7, NULL, 0), webp_lossless(noise, w, h)};
    image_t ref[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(dec(&in[i], NULL, &ref[i]), IMAGE_OK);
    enum { NT = 4 };
    pthread_t th[NT];
    thread_job jobs[NT];
    for (int t = 0; t < NT; t++) {
        jobs[t] = (thread_job){.inputs = in, .refs = ref, .n = 4, .rounds = 10};
        CHECK_EQ_INT(pthread_create(&th[t], NULL, thread_main, &jobs[t]), 0);
    }
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        CHECK_EQ_INT(jobs[t].mismatches, 0);
    }
    for (int i = 0; i < 4; i++) {
        image_free(&ref[i]);
        blob_free(&in[i]);
    }
    free(noise);
}

/* Random byte mutations of valid files: any status is fine, but no crash,
 * no leak, and a consistent result. */
static void test_mutations(void)
{
    const int w = 40, h = 24;
    uint8_t *grad = make_gradient(w, h);
    uint8_t exif[80];
    size_t n = make_exif(exif, 1, 5, 3, 1);
    blob in[4] = {jpeg_rgb(grad, w, h, exif, n),
                  jpeg_encode(grad, w, h, 3, JCS_RGB, JCS_UNKNOWN, 90, 1, NULL, 0),
                  png_rgb(grad, w, h, PNG_INTERLACE_ADAM7, NULL, 0), webp_lossless(grad, w, h)};
    /* A bound keeps a mutated header from asking for gigabytes. */
    image_decode_opts o = {.max_pixels = 1u << 22};
    int inconsistent = 0;
    for (int i = 0; i < 4; i++)
        for (int iter = 0; iter < 150; iter++) {
            blob m = blob_dup(in[i].data, in[i].len);
            int edits = 1 + (int)(rnd() % 4);
            for (int e = 0; e < edits; e++)
                m.data[rnd() % m.len] = (uint8_t)rnd();
            image_t img;
            char msg[256];
            image_status st = dec_n(&m, m.len, &o, &img, msg, sizeof msg);
            if (st == IMAGE_OK) {
                if (!img.pixels || img.width <= 0 || img.height <= 0)
                    inconsistent++;
            } else if (!out_is_empty(&img) || msg[0] == '\0') {
                inconsistent++;
            }
            image_free(&img);
            blob_free(&m);
        }
    CHECK_EQ_INT(inconsistent, 0);
    for (int i = 0; i < 4; i++)
        blob_free(&in[i]);
    free(grad);
}

static int has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n > e && strcasecmp(name + n - e, ext) == 0;
}

static void test_testdata(void)
{
    const char *root = getenv("SIGHT_TESTDATA");
    if (!root || !*root)
        return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/images", root);
    DIR *d = opendir(dir);
    if (!d)
        return;
    int decoded = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        image_format want;
        if (has_ext(de->d_name, ".jpg") || has_ext(de->d_name, ".jpeg"))
            want = IMAGE_FMT_JPEG;
        else if (has_ext(de->d_name, ".png"))
            want = IMAGE_FMT_PNG;
        else if (has_ext(de->d_name, ".webp"))
            want = IMAGE_FMT_WEBP;
        else
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) {
            CHECK(f != NULL);
            continue;
        }
        struct stat sb;
        blob b = {0};
        if (fstat(fileno(f), &sb) == 0 && sb.st_size > 0) {
            b.len = (size_t)sb.st_size;
            b.data = malloc(b.len);
            if (fread(b.data, 1, b.len, f) != b.len)
                b.len = 0;
        }
        fclose(f);

        image_t img;
        char msg[256];
        image_decode_opts o = {.max_pixels = 50000000};
        image_status st = dec_n(&b, b.len, &o, &img, msg, sizeof msg);
        if (st != IMAGE_OK)
            fprintf(stderr, "  %s: %s (%s)\n", de->d_name, image_status_code(st), msg);
        CHECK_EQ_INT(st, IMAGE_OK);
        if (st == IMAGE_OK) {
            decoded++;
            CHECK_EQ_INT(img.format, want);
            CHECK(img.width >= 16 && img.width <= 20000 && img.height >= 16 && img.height <= 20000);
            CHECK_EQ_INT(img.width, img.orig_width);
            CHECK_EQ_INT(img.height, img.orig_height);
            /* A real photo is not one flat colour. */
            size_t npx = (size_t)img.width * img.height, differ = 0;
            for (size_t i = 1; i < npx; i++)
                differ += memcmp(img.pixels + i * 3, img.pixels, 3) != 0;
            CHECK(differ > npx / 100);
            int ow = img.orig_width, oh = img.orig_height;
            image_free(&img);

            /* Shrink-on-load keeps at least the minimum and the orig dims. */
            image_decode_opts s = {.max_pixels = 50000000, .min_width = 160, .min_height = 160};
            CHECK_EQ_INT(dec(&b, &s, &img), IMAGE_OK);
            CHECK(img.width >= (ow < 160 ? ow : 160) && img.width <= ow);
            CHECK(img.height >= (oh < 160 ? oh : 160) && img.height <= oh);
            CHECK_EQ_INT(img.orig_width, ow);
            CHECK_EQ_INT(img.orig_height, oh);
            image_free(&img);
        }
        blob_free(&b);
    }
    closedir(d);
    fprintf(stderr, "test_image: decoded %d files from %s\n", decoded, dir);
}

/* libvips' own loader output for b (3-band uchar: grey joined, alpha
 * dropped), as decode.c's pipeline would produce it; NULL on failure. */
static uint8_t *vips_reference(const blob *b, int jpeg_shrink, int *w, int *h)
{
    VipsImage *im = NULL, *rgb = NULL;
    int rc = jpeg_shrink ? vips_jpegload_buffer(b->data, b->len, &im, "shrink", jpeg_shrink, NULL)
                         : vips_webpload_buffer(b->data, b->len, &im, NULL);
    if (rc != 0)
        return NULL;
    if (im->Bands == 1) {
        VipsImage *three[3] = {im, im, im};
        rc = vips_bandjoin(three, &rgb, 3, NULL);
    } else {
        rc = vips_extract_band(im, &rgb, 0, "n", 3, NULL);
    }
    size_t n = 0;
    uint8_t *px = rc == 0 ? vips_image_write_to_memory(rgb, &n) : NULL;
    *w = im->Xsize, *h = im->Ysize;
    VIPS_UNREF(rgb);
    g_object_unref(im);
    return px;
}

/* Plain JPEG and still WebP skip libvips' pipeline (direct.c): the pixels
 * must be what libvips' loaders give, at every DCT scale, for baseline,
 * progressive and grey JPEG, lossy, lossless and alpha WebP. */
static void test_direct_matches_libvips(void)
{
    const int w = 203, h = 157; /* odd sizes: partial MCUs and scaled sizes rounded up */
    uint8_t *noise = make_noise(w, h);
    uint8_t *grey = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++)
        grey[i] = noise[3 * i];
    blob jpegs[3] = {
        jpeg_encode(noise, w, h, 3, JCS_RGB, JCS_UNKNOWN, 85, 0, NULL, 0),
        jpeg_encode(noise, w, h, 3, JCS_RGB, JCS_UNKNOWN, 85, 1, NULL, 0),
        jpeg_encode(grey, w, h, 1, JCS_GRAYSCALE, JCS_UNKNOWN, 85, 0, NULL, 0),
    };
    for (int j = 0; j < 3; j++)
        for (int s = 1; s <= 8; s *= 2) {
            /* A hint of exactly the scaled size picks that scale. */
            image_decode_opts o = {.min_width = (w + s - 1) / s, .min_height = (h + s - 1) / s};
            image_t img;
            int rw = 0, rh = 0;
            uint8_t *ref = vips_reference(&jpegs[j], s, &rw, &rh);
            CHECK(ref != NULL);
            CHECK_EQ_INT(dec(&jpegs[j], s > 1 ? &o : NULL, &img), IMAGE_OK);
            /* libjpeg's scaled size rounds up; libvips 8.14 drops the
             * partial last column and row. The rest must be equal. */
            CHECK(img.width == (w + s - 1) / s && img.height == (h + s - 1) / s);
            CHECK(rw == w / s && rh == h / s);
            int same = ref && img.width >= rw && img.height >= rh;
            for (int y = 0; same && y < rh; y++)
                same = !memcmp(img.pixels + (size_t)y * img.width * 3, ref + (size_t)y * rw * 3, (size_t)rw * 3);
            if (!same) {
                fprintf(stderr, "  JPEG %d at 1/%d differs from libvips\n", j, s);
                CHECK(0);
            }
            g_free(ref);
            image_free(&img);
        }
    uint8_t *rgba = malloc((size_t)w * h * 4), *out = NULL;
    for (int i = 0; i < w * h; i++)
        memcpy(rgba + 4 * i, noise + 3 * i, 3), rgba[4 * i + 3] = (uint8_t)(i % 251);
    blob webps[3];
    size_t n = WebPEncodeRGB(noise, w, h, w * 3, 80, &out);
    webps[0] = blob_dup(out, n);
    WebPFree(out);
    webps[1] = webp_lossless(noise, w, h);
    n = WebPEncodeRGBA(rgba, w, h, w * 4, 80, &out);
    webps[2] = blob_dup(out, n);
    WebPFree(out);
    for (int k = 0; k < 3; k++) {
        image_t img;
        int rw = 0, rh = 0;
        uint8_t *ref = vips_reference(&webps[k], 0, &rw, &rh);
        CHECK(ref != NULL);
        CHECK_EQ_INT(dec(&webps[k], NULL, &img), IMAGE_OK);
        CHECK(img.width == rw && img.height == rh);
        if (ref && img.width == rw && img.height == rh && memcmp(img.pixels, ref, (size_t)rw * rh * 3) != 0) {
            fprintf(stderr, "  WebP %d differs from libvips\n", k);
            CHECK(0);
        }
        g_free(ref);
        image_free(&img);
        blob_free(&webps[k]);
    }
    for (int j = 0; j < 3; j++)
        blob_free(&jpegs[j]);
    free(rgba);
    free(grey);
    free(noise);
}

int main(void)
{
    image_set_icc_to_srgb(true); /* test_icc; images without a profile are unaffected */
    if (image_init("test_image") != 0) {
        fprintf(stderr, "libvips failed to start\n");
        return 1;
    }
    test_names();
    test_empty_and_garbage();
    test_tiny();
    test_jpeg_variants();
    test_jpeg_edges();
    test_png_variants();
    test_webp_variants();
    test_orientation();
    test_exif_hostile();
    test_icc();
    test_icc_deferred();
    test_icc_fast();
    test_more_formats();
    test_truncated();
    test_too_large();
    test_dct_scaling();
    test_direct_matches_libvips();
    test_threads();
    test_mutations();
    test_testdata();
    return check_report("test_image");
}
