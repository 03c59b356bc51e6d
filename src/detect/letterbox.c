/* Letterbox preprocessing. The resize reproduces OpenCV's cv2.resize with
 * INTER_LINEAR on 8-bit images bit for bit (its generic path, which x86 builds
 * run: OpenCV skips IPP for 8-bit linear resize because IPP's result is not
 * exact): coefficients rounded to 11 bits, a horizontal pass, then the
 * vertical pass's exact shifts; an exact 2x downscale takes OpenCV's area
 * path (2x2 mean, rounded half up), and an equal size is a plain copy.
 * Checked against cv2.resize on random images of many sizes: no difference. */
#include "detect/letterbox.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#define COEF_BITS 11
#define COEF_ONE (1 << COEF_BITS)
#define TILE 512 /* output columns per pass: bounds the stack buffers, no malloc */

typedef struct {
    float *plane[3];                /* destination plane of source channel 0, 1, 2 (RGB or BGR order) */
    int stride;                     /* dst_w */
    size_t off;                     /* top * dst_w + left */
    float lut[256];                 /* value written for each byte */
    const letterbox_colour *colour; /* NULL: none */
} out_t;

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi
                                                                              : v; }

/* Output rows are written through restrict pointers and a local copy of the
 * table: without them every store may alias the table, and the loops run
 * several times slower. */
typedef struct {
    float *restrict p0, *restrict p1, *restrict p2;
} orow;

static inline orow out_row(const out_t *o, int y, int x)
{
    size_t at = o->off + (size_t)y * o->stride + (size_t)x;
    return (orow){o->plane[0] + at, o->plane[1] + at, o->plane[2] + at};
}

/* Bytes of one output row (n pixels at x) through the colour conversion,
 * then into the planes. */
static void put_colour(const out_t *o, int y, int x, uint8_t *rgb, int n)
{
    o->colour->apply(o->colour->ctx, rgb, (size_t)n);
    orow d = out_row(o, y, x);
    for (int i = 0; i < n; i++, rgb += 3) d.p0[i] = o->lut[rgb[0]], d.p1[i] = o->lut[rgb[1]], d.p2[i] = o->lut[rgb[2]];
}

static void copy_same(const uint8_t *src, int w, int h, const out_t *o)
{
    if (o->colour) {
        uint8_t t[TILE * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x += TILE) {
                int n = w - x < TILE ? w - x : TILE;
                memcpy(t, src + ((size_t)y * w + x) * 3, (size_t)n * 3);
                put_colour(o, y, x, t, n);
            }
        return;
    }
    float lut[256];
    memcpy(lut, o->lut, sizeof lut);
    for (int y = 0; y < h; y++) {
        const uint8_t *s = src + (size_t)y * w * 3;
        orow d = out_row(o, y, 0);
        for (int x = 0; x < w; x++, s += 3) d.p0[x] = lut[s[0]], d.p1[x] = lut[s[1]], d.p2[x] = lut[s[2]];
    }
}

/* OpenCV resizeAreaFast for a 2x downscale of 3-channel bytes. */
static void resize_half(const uint8_t *src, int sw, int nw, int nh, const out_t *o)
{
    const size_t step = (size_t)sw * 3;
    if (o->colour) {
        uint8_t t[TILE * 3];
        for (int y = 0; y < nh; y++)
            for (int x = 0; x < nw; x += TILE) {
                int n = nw - x < TILE ? nw - x : TILE;
                const uint8_t *s0 = src + (size_t)(2 * y) * step + (size_t)x * 6, *s1 = s0 + step;
                for (int i = 0; i < n * 3; i += 3, s0 += 6, s1 += 6)
                    for (int c = 0; c < 3; c++)
                        t[i + c] = (uint8_t)((s0[c] + s0[c + 3] + s1[c] + s1[c + 3] + 2) >> 2);
                put_colour(o, y, x, t, n);
            }
        return;
    }
    float lut[256];
    memcpy(lut, o->lut, sizeof lut);
    for (int y = 0; y < nh; y++) {
        const uint8_t *s0 = src + (size_t)(2 * y) * step, *s1 = s0 + step;
        orow d = out_row(o, y, 0);
        for (int x = 0; x < nw; x++, s0 += 6, s1 += 6) {
            d.p0[x] = lut[(s0[0] + s0[3] + s1[0] + s1[3] + 2) >> 2];
            d.p1[x] = lut[(s0[1] + s0[4] + s1[1] + s1[4] + 2) >> 2];
            d.p2[x] = lut[(s0[2] + s0[5] + s1[2] + s1[5] + 2) >> 2];
        }
    }
}

typedef struct {
    int x0, x1; /* byte offsets of the two source pixels */
    int a0, a1; /* their weights, out of COEF_ONE */
} xtap;

/* Source position and weights of one output column or row, as OpenCV's
 * resize computes them (float fx from a double expression, cvFloor,
 * saturate_cast<short> = round half to even). */
static inline void coef(int d, double scale, int *s, int *w0, int *w1)
{
    float f = (float)((d + 0.5) * scale - 0.5);
    int i = (int)floorf(f);
    f -= (float)i;
    *s = i;
    *w0 = (int)lrintf((1.f - f) * COEF_ONE);
    *w1 = (int)lrintf(f * COEF_ONE);
}

/* One source row through the horizontal pass, for a tile of columns. OpenCV
 * keeps these sums as ints and shifts them right by 4 (into 16 bits) at the
 * start of the vertical pass; shifting here gives the same numbers and lets
 * the vertical pass work on int16 lanes as OpenCV's SIMD code does. */
static void hpass(const uint8_t *row, const xtap *xt, int n, int16_t *out)
{
    for (int i = 0; i < n; i++, out += 3) {
        const uint8_t *p = row + xt[i].x0, *q = row + xt[i].x1;
        const int a0 = xt[i].a0, a1 = xt[i].a1;
        out[0] = (int16_t)((p[0] * a0 + q[0] * a1) >> 4);
        out[1] = (int16_t)((p[1] * a0 + q[1] * a1) >> 4);
        out[2] = (int16_t)((p[2] * a0 + q[2] * a1) >> 4);
    }
}

/* The vertical pass, OpenCV's VResizeLinear<uchar> arithmetic:
 * (((b0 * s0) >> 16) + ((b1 * s1) >> 16) + 2) >> 2, in fixed blocks of 16 so
 * that gcc -O2 vectorises it (to pmulhw). */
enum { VBLK = 16 };
static void vpass(const int16_t *restrict s0, const int16_t *restrict s1, int n, int16_t b0, int16_t b1,
                  uint8_t *restrict out)
{
    for (int k = 0; k < n; k += VBLK, s0 += VBLK, s1 += VBLK, out += VBLK)
        for (int j = 0; j < VBLK; j++) {
            int v = (((b0 * s0[j]) >> 16) + ((b1 * s1[j]) >> 16) + 2) >> 2;
            out[j] = (uint8_t)(v > 255 ? 255 : v);
        }
}

static void resize_linear(const uint8_t *src, int sw, int sh, int nw, int nh, const out_t *o)
{
    const double scale_x = 1.0 / ((double)nw / sw), scale_y = 1.0 / ((double)nh / sh);
    const size_t step = (size_t)sw * 3;
    xtap xt[TILE];
    /* Row buffers rounded up to whole vpass blocks; the tail lanes are
     * computed and never read. */
    int16_t hb[2][TILE * 3] = {{0}};
    uint8_t vb[TILE * 3];
    float lut[256];
    memcpy(lut, o->lut, sizeof lut);
    for (int tx = 0; tx < nw; tx += TILE) {
        const int tw = nw - tx < TILE ? nw - tx : TILE;
        for (int i = 0; i < tw; i++) {
            int sx, a0, a1;
            coef(tx + i, scale_x, &sx, &a0, &a1);
            /* Columns are clamped with their weight moved onto the edge pixel
             * (OpenCV does this for x only; rows are clamped below instead). */
            if (sx < 0) sx = 0, a0 = COEF_ONE, a1 = 0;
            if (sx >= sw - 1) sx = sw - 1, a0 = COEF_ONE, a1 = 0;
            xt[i] = (xtap){sx * 3, (sx + 1 < sw ? sx + 1 : sx) * 3, a0, a1};
        }
        int16_t *buf[2] = {hb[0], hb[1]};
        int held[2] = {-1, -1}; /* source row in each buffer: consecutive output rows share rows */
        for (int dy = 0; dy < nh; dy++) {
            int sy, b0, b1;
            coef(dy, scale_y, &sy, &b0, &b1);
            const int r0 = clampi(sy, 0, sh - 1), r1 = clampi(sy + 1, 0, sh - 1);
            if (held[0] != r0) {
                if (held[1] == r0) {
                    int16_t *t = buf[0];
                    buf[0] = buf[1], buf[1] = t;
                    held[1] = held[0], held[0] = r0;
                } else {
                    hpass(src + (size_t)r0 * step, xt, tw, buf[0]);
                    held[0] = r0;
                }
            }
            const int16_t *S0 = buf[0], *S1 = buf[0];
            if (r1 != r0) {
                if (held[1] != r1) {
                    hpass(src + (size_t)r1 * step, xt, tw, buf[1]);
                    held[1] = r1;
                }
                S1 = buf[1];
            }
            vpass(S0, S1, (3 * tw + VBLK - 1) / VBLK * VBLK, (int16_t)b0, (int16_t)b1, vb);
            if (o->colour) {
                put_colour(o, dy, tx, vb, tw);
                continue;
            }
            orow d = out_row(o, dy, tx);
            const uint8_t *v = vb;
            for (int i = 0; i < tw; i++, v += 3) d.p0[i] = lut[v[0]], d.p1[i] = lut[v[1]], d.p2[i] = lut[v[2]];
        }
    }
}

static void fill(float *p, size_t n, float v)
{
    for (size_t i = 0; i < n; i++) p[i] = v;
}

void letterbox(const uint8_t *src, int src_w, int src_h, float *dst, int dst_w, int dst_h, letterbox_style style,
               letterbox_map *map)
{
    letterbox_with_colour(src, src_w, src_h, dst, dst_w, dst_h, style, NULL, map);
}

void letterbox_with_colour(const uint8_t *src, int src_w, int src_h, float *dst, int dst_w, int dst_h,
                           letterbox_style style, const letterbox_colour *colour, letterbox_map *map)
{
    const bool yolox = style == LETTERBOX_YOLOX;
    const float pad = yolox ? 114.0f : 114.0f / 255.0f;
    const size_t plane = (size_t)dst_w * dst_h;
    if (!src || src_w <= 0 || src_h <= 0 || dst_w <= 0 || dst_h <= 0) {
        if (dst_w > 0 && dst_h > 0) fill(dst, 3 * plane, pad);
        *map = (letterbox_map){.gain = 1.0f};
        return;
    }

    const double r = fmin((double)dst_h / src_h, (double)dst_w / src_w);
    int nw, nh, left, top;
    if (yolox) {
        nw = (int)(src_w * r), nh = (int)(src_h * r); /* YOLOX preproc truncates */
    } else {
        /* Python's round() is half to even, which nearbyint does in the
         * default rounding mode. */
        nw = (int)nearbyint(src_w * r), nh = (int)nearbyint(src_h * r);
    }
    /* A very thin image could round to 0 (upstream would fail in cv2.resize). */
    nw = clampi(nw, 1, dst_w), nh = clampi(nh, 1, dst_h);
    if (yolox) {
        left = top = 0;
    } else {
        left = (int)nearbyint((dst_w - nw) / 2.0 - 0.1);
        top = (int)nearbyint((dst_h - nh) / 2.0 - 0.1);
    }
    *map = (letterbox_map){.gain = (float)r, .pad_left = left, .pad_top = top, .new_w = nw, .new_h = nh};

    out_t o = {.stride = dst_w, .off = (size_t)top * dst_w + left, .colour = colour && colour->apply ? colour : NULL};
    for (int c = 0; c < 3; c++) o.plane[c] = dst + (size_t)(yolox ? 2 - c : c) * plane;
    for (int v = 0; v < 256; v++) o.lut[v] = yolox ? (float)v : (float)v / 255.0f; /* as im / 255 in float32 */

    /* Padding: whole rows above and below, then the sides of the image rows. */
    for (int c = 0; c < 3; c++) {
        float *p = dst + (size_t)c * plane;
        fill(p, (size_t)top * dst_w, pad);
        fill(p + (size_t)(top + nh) * dst_w, (size_t)(dst_h - top - nh) * dst_w, pad);
        for (int y = top; y < top + nh; y++) {
            fill(p + (size_t)y * dst_w, (size_t)left, pad);
            fill(p + (size_t)y * dst_w + left + nw, (size_t)(dst_w - left - nw), pad);
        }
    }

    if (nw == src_w && nh == src_h) {
        copy_same(src, src_w, src_h, &o);
        return;
    }
    /* cv::resize turns INTER_LINEAR into its fast area path when both
     * scales are exactly 2 (same test: |1/(new/src) - 2| < DBL_EPSILON). */
    const double sx = 1.0 / ((double)nw / src_w), sy = 1.0 / ((double)nh / src_h);
    if (fabs(sx - 2.0) < DBL_EPSILON && fabs(sy - 2.0) < DBL_EPSILON) {
        resize_half(src, src_w, nw, nh, &o);
        return;
    }
    resize_linear(src, src_w, src_h, nw, nh, &o);
}

static inline float clip(float v, float hi)
{
    if (!(v > 0)) return 0; /* NaN too */
    return v > hi ? hi : v;
}

void letterbox_unmap(const letterbox_map *map, int img_w, int img_h, float *x1, float *y1, float *x2, float *y2)
{
    const float g = map->gain, pl = (float)map->pad_left, pt = (float)map->pad_top;
    *x1 = clip((*x1 - pl) / g, (float)img_w);
    *y1 = clip((*y1 - pt) / g, (float)img_h);
    *x2 = clip((*x2 - pl) / g, (float)img_w);
    *y2 = clip((*y2 - pt) / g, (float)img_h);
}
