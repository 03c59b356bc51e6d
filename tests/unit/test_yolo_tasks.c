/* Task detection, keypoints, oriented boxes, classification and masks on
 * hand-made tensors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "detect/mask.h"
#include "detect/yolo_tasks.h"

static int detect_task(const char *task, int kk, int kd, int names, const int64_t *s0, size_t n0, const int64_t *s1,
                       size_t n1, yolo_task_spec *spec, char *err)
{
    yolo_model_info mi = {.task = task, .kpt_k = kk, .kpt_d = kd, .n_names = names, .in_w = 640, .in_h = 640, .end2end = -1, .layout_hint = -1};
    const int64_t *const shapes[2] = {s0, s1};
    const size_t nd[2] = {n0, n1};
    return yolo_task_detect(&mi, shapes, nd, s1 ? 2 : 1, spec, err, 512);
}

static void test_task_detect(void)
{
    char err[512];
    yolo_task_spec s;
    const int64_t seg[3] = {1, 116, 8400}, proto[4] = {1, 32, 160, 160};
    CHECK_EQ_INT(detect_task("segment", 0, 0, 80, seg, 3, proto, 4, &s, err), 0);
    CHECK(s.task == YOLO_TASK_SEGMENT && s.nc == 80 && s.n_proto == 32 && s.proto_h == 160);
    /* No task metadata: a second 4-d output still says segment. */
    CHECK_EQ_INT(detect_task(NULL, 0, 0, -1, seg, 3, proto, 4, &s, err), 0);
    CHECK(s.task == YOLO_TASK_SEGMENT && s.nc == 80);
    /* Read as boxes, the seg output has 112 classes for 80 names: refused. */
    CHECK_EQ_INT(detect_task("detect", 0, 0, 80, seg, 3, NULL, 0, &s, err), -1);
    CHECK(strstr(err, "implies 112 classes but the model has 80 names") != NULL);
    const int64_t pose[3] = {1, 56, 8400};
    CHECK_EQ_INT(detect_task("pose", 17, 3, 1, pose, 3, NULL, 0, &s, err), 0);
    CHECK(s.task == YOLO_TASK_POSE && s.nc == 1 && s.kpt_k == 17);
    CHECK_EQ_INT(detect_task("pose", 0, 0, 1, pose, 3, NULL, 0, &s, err), -1);
    CHECK(strstr(err, "kpt_shape") != NULL);
    CHECK_EQ_INT(detect_task("pose", 17, 4, 1, pose, 3, NULL, 0, &s, err), -1);
    CHECK_EQ_INT(detect_task("pose", 17, 3, 2, pose, 3, NULL, 0, &s, err), -1);
    const int64_t obb[3] = {1, 20, 21504};
    CHECK_EQ_INT(detect_task("obb", 0, 0, 15, obb, 3, NULL, 0, &s, err), 0);
    CHECK(s.task == YOLO_TASK_OBB && s.nc == 15);
    const int64_t cls[2] = {1, 1000};
    CHECK_EQ_INT(detect_task(NULL, 0, 0, 1000, cls, 2, NULL, 0, &s, err), 0);
    CHECK(s.task == YOLO_TASK_CLASSIFY && s.nc == 1000);
    CHECK_EQ_INT(detect_task("classify", 0, 0, 999, cls, 2, NULL, 0, &s, err), -1);
    CHECK_EQ_INT(detect_task("classify", 0, 0, -1, seg, 3, NULL, 0, &s, err), -1);
    CHECK_EQ_INT(detect_task("segment", 0, 0, -1, seg, 3, NULL, 0, &s, err), -1);
    const int64_t big_proto[4] = {1, 112, 160, 160}, huge_proto[4] = {1, 120, 160, 160};
    CHECK_EQ_INT(detect_task("segment", 0, 0, -1, seg, 3, big_proto, 4, &s, err), -1); /* no class left */
    CHECK_EQ_INT(detect_task("segment", 0, 0, -1, seg, 3, huge_proto, 4, &s, err), -1);
    CHECK(strstr(err, "[1, 116, 8400]") && strstr(err, "[1, 120, 160, 160]"));
    CHECK_EQ_INT(detect_task("depth", 0, 0, -1, seg, 3, NULL, 0, &s, err), -1);
    const int64_t e2e[3] = {1, 300, 6};
    CHECK_EQ_INT(detect_task("pose", 17, 3, 1, e2e, 3, NULL, 0, &s, err), -1); /* an end-to-end pose head is not decoded */
}

static void test_probiou(void)
{
    yolo_obb a = {10, 10, 40, 6, (float)(M_PI / 4)}, b = a;
    CHECK(fabsf(yolo_probiou(&a, &b) - 1.0f) < 1e-3f);
    b.angle = (float)(3 * M_PI / 4); /* crossing at right angles */
    CHECK(yolo_probiou(&a, &b) < 0.3f);
    b = a, b.cx += 100;
    CHECK(yolo_probiou(&a, &b) < 1e-3f);
    yolo_obb z = {0, 0, 0, 0, 0};
    float v = yolo_probiou(&z, &z); /* degenerate: finite, never NaN */
    CHECK(v == v && v >= 0 && v <= 1);
    float pts[8];
    yolo_obb r = {0, 0, 4, 2, 0};
    yolo_obb_corners(&r, pts);
    CHECK(pts[0] == 2 && pts[1] == 1 && pts[4] == -2 && pts[5] == -1);
}

static void test_top_classes(void)
{
    const float p[7] = {0.1f, 0.5f, 0.05f, 0.3f, 0.04f, 0.01f, NAN};
    int ids[5];
    CHECK_EQ_INT(yolo_top_classes(p, 7, NULL, 0, 5, ids), 5);
    CHECK(ids[0] == 1 && ids[1] == 3 && ids[2] == 0 && ids[3] == 2 && ids[4] == 4);
    bool allowed[7] = {false, false, true, false, false, true, false};
    CHECK_EQ_INT(yolo_top_classes(p, 7, allowed, 7, 5, ids), 2);
    CHECK(ids[0] == 2 && ids[1] == 5);
    CHECK_EQ_INT(yolo_top_classes(p, 2, NULL, 0, 5, ids), 2);
}

/* One prototype, 8x8, logit +1 on a 4x4 square (cells 2..5), -1 elsewhere;
 * input 32x32 (4 px a cell), image 32x32 (no letterbox). */
static void test_mask(void)
{
    float proto[64];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) proto[y * 8 + x] = x >= 2 && x <= 5 && y >= 2 && y <= 5 ? 1.0f : -1.0f;
    const float coeff = 1.0f;
    const mask_geom g = {.gain = 1, .in_w = 32, .in_h = 32, .img_per_orig_x = 1, .img_per_orig_y = 1, .orig_w = 32, .orig_h = 32};
    const float box[4] = {0, 0, 32, 32};
    yolo_mask m;
    CHECK_EQ_INT(mask_build(&coeff, 1, proto, 1, 8, 8, &g, box, &m), 0);
    /* The edge between +1 and -1 cells lies halfway between their centres:
     * pixels 8..23 each way, less the four corners bilinear rounds off. */
    CHECK_EQ_INT(m.area, 16 * 16 - 4);
    CHECK(m.x0 == 0 && m.y0 == 0 && m.w == 32 && m.h == 32);
    CHECK(m.bits[12 * 32 + 12] == 1 && m.bits[8 * 32 + 8] == 0 && m.bits[8 * 32 + 9] == 1 && m.bits[7 * 32 + 12] == 0);
    float *pts;
    int n;
    CHECK_EQ_INT(mask_outline(&m, 200, &pts, &n), 0);
    CHECK_EQ_INT(n, 56); /* the boundary pixels of that square */
    CHECK(pts[0] == 9 && pts[1] == 8);
    free(pts);
    CHECK_EQ_INT(mask_outline(&m, 4, &pts, &n), 0); /* simplified: its four corners */
    CHECK_EQ_INT(n, 4);
    free(pts);
    uint32_t *counts;
    size_t nc;
    CHECK_EQ_INT(mask_rle(&m, 32, 32, &counts, &nc), 0);
    /* Column-major: 8 empty columns and 9 rows, 14 set (a corner is off), then 9 + 8 clear, ... */
    CHECK_EQ_INT(nc, 33);
    CHECK_EQ_INT(counts[0], 8 * 32 + 9);
    CHECK_EQ_INT(counts[1], 14);
    CHECK_EQ_INT(counts[2], 17);
    CHECK_EQ_INT(counts[3], 16);
    CHECK_EQ_INT(counts[nc - 1], 9 + 8 * 32);
    free(counts);
    mask_free(&m);

    /* A crop to the left half: cells 2..3 only (crop at prototype resolution). */
    const float half[4] = {0, 0, 16, 32};
    CHECK_EQ_INT(mask_build(&coeff, 1, proto, 1, 8, 8, &g, half, &m), 0);
    CHECK(m.area > 0 && m.area < 16 * 16);
    CHECK(m.x0 + m.w <= 32);
    mask_free(&m);

    /* Empty, inverted and NaN boxes give an empty mask, and an empty RLE of all zeros. */
    const float none[4] = {10, 10, 10, 20}, nanb[4] = {NAN, 0, 5, 5};
    CHECK_EQ_INT(mask_build(&coeff, 1, proto, 1, 8, 8, &g, none, &m), 0);
    CHECK(m.area == 0 && !m.bits);
    CHECK_EQ_INT(mask_outline(&m, 200, &pts, &n), 0);
    CHECK(n == 0 && !pts);
    CHECK_EQ_INT(mask_rle(&m, 3, 2, &counts, &nc), 0);
    CHECK(nc == 1 && counts[0] == 6);
    free(counts);
    CHECK_EQ_INT(mask_build(&coeff, 1, proto, 1, 8, 8, &g, nanb, &m), 0);
    CHECK(m.area == 0);

    /* A single pixel makes a one-point outline; the rle starts with a zero run. */
    uint8_t one = 1;
    yolo_mask px = {.x0 = 0, .y0 = 0, .w = 1, .h = 1, .bits = &one, .area = 1};
    CHECK_EQ_INT(mask_outline(&px, 200, &pts, &n), 0);
    CHECK(n == 1 && pts[0] == 0 && pts[1] == 0);
    free(pts);
    CHECK_EQ_INT(mask_rle(&px, 2, 2, &counts, &nc), 0);
    CHECK(nc == 3 && counts[0] == 0 && counts[1] == 1 && counts[2] == 3);
    free(counts);
}

int main(void)
{
    test_task_detect();
    test_probiou();
    test_top_classes();
    test_mask();
    return check_report("yolo_tasks");
}
