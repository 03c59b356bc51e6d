/* Letterbox geometry (Ultralytics and YOLOX rules), OpenCV-exact INTER_LINEAR
 * values, padding, channel order, and the inverse box mapping. Expected pixel
 * values are cv2.resize's (checked against OpenCV 4.6; the arithmetic for one
 * is spelled out below). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "detect/letterbox.h"

#define PAD_U (114.0f / 255.0f)

static float at(const float *t, int w, int h, int c, int x, int y) { return t[(size_t)c * w * h + (size_t)y * w + x]; }

/* An RGB image from three planes of bytes. */
static uint8_t *rgb(int w, int h, const uint8_t *r, const uint8_t *g, const uint8_t *b)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++) p[3 * i] = r[i], p[3 * i + 1] = g[i], p[3 * i + 2] = b[i];
    return p;
}

static const uint8_t R42[] = {10, 50, 90, 130, 20, 60, 100, 200};
static const uint8_t G42[] = {0, 255, 0, 255, 255, 0, 255, 0};
static const uint8_t B42[] = {1, 2, 3, 4, 5, 6, 7, 8};
/* cv2.resize of that 4x2 image to 8x4, per channel, row-major. */
static const uint8_t R84[] = {10, 20, 40, 60, 80, 100, 120, 130, 13, 23, 43, 63, 83, 106, 134, 148,
                              18, 28, 48, 68, 88, 119, 161, 183, 20, 30, 50, 70, 90, 125, 175, 200};
static const uint8_t G84[] = {0, 64, 191, 191, 64, 64, 191, 255, 64, 96, 159, 159, 96, 96, 159, 191,
                              191, 159, 96, 96, 159, 159, 96, 64, 255, 191, 64, 64, 191, 191, 64, 0};
static const uint8_t B84[] = {1, 1, 2, 2, 3, 3, 4, 4, 2, 2, 3, 3, 4, 4, 5, 5,
                              4, 4, 5, 5, 6, 6, 7, 7, 5, 5, 6, 6, 7, 7, 8, 8};

static void test_ultralytics_upscale(void)
{
    uint8_t *img = rgb(4, 2, R42, G42, B42);
    float t[3 * 64];
    letterbox_map m;
    letterbox(img, 4, 2, t, 8, 8, LETTERBOX_ULTRALYTICS, &m);
    CHECK(m.gain == 2.0f);
    CHECK_EQ_INT(m.new_w, 8);
    CHECK_EQ_INT(m.new_h, 4);
    CHECK_EQ_INT(m.pad_left, 0); /* round(0 - 0.1) */
    CHECK_EQ_INT(m.pad_top, 2);  /* round(2 - 0.1) */
    int bad_pad = 0, bad_px = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                float v = at(t, 8, 8, c, x, y);
                if (y < 2 || y >= 6) {
                    bad_pad += v != PAD_U;
                } else {
                    const uint8_t *want = c == 0 ? R84 : c == 1 ? G84
                                                                : B84; /* R plane first */
                    bad_px += v != (float)want[(y - 2) * 8 + x] / 255.0f;
                }
            }
    CHECK_EQ_INT(bad_pad, 0);
    CHECK_EQ_INT(bad_px, 0);
    /* Output (1,1), red, by hand: x and y both sit at 0.25 past pixel 0, so
     * weights are (1536, 512) of 2048. Row 0: 10*1536 + 50*512 = 40960; row 1:
     * 20*1536 + 60*512 = 61440. ((1536*(40960>>4))>>16) + ((512*(61440>>4))>>16)
     * = 60 + 30, and (90 + 2) >> 2 = 23: the exact 22.5 rounds up. */
    CHECK(at(t, 8, 8, 0, 1, 3) == 23.0f / 255.0f);
    /* Edges: the first column is the first pixel, the last row the last. */
    CHECK(at(t, 8, 8, 0, 0, 2) == 10.0f / 255.0f);
    CHECK(at(t, 8, 8, 0, 7, 5) == 200.0f / 255.0f);
    free(img);
}

static void test_yolox_style(void)
{
    uint8_t *img = rgb(4, 2, R42, G42, B42);
    float t[3 * 64];
    letterbox_map m;
    letterbox(img, 4, 2, t, 8, 8, LETTERBOX_YOLOX, &m);
    CHECK(m.gain == 2.0f);
    CHECK_EQ_INT(m.pad_left, 0);
    CHECK_EQ_INT(m.pad_top, 0);
    CHECK_EQ_INT(m.new_w, 8);
    CHECK_EQ_INT(m.new_h, 4);
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                float v = at(t, 8, 8, c, x, y);
                if (y >= 4) {
                    bad += v != 114.0f; /* top-left placement: padding below */
                } else {
                    const uint8_t *want = c == 0 ? B84 : c == 1 ? G84
                                                                : R84; /* BGR, unscaled */
                    bad += v != (float)want[y * 8 + x];
                }
            }
    CHECK_EQ_INT(bad, 0);
    CHECK(at(t, 8, 8, 2, 1, 1) == 23.0f);
    free(img);
}

static void test_identity_copy(void)
{
    /* 4x3 into 4x4: gain 1, no resize; dh = 0.5 puts the odd row at the bottom. */
    uint8_t src[4 * 3 * 3];
    for (int i = 0; i < (int)sizeof src; i++) src[i] = (uint8_t)(i * 7 + 1);
    float t[3 * 16];
    letterbox_map m;
    letterbox(src, 4, 3, t, 4, 4, LETTERBOX_ULTRALYTICS, &m);
    CHECK(m.gain == 1.0f);
    CHECK_EQ_INT(m.pad_top, 0); /* round(0.5 - 0.1) */
    CHECK_EQ_INT(m.new_w, 4);
    CHECK_EQ_INT(m.new_h, 3);
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
                bad += at(t, 4, 4, c, x, y) != (y < 3 ? (float)src[(y * 4 + x) * 3 + c] / 255.0f : PAD_U);
    CHECK_EQ_INT(bad, 0);
}

static void test_half_scale_area_path(void)
{
    /* An exact 2x downscale is OpenCV's area mean, rounded half up: the block
     * {0,1,0,1} gives (2 + 2) >> 2 = 1 where a float 0.5 rounded to even is 0. */
    uint8_t p[8 * 4] = {0, 1, 0, 1, 9, 9, 9, 9, 0, 1, 0, 1, 9, 9, 9, 9,
                        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3};
    uint8_t *img = rgb(8, 4, p, p, p);
    float t[3 * 16];
    letterbox_map m;
    letterbox(img, 8, 4, t, 4, 4, LETTERBOX_ULTRALYTICS, &m);
    CHECK(m.gain == 0.5f);
    CHECK_EQ_INT(m.new_w, 4);
    CHECK_EQ_INT(m.new_h, 2);
    CHECK_EQ_INT(m.pad_top, 1);
    static const uint8_t want[] = {1, 1, 9, 9, 2, 2, 2, 2}; /* cv2.resize */
    int bad = 0;
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 4; x++) bad += at(t, 4, 4, 1, x, y + 1) != (float)want[y * 4 + x] / 255.0f;
    CHECK_EQ_INT(bad, 0);
    CHECK(at(t, 4, 4, 0, 0, 0) == PAD_U && at(t, 4, 4, 2, 3, 3) == PAD_U);
    free(img);
}

static void test_rounding_rules(void)
{
    float *t = malloc(sizeof(float) * 3 * 640 * 640);
    uint8_t *img = calloc((size_t)810 * 1080 * 3, 1); /* black, so padding (114) stands out */
    letterbox_map m;

    /* Portrait phone photo: new 480x640, left = round(80 - 0.1) = 80. */
    letterbox(img, 810, 1080, t, 640, 640, LETTERBOX_ULTRALYTICS, &m);
    CHECK_EQ_INT(m.new_w, 480);
    CHECK_EQ_INT(m.new_h, 640);
    CHECK_EQ_INT(m.pad_left, 80);
    CHECK_EQ_INT(m.pad_top, 0);
    CHECK(at(t, 640, 640, 0, 79, 300) == PAD_U);
    CHECK(at(t, 640, 640, 0, 80, 300) == 0.0f);
    CHECK(at(t, 640, 640, 2, 559, 639) == 0.0f);
    CHECK(at(t, 640, 640, 2, 560, 0) == PAD_U);

    /* Python's round is half to even: 5 * 0.5 = 2.5 -> 2 (not 3), dh = 3 -> top 3. */
    letterbox(img, 16, 5, t, 8, 8, LETTERBOX_ULTRALYTICS, &m);
    CHECK_EQ_INT(m.new_w, 8);
    CHECK_EQ_INT(m.new_h, 2);
    CHECK_EQ_INT(m.pad_top, 3);
    /* 7 * 0.5 = 3.5 -> 4; dh = 2 -> top = round(1.9) = 2. */
    letterbox(img, 16, 7, t, 8, 8, LETTERBOX_ULTRALYTICS, &m);
    CHECK_EQ_INT(m.new_h, 4);
    CHECK_EQ_INT(m.pad_top, 2);
    /* YOLOX truncates instead: 3.5 -> 3. */
    letterbox(img, 16, 7, t, 8, 8, LETTERBOX_YOLOX, &m);
    CHECK_EQ_INT(m.new_h, 3);
    CHECK_EQ_INT(m.pad_top, 0);
    /* 3x1 into 8x8: gain 8/3, new 8x3, dh = 2.5 -> top = round(2.4) = 2 (and
     * bottom 3): the odd padding row goes below. */
    letterbox(img, 3, 1, t, 8, 8, LETTERBOX_ULTRALYTICS, &m);
    CHECK_EQ_INT(m.new_w, 8);
    CHECK_EQ_INT(m.new_h, 3);
    CHECK_EQ_INT(m.pad_left, 0);
    CHECK_EQ_INT(m.pad_top, 2);
    CHECK(at(t, 8, 8, 0, 0, 1) == PAD_U && at(t, 8, 8, 0, 0, 2) == 0.0f);
    CHECK(at(t, 8, 8, 0, 0, 4) == 0.0f && at(t, 8, 8, 0, 0, 5) == PAD_U);
    /* Landscape 1080x810 -> 640x480, top = round(80 - 0.1) = 80. */
    letterbox(img, 1080, 810, t, 640, 640, LETTERBOX_ULTRALYTICS, &m);
    CHECK_EQ_INT(m.new_w, 640);
    CHECK_EQ_INT(m.new_h, 480);
    CHECK_EQ_INT(m.pad_top, 80);
    free(img);
    free(t);
}

/* Within 1e-4, relative past 1 (float rounding of the forward mapping). */
static int near(float a, float b) { return fabsf(a - b) <= 1e-4f * fmaxf(1.0f, fabsf(b)); }

static void test_unmap(void)
{
    letterbox_map m;
    float *t = malloc(sizeof(float) * 3 * 640 * 640);
    uint8_t *img = calloc((size_t)810 * 1080 * 3, 1);
    letterbox(img, 810, 1080, t, 640, 640, LETTERBOX_ULTRALYTICS, &m);
    /* A box in the image, mapped into model pixels, comes back. */
    float bx[4] = {100.5f, 200.25f, 700.0f, 1000.0f};
    float x1 = bx[0] * m.gain + m.pad_left, y1 = bx[1] * m.gain + m.pad_top;
    float x2 = bx[2] * m.gain + m.pad_left, y2 = bx[3] * m.gain + m.pad_top;
    letterbox_unmap(&m, 810, 1080, &x1, &y1, &x2, &y2);
    CHECK(near(x1, bx[0]) && near(y1, bx[1]) && near(x2, bx[2]) && near(y2, bx[3]));
    /* Boxes reaching into the padding are clipped to the image. */
    x1 = 10, y1 = -5, x2 = 630, y2 = 700;
    letterbox_unmap(&m, 810, 1080, &x1, &y1, &x2, &y2);
    CHECK(x1 == 0.0f && y1 == 0.0f);
    CHECK(x2 == 810.0f && y2 == 1080.0f);
    /* YOLOX: no offset, just the gain. */
    letterbox(img, 810, 1080, t, 640, 640, LETTERBOX_YOLOX, &m);
    x1 = 48, y1 = 64, x2 = 96, y2 = 128;
    letterbox_unmap(&m, 810, 1080, &x1, &y1, &x2, &y2);
    CHECK(near(x1, 81.0f) && near(y1, 108.0f) && near(x2, 162.0f) && near(y2, 216.0f)); /* / (640/1080) */
    free(img);
    free(t);
}

/* The colour hook sees the resized bytes: a channel swap through it equals
 * the letterbox of the swapped image, on each resize path (plain copy, the
 * 2x area path, bilinear, and wider than one tile of columns). */
static void swap_rb(const void *ctx, uint8_t *p, size_t n)
{
    (*(int *)ctx)++;
    for (size_t i = 0; i < n; i++, p += 3) {
        uint8_t t = p[0];
        p[0] = p[2], p[2] = t;
    }
}

static void test_colour_hook(void)
{
    static const int sizes[][4] = {{6, 4, 6, 6}, {16, 8, 8, 8}, {33, 17, 20, 20}, {1300, 40, 640, 640}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const int w = sizes[k][0], h = sizes[k][1], dw = sizes[k][2], dh = sizes[k][3];
        uint8_t *a = malloc((size_t)w * h * 3), *b = malloc((size_t)w * h * 3);
        for (int i = 0; i < w * h * 3; i++) a[i] = (uint8_t)(i * 37 + i / 7);
        for (int i = 0; i < w * h; i++) b[3 * i] = a[3 * i + 2], b[3 * i + 1] = a[3 * i + 1], b[3 * i + 2] = a[3 * i];
        float *t1 = malloc(sizeof(float) * 3 * dw * dh), *t2 = malloc(sizeof(float) * 3 * dw * dh);
        int calls = 0;
        const letterbox_colour c = {swap_rb, &calls};
        letterbox_map m1, m2;
        letterbox_with_colour(a, w, h, t1, dw, dh, LETTERBOX_ULTRALYTICS, &c, &m1);
        letterbox(b, w, h, t2, dw, dh, LETTERBOX_ULTRALYTICS, &m2);
        CHECK(calls >= m1.new_h);
        CHECK(m1.new_w == m2.new_w && m1.new_h == m2.new_h);
        CHECK(!memcmp(t1, t2, sizeof(float) * 3 * dw * dh));
        free(a), free(b), free(t1), free(t2);
    }
}

int main(void)
{
    test_colour_hook();
    test_ultralytics_upscale();
    test_yolox_style();
    test_identity_copy();
    test_half_scale_area_path();
    test_rounding_rules();
    test_unmap();
    return check_report("letterbox");
}
