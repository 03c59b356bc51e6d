/* YOLO output decoding on hand-made tensors, one test per layout, plus
 * layout detection from shapes and NMS edge cases. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "detect/yolo_decode.h"

static int feq(float a, float b) { return fabsf(a - b) <= 1e-4f * fmaxf(1.0f, fabsf(b)); }

static int box_is(const yolo_det *d, float x1, float y1, float x2, float y2)
{
    return feq(d->x1, x1) && feq(d->y1, y1) && feq(d->x2, x2) && feq(d->y2, y2);
}

static yolo_decode_opts opts(float conf, float iou, int max_det)
{
    return (yolo_decode_opts){.conf = conf, .iou = iou, .max_det = max_det};
}

/* ---- YOLOv8: [1, 4+nc, N], channel-major ---- */

enum { V8_NC = 3,
       V8_N = 5,
       V8_C = 4 + V8_NC };

/* Writes candidate i of a channel-major tensor. */
static void v8_set(float *t, int C, int N, int i, float cx, float cy, float w, float h, const float *scores)
{
    t[0 * N + i] = cx, t[1 * N + i] = cy, t[2 * N + i] = w, t[3 * N + i] = h;
    for (int c = 0; c < C - 4; c++) t[(4 + c) * N + i] = scores[c];
}

static void v8_tensor(float *t)
{
    memset(t, 0, sizeof(float) * V8_C * V8_N);
    v8_set(t, V8_C, V8_N, 0, 50, 50, 20, 20, (float[]){0.9f, 0.3f, 0});      /* class 0 */
    v8_set(t, V8_C, V8_N, 1, 52, 50, 20, 20, (float[]){0.8f, 0, 0});         /* class 0, IoU 0.82 with #0 */
    v8_set(t, V8_C, V8_N, 2, 51, 50, 20, 20, (float[]){0.1f, 0.7f, 0});      /* class 1 over #0: survives */
    v8_set(t, V8_C, V8_N, 3, 200, 200, 10, 10, (float[]){0, 0, 0.25f});      /* exactly conf: dropped */
    v8_set(t, V8_C, V8_N, 4, 300, 300, 10, 10, (float[]){0.1f, 0.6f, 0.6f}); /* tie: lowest class wins */
}

static void test_v8(void)
{
    float t[V8_C * V8_N];
    v8_tensor(t);
    const int64_t shape[] = {1, V8_C, V8_N};
    yolo_det *d;
    size_t n;
    yolo_decode_opts o = opts(0.25f, 0.5f, 300);
    CHECK_EQ_INT(yolo_decode(YOLO_LAYOUT_V8, t, shape, 3, 640, 640, &o, &d, &n), 0);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK(box_is(&d[0], 40, 40, 60, 60) && d[0].cls == 0 && d[0].score == 0.9f);
        CHECK(box_is(&d[1], 41, 40, 61, 60) && d[1].cls == 1 && d[1].score == 0.7f);
        CHECK(box_is(&d[2], 295, 295, 305, 305) && d[2].cls == 1 && d[2].score == 0.6f);
    }
    free(d);

    /* Class filter applies to the best class: #0 (best 0, second 1 at 0.3)
     * goes, #1 goes, so nothing suppresses anything. */
    bool allow12[] = {false, true, true};
    o.allowed = allow12, o.n_allowed = 3;
    CHECK_EQ_INT(yolo_decode(YOLO_LAYOUT_V8, t, shape, 3, 640, 640, &o, &d, &n), 0);
    CHECK_EQ_INT(n, 2);
    if (n == 2) CHECK(d[0].score == 0.7f && d[1].score == 0.6f);
    free(d);

    /* A short allowed array: classes past it are not allowed. */
    bool allow0[] = {true};
    o.allowed = allow0, o.n_allowed = 1;
    CHECK_EQ_INT(yolo_decode(YOLO_LAYOUT_V8, t, shape, 3, 640, 640, &o, &d, &n), 0);
    CHECK_EQ_INT(n, 1);
    if (n == 1) CHECK(d[0].cls == 0 && d[0].score == 0.9f);
    free(d);

    /* max_det truncates after NMS. */
    o = opts(0.25f, 0.5f, 2);
    CHECK_EQ_INT(yolo_decode(YOLO_LAYOUT_V8, t, shape, 3, 640, 640, &o, &d, &n), 0);
    CHECK_EQ_INT(n, 2);
    if (n == 2) CHECK(d[0].score == 0.9f && d[1].score == 0.7f);
    free(d);

    /* A looser IoU keeps the overlapping same-class box (IoU 0.818 <= 0.85). */
    o = opts(0.25f, 0.85f, 300);
    CHECK_EQ_INT(yolo_decode(YOLO_LAYOUT_V8, t, shape, 3, 640, 640, &o, &d, &n), 0);
    CHECK_EQ_INT(n, 4);
    free(d);

    /* Nothing passes: n = 0, out = NULL. */
    o = opts(0.95f, 0.5f, 300);
    CHECK_EQ_INT(yolo_decode(YOLO_LAYOUT_V8, t, shape, 3, 640, 640, &o, &d, &n), 0);
    CHECK_EQ_INT(n, 0);
    CHECK(d == NULL);
    o = opts(0.25f, 0.5f, 0);
    CHECK_EQ_INT(yolo_decode(YOLO_LAYOUT_V8, t, shape, 3, 640, 640, &o, &d, &n), 0);
    CHECK_EQ_INT(n, 0);
}

/* Many candidates (past the small-sort cutoff and the 512-candidate block),
 * scores with ties: highest first, equal scores in candidate order. */
static void test_v8_order(void)
{
    enum { N = 1500,
           C = 5 };
    float *t = calloc((size_t)C * N, sizeof(float));
    for (int i = 0; i < N; i++) {
        float s = 0.3f + (float)(i % 7) * 0.1f;
        v8_set(t, C, N, i, (float)i * 100, 10, 10, 10, &s);
    }
    const int64_t shape[] = {1, C, N};
    yolo_det *d;
    size_t n;
    yolo_decode_opts o = opts(0.25f, 0.5f, 100000);
    CHECK_EQ_INT(yolo_decode(YOLO_LAYOUT_V8, t, shape, 3, 640, 640, &o, &d, &n), 0);
    CHECK_EQ_INT(n, N);
    int bad = 0;
    for (size_t k = 1; k < n; k++)
        bad += d[k - 1].score < d[k].score || (d[k - 1].score == d[k].score && d[k - 1].x1 >= d[k].x1);
    CHECK_EQ_INT(bad, 0);
    if (n == N) CHECK(d[0].x1 == 6 * 100 - 5 && feq(d[0].score, 0.9f)); /* first i with i % 7 == 6 */
    free(d);
    free(t);
}

/* ---- end-to-end: [1, K, 6] ---- */

static void test_e2e(void)
{
    const float t[] = {
        10, 10, 50, 50, 0.9f, 0,      /* r0 */
        12, 12, 52, 52, 0.8f, 0,      /* r1: overlaps r0, no NMS here */
        0, 0, 5, 5, 0.25f, 1,         /* r2: exactly conf */
        100, 100, 120, 120, 0.95f, 2, /* r3: best, not first */
        1, 1, 2, 2, 0.5f, 7,          /* r4: class past the names */
        3, 3, 4, 4, 0.99f, -1,        /* r5: no class */
    };
    const int64_t shape[] = {1, 6, 6};
    yolo_det *d;
    size_t n;
    yolo_decode_opts o = opts(0.25f, 0.7f, 300);
    CHECK_EQ_INT(yolo_decode(YOLO_LAYOUT_E2E, t, shape, 3, 640, 640, &o, &d, &n), 0);
    CHECK_EQ_INT(n, 4);
    if (n == 4) {
        CHECK(d[0].cls == 2 && box_is(&d[0], 100, 100, 120, 120) && d[0].score == 0.95f);
        CHECK(d[1].cls == 0 && d[1].score == 0.9f);
        CHECK(d[2].cls == 0 && d[2].score == 0.8f);
        CHECK(d[3].cls == 7);
    }
    free(d);

    bool allow0[] = {true, false, false};
    o.allowed = allow0, o.n_allowed = 3;
    CHECK_EQ_INT(yolo_decode(YOLO_LAYOUT_E2E, t, shape, 3, 640, 640, &o, &d, &n), 0);
    CHECK_EQ_INT(n, 2);
    if (n == 2) CHECK(d[0].score == 0.9f && d[1].score == 0.8f);
    free(d);

    /* The class filter comes before max_det (as Ultralytics' end2end branch). */
    bool allow02[] = {true, false, true};
    o.allowed = allow02, o.max_det = 2;
    CHECK_EQ_INT(yolo_decode(YOLO_LAYOUT_E2E, t, shape, 3, 640, 640, &o, &d, &n), 0);
    CHECK_EQ_INT(n, 2);
    if (n == 2) CHECK(d[0].cls == 2 && d[1].cls == 0 && d[1].score == 0.9f);
    free(d);
}

/* ---- YOLOv5: [1, N, 5+nc] ---- */

static void test_v5(void)
{
    const float t[] = {
        100, 100, 20, 20, 0.3f, 0.9f, 0.1f,  /* 0.3 * 0.9 = 0.27 > 0.25: kept */
        400, 100, 20, 20, 0.2f, 1.0f, 0,     /* obj 0.2 <= conf: dropped before any product */
        300, 300, 10, 10, 0.9f, 0.2f, 0.25f, /* obj high, best product 0.225: dropped */
        102, 100, 20, 20, 0.5f, 0.1f, 0.8f,  /* 0.4, class 1, over row 0: both stay */
    };
    const int64_t shape[] = {1, 4, 7};
    yolo_det *d;
    size_t n;
    yolo_decode_opts o = opts(0.25f, 0.45f, 300);
    CHECK_EQ_INT(yolo_decode(YOLO_LAYOUT_V5, t, shape, 3, 640, 640, &o, &d, &n), 0);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        CHECK(d[0].cls == 1 && d[0].score == 0.5f * 0.8f && box_is(&d[0], 92, 90, 112, 110));
        CHECK(d[1].cls == 0 && d[1].score == 0.3f * 0.9f && box_is(&d[1], 90, 90, 110, 110));
    }
    free(d);
}

/* ---- YOLOX: raw grid outputs ---- */

static void test_yolox(void)
{
    /* 64x64 input: grids 8x8 (rows 0..63), 4x4 (64..79), 2x2 (80..83). */
    enum { N = 84,
           C = 7 };
    float t[N * C];
    memset(t, 0, sizeof t);
    const float r70[] = {0.5f, 0.5f, logf(2), logf(3), 0.8f, 0.1f, 0.9f}; /* stride 16, x=2 y=1 */
    const float r43[] = {0.25f, 0.75f, 0, 0, 0.9f, 0.5f, 0};              /* stride 8, x=3 y=5 */
    const float r83[] = {0, 0, 0, 0, 0.5f, 0.6f, 0};                      /* stride 32, x=1 y=1 */
    const float r10[] = {0, 0, 0, 0, 0.9f, 0.2f, 0.1f};                   /* 0.18: dropped */
    memcpy(t + 70 * C, r70, sizeof r70);
    memcpy(t + 43 * C, r43, sizeof r43);
    memcpy(t + 83 * C, r83, sizeof r83);
    memcpy(t + 10 * C, r10, sizeof r10);
    const int64_t shape[] = {1, N, C};
    yolo_det *d;
    size_t n;
    yolo_decode_opts o = opts(0.25f, 0.45f, 300);
    CHECK_EQ_INT(yolo_decode(YOLO_LAYOUT_YOLOX, t, shape, 3, 64, 64, &o, &d, &n), 0);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        /* cx = (0.5+2)*16 = 40, cy = (0.5+1)*16 = 24, w = 2*16, h = 3*16 */
        CHECK(d[0].cls == 1 && feq(d[0].score, 0.72f) && box_is(&d[0], 24, 0, 56, 48));
        /* cx = 3.25*8 = 26, cy = 5.75*8 = 46, w = h = 8 */
        CHECK(d[1].cls == 0 && feq(d[1].score, 0.45f) && box_is(&d[1], 22, 42, 30, 50));
        /* cx = cy = 1*32, w = h = 32 */
        CHECK(d[2].cls == 0 && feq(d[2].score, 0.3f) && box_is(&d[2], 16, 16, 48, 48));
    }
    free(d);
    /* Rows that do not match the input's grids are refused. */
    const int64_t bad[] = {1, N - 1, C};
    CHECK_EQ_INT(yolo_decode(YOLO_LAYOUT_YOLOX, t, bad, 3, 64, 64, &o, &d, &n), -1);
}

/* ---- layout detection ---- */

static void test_detect(void)
{
    yolo_layout l;
    int nc;
    char err[512];
#define SHAPE(...) (const int64_t[]){__VA_ARGS__}, sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(1, 84, 8400), 640, 640, -1, -1, &l, &nc, err, sizeof err), 0);
    CHECK(l == YOLO_LAYOUT_V8 && nc == 80);
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(1, 300, 6), 640, 640, 1, -1, &l, &nc, err, sizeof err), 0);
    CHECK(l == YOLO_LAYOUT_E2E && nc == 0);
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(1, 300, 6), 640, 640, -1, -1, &l, &nc, err, sizeof err), 0);
    CHECK(l == YOLO_LAYOUT_E2E);
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(1, 300, 6), 640, 640, 0, -1, &l, &nc, err, sizeof err), -1);
    CHECK(strstr(err, "[1, 300, 6]") != NULL);
    /* A 2-class v8 model: the order of dimensions tells it from end2end. */
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(1, 6, 8400), 640, 640, -1, -1, &l, &nc, err, sizeof err), 0);
    CHECK(l == YOLO_LAYOUT_V8 && nc == 2);
    /* 416: 52^2 + 26^2 + 13^2 = 3549 cells. */
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(1, 3549, 85), 416, 416, -1, -1, &l, &nc, err, sizeof err), 0);
    CHECK(l == YOLO_LAYOUT_YOLOX && nc == 80);
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(1, 25200, 85), 640, 640, -1, -1, &l, &nc, err, sizeof err), 0);
    CHECK(l == YOLO_LAYOUT_V5 && nc == 80);
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(1, 84), 640, 640, -1, -1, &l, &nc, err, sizeof err), -1);
    CHECK(strstr(err, "unsupported YOLO output shape [1, 84]") != NULL);
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(1, 5, 5, 5), 640, 640, -1, -1, &l, &nc, err, sizeof err), -1);
    CHECK(strstr(err, "[1, 5, 5, 5]") != NULL);
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(2, 84, 8400), 640, 640, -1, -1, &l, &nc, err, sizeof err), -1);
    CHECK(strstr(err, "[2, 84, 8400]") != NULL && strstr(err, "batch 1") != NULL);
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(1, 100, 85), 640, 640, -1, -1, &l, &nc, err, sizeof err), -1);
    CHECK(strstr(err, "[1, 100, 85]") != NULL && strstr(err, "8400") != NULL && strstr(err, "25200") != NULL);
    CHECK(strstr(err, "supported:") != NULL);

    /* Forced layouts: taken when the shape fits, refused with a reason if not. */
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(1, 8400, 85), 640, 640, -1, YOLO_LAYOUT_V5, &l, &nc, err, sizeof err), 0);
    CHECK(l == YOLO_LAYOUT_V5 && nc == 80);
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(1, 25200, 85), 640, 640, -1, YOLO_LAYOUT_YOLOX, &l, &nc, err, sizeof err), -1);
    CHECK(strstr(err, "yolox") != NULL && strstr(err, "8400") != NULL);
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(1, 84, 8400), 640, 640, -1, YOLO_LAYOUT_E2E, &l, &nc, err, sizeof err), -1);
    CHECK(strstr(err, "end2end") != NULL && strstr(err, "[1, 84, 8400]") != NULL);
    CHECK_EQ_INT(yolo_layout_detect(SHAPE(1, 84, 8400), 640, 640, -1, 9, &l, &nc, err, sizeof err), -1);
#undef SHAPE
    CHECK_STR(yolo_layout_name(YOLO_LAYOUT_V8), "yolov8");
    CHECK_STR(yolo_layout_name(YOLO_LAYOUT_E2E), "end2end");
    CHECK_STR(yolo_layout_name(YOLO_LAYOUT_V5), "yolov5");
    CHECK_STR(yolo_layout_name(YOLO_LAYOUT_YOLOX), "yolox");
}

/* ---- NMS ---- */

static size_t nms2(yolo_det a, yolo_det b, float iou)
{
    yolo_det d[2] = {a, b};
    return yolo_nms(d, 2, iou, 300);
}

static void test_nms(void)
{
    const yolo_det box = {0, 0, 10, 10, 0.9f, 0, 0};
    yolo_det same = box;
    same.score = 0.8f;
    CHECK_EQ_INT(nms2(box, same, 0.7f), 1); /* identical: IoU 1 */
    CHECK_EQ_INT(nms2(box, same, 1.0f), 2); /* 1 > 1 is false */
    yolo_det other = same;
    other.cls = 1;
    CHECK_EQ_INT(nms2(box, other, 0.0f), 2);                                                             /* other class never suppresses */
    CHECK_EQ_INT(nms2(box, (yolo_det){10, 0, 20, 10, 0.8f, 0, 0}, 0.0f), 2);                             /* touching: IoU 0 */
    CHECK_EQ_INT(nms2((yolo_det){5, 5, 5, 5, 0.9f, 0, 0}, (yolo_det){5, 5, 5, 5, 0.8f, 0, 0}, 0.0f), 2); /* 0/0 */
    CHECK_EQ_INT(nms2(box, (yolo_det){5, 5, 5, 5, 0.8f, 0, 0}, 0.0f), 2);                                /* point inside */
    CHECK_EQ_INT(nms2(box, (yolo_det){0, 0, 10, 5, 0.8f, 0, 0}, 0.5f), 2);                               /* IoU exactly 0.5 */
    CHECK_EQ_INT(nms2(box, (yolo_det){0, 0, 10, 5, 0.8f, 0, 0}, 0.49f), 1);

    /* Greedy: A suppresses B (IoU 0.54); C overlaps B as much but A only
     * 0.25, and a suppressed box suppresses nothing, so C stays. */
    yolo_det d[4] = {{0, 0, 10, 10, 0.9f, 0, 0}, {3, 0, 13, 10, 0.8f, 0, 0}, {6, 0, 16, 10, 0.7f, 0, 0}, {50, 50, 60, 60, 0.6f, 0, 0}};
    CHECK_EQ_INT(yolo_nms(d, 4, 0.5f, 300), 3);
    CHECK(d[0].score == 0.9f && d[1].score == 0.7f && d[2].score == 0.6f);
    yolo_det e[3] = {{0, 0, 1, 1, 0.9f, 0, 0}, {5, 5, 6, 6, 0.8f, 0, 0}, {9, 9, 10, 10, 0.7f, 0, 0}};
    CHECK_EQ_INT(yolo_nms(e, 3, 0.5f, 2), 2);
    CHECK_EQ_INT(yolo_nms(e, 3, 0.5f, 0), 0);
}

int main(void)
{
    test_v8();
    test_v8_order();
    test_e2e();
    test_v5();
    test_yolox();
    test_detect();
    test_nms();
    return check_report("yolo_decode");
}
