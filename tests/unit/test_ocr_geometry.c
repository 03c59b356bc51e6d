/* Minimum-area rectangles, PaddleOCR's corner orders, unclip, perspective
 * crops, and the DB post-processing on synthetic probability maps. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "ocr/db_postprocess.h"
#include "ocr/geometry.h"

#define NEAR(a, b) (fabsf((a) - (b)) < 1e-3f)

static void test_min_area_rect_axis(void)
{
    /* A filled 10x4 block of pixel centres: the rectangle is 9 x 3. */
    ocr_pt pts[40], hull[40], box[4];
    int n = 0;
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 10; x++) pts[n++] = (ocr_pt){(float)(x + 5), (float)(y + 7)};
    float s = ocr_min_area_rect(pts, n, hull, box);
    CHECK(NEAR(s, 3));
    CHECK(NEAR(box[0].x, 5) && NEAR(box[0].y, 7));
    CHECK(NEAR(box[1].x, 14) && NEAR(box[1].y, 7));
    CHECK(NEAR(box[2].x, 14) && NEAR(box[2].y, 10));
    CHECK(NEAR(box[3].x, 5) && NEAR(box[3].y, 10));
    CHECK_EQ_INT(ocr_convex_hull(pts, n, hull), 4);
}

static void test_min_area_rect_rotated(void)
{
    /* Corners of a 20 x 6 rectangle turned by 30 degrees, plus inner points. */
    ocr_pt pts[8], hull[8], box[4];
    const float c = cosf(0.5235988f), s = sinf(0.5235988f);
    const float u[4] = {0, 20, 20, 0}, v[4] = {0, 0, 6, 6};
    for (int i = 0; i < 4; i++) pts[i] = (ocr_pt){50 + u[i] * c - v[i] * s, 10 + u[i] * s + v[i] * c};
    for (int i = 4; i < 8; i++) pts[i] = (ocr_pt){50 + (i - 3) * 3 * c - 2 * s, 10 + (i - 3) * 3 * s + 2 * c};
    float side = ocr_min_area_rect(pts, 8, hull, box);
    CHECK(fabsf(side - 6) < 1e-3f);
    CHECK(fabsf(ocr_dist(box[0], box[1]) * ocr_dist(box[1], box[2]) - 120) < 1e-2f);
    /* Every input point is inside. */
    for (int i = 0; i < 8; i++) {
        ocr_pt grown[4];
        ocr_unclip_rect(box, 0.01f, grown);
        CHECK(ocr_quad_contains(grown, pts[i].x, pts[i].y));
    }
    /* Degenerate inputs. */
    CHECK(ocr_min_area_rect(pts, 1, hull, box) == 0);
    CHECK(ocr_min_area_rect(pts, 0, hull, box) == 0);
    ocr_pt line[3] = {{0, 0}, {5, 0}, {10, 0}};
    CHECK(ocr_min_area_rect(line, 3, hull, box) == 0);
}

static void test_orders(void)
{
    /* get_mini_boxes: by x, then the upper of each pair first. */
    ocr_pt b[4] = {{10, 5}, {0, 6}, {11, 0}, {1, 1}};
    ocr_order_mini_box(b);
    CHECK(b[0].x == 1 && b[1].x == 11 && b[2].x == 10 && b[3].x == 0);
    ocr_pt c[4] = {{10, 10}, {0, 10}, {0, 0}, {10, 0}};
    ocr_order_clockwise(c);
    CHECK(c[0].x == 0 && c[0].y == 0 && c[1].x == 10 && c[1].y == 0);
    CHECK(c[2].x == 10 && c[2].y == 10 && c[3].x == 0 && c[3].y == 10);
}

static void test_unclip(void)
{
    /* 100 x 20: area 2000, perimeter 240, d = 2000 * 1.5 / 240 = 12.5. */
    ocr_pt b[4] = {{0, 0}, {100, 0}, {100, 20}, {0, 20}}, o[4];
    ocr_unclip_rect(b, 1.5f, o);
    CHECK(NEAR(o[0].x, -12.5f) && NEAR(o[0].y, -12.5f));
    CHECK(NEAR(o[2].x, 112.5f) && NEAR(o[2].y, 32.5f));
    /* A degenerate box stays put. */
    ocr_pt z[4] = {{3, 3}, {3, 3}, {3, 3}, {3, 3}};
    ocr_unclip_rect(z, 1.5f, o);
    CHECK(NEAR(o[0].x, 3) && NEAR(o[3].y, 3));
}

static void test_crop(void)
{
    /* 8x4 image, pixel value = x*10 + y in red. Crop the axis-aligned quad
     * (2,1)-(6,3): 4 x 2 pixels, sampled at integer positions. */
    uint8_t img[8 * 4 * 3] = {0};
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 8; x++) img[(y * 8 + x) * 3] = (uint8_t)(x * 10 + y);
    ocr_pt q[4] = {{2, 1}, {6, 1}, {6, 3}, {2, 3}};
    int w, h;
    uint8_t *c = ocr_crop_quad(img, 8, 4, q, 1000, &w, &h);
    CHECK(c && w == 4 && h == 2);
    if (c) {
        CHECK_EQ_INT(c[0], 21);
        CHECK_EQ_INT(c[(1 * 4 + 3) * 3], 52);
    }
    free(c);
    /* A tall crop (h / w >= 1.5) is turned counter-clockwise. */
    ocr_pt t[4] = {{1, 0}, {3, 0}, {3, 3}, {1, 3}};
    c = ocr_crop_quad(img, 8, 4, t, 1000, &w, &h);
    CHECK(c && w == 3 && h == 2);
    if (c) {
        CHECK_EQ_INT(c[0], 20);               /* top-left = old top-right (x=2,y=0) */
        CHECK_EQ_INT(c[(1 * 3 + 2) * 3], 12); /* bottom-right = old bottom-left (x=1,y=2) */
    }
    free(c);
    /* Degenerate and over-budget quads give nothing. */
    ocr_pt z[4] = {{1, 1}, {1, 1}, {1, 1}, {1, 1}};
    CHECK(ocr_crop_quad(img, 8, 4, z, 1000, &w, &h) == NULL);
    CHECK(ocr_crop_quad(img, 8, 4, q, 4, &w, &h) == NULL);
    /* A quad outside the image replicates the edges, never reads outside. */
    ocr_pt far[4] = {{-50, -50}, {50, -50}, {50, 50}, {-50, 50}};
    c = ocr_crop_quad(img, 8, 4, far, 100000, &w, &h);
    CHECK(c && w == 100 && h == 100);
    free(c);
}

static void test_db(void)
{
    /* A 64x32 map with one bright bar (x 10..49, y 12..19) and a speck. */
    const int W = 64, H = 32;
    float *m = calloc((size_t)W * H, sizeof *m);
    for (int y = 12; y < 20; y++)
        for (int x = 10; x < 50; x++) m[y * W + x] = 0.9f;
    m[2 * W + 2] = 0.9f;
    ocr_db_params p;
    ocr_db_defaults(&p);
    ocr_det_box *b;
    int n;
    CHECK(ocr_db_boxes(m, W, H, 128, 64, &p, &b, &n) == 0);
    CHECK_EQ_INT(n, 1);
    if (n == 1) {
        /* 39 x 7 rectangle grown by 39*7*1.5/92 = 4.45 per side, then x2 to the image. */
        CHECK(fabsf(b[0].box[0].x - 11) <= 1 && fabsf(b[0].box[0].y - 15) <= 1);
        CHECK(fabsf(b[0].box[2].x - 107) <= 1 && fabsf(b[0].box[2].y - 47) <= 1);
        CHECK(b[0].score > 0.89f);
    }
    free(b);
    /* A faint region (under box_thresh on average) is dropped. */
    for (int i = 0; i < W * H; i++) m[i] = m[i] > 0 ? 0.4f : 0;
    CHECK(ocr_db_boxes(m, W, H, 128, 64, &p, &b, &n) == 0);
    CHECK_EQ_INT(n, 0);
    free(b);
    /* Blank and everything-text maps. */
    for (int i = 0; i < W * H; i++) m[i] = 0;
    CHECK(ocr_db_boxes(m, W, H, 128, 64, &p, &b, &n) == 0 && n == 0);
    free(b);
    for (int i = 0; i < W * H; i++) m[i] = 1;
    CHECK(ocr_db_boxes(m, W, H, 1, 1, &p, &b, &n) == 0 && n == 0); /* a 1x1 image: boxes too thin */
    free(b);
    CHECK(ocr_db_boxes(m, W, H, 640, 320, &p, &b, &n) == 0 && n == 1);
    free(b);
    free(m);
}

int main(void)
{
    test_min_area_rect_axis();
    test_min_area_rect_rotated();
    test_orders();
    test_unclip();
    test_crop();
    test_db();
    return check_report("test_ocr_geometry");
}
