/* Sliced detection's pure parts: the tile grid, the merge across seams
 * (GREEDYNMM then NMS, and NMS alone), the mask union of RLE parts, the
 * "slice" option parser and the parallel-for the tiles run on. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "check.h"
#include "detect/slice_mask.h"
#include "detect/slice_merge.h"
#include "pipeline/fanout.h"
#include "pipeline/slice_opts.h"

static void test_grid(void)
{
    slice_rect t[64];
    /* 3840x2160 at 640, overlap 0.2: step 512; 8 columns, 4 rows, the last
     * of each ending at the edge. */
    size_t n = slice_grid(3840, 2160, 640, 640, 0.2f, t, 64);
    CHECK_EQ_INT(n, 32);
    CHECK_EQ_INT(t[0].x, 0);
    CHECK_EQ_INT(t[1].x, 512);
    CHECK_EQ_INT(t[6].x, 3072);
    CHECK_EQ_INT(t[7].x, 3840 - 640);
    CHECK_EQ_INT(t[8].y, 512);
    CHECK_EQ_INT(t[31].x, 3200);
    CHECK_EQ_INT(t[31].y, 2160 - 640);
    CHECK_EQ_INT(t[31].w, 640);
    /* Every pixel is covered. */
    int covered = 1;
    for (int y = 0; y < 2160; y += 7)
        for (int x = 0; x < 3840; x += 7) {
            int in = 0;
            for (size_t i = 0; i < n; i++) in |= x >= t[i].x && x < t[i].x + t[i].w && y >= t[i].y && y < t[i].y + t[i].h;
            covered &= in;
        }
    CHECK(covered);
    /* Smaller than a tile: one tile, the image itself. */
    n = slice_grid(500, 300, 640, 640, 0.2f, t, 64);
    CHECK_EQ_INT(n, 1);
    CHECK(t[0].x == 0 && t[0].y == 0 && t[0].w == 500 && t[0].h == 300);
    /* Over the limit: the count, nothing written. */
    CHECK_EQ_INT(slice_grid(8000, 8000, 256, 256, 0.5f, NULL, 0), 62 * 62);
    CHECK_EQ_INT(slice_grid(0, 10, 64, 64, 0, t, 64), 0);
}

static slice_box B(double x1, double y1, double x2, double y2, double s, int c) { return (slice_box){x1, y1, x2, y2, s, c}; }

static void test_overlaps(void)
{
    slice_box a = B(0, 0, 10, 10, 1, 0), b = B(5, 0, 15, 10, 1, 0), c = B(2, 2, 4, 4, 1, 0);
    CHECK(fabs(slice_iou(&a, &b) - 50.0 / 150.0) < 1e-12);
    CHECK(fabs(slice_ios(&a, &b) - 0.5) < 1e-12);
    CHECK(fabs(slice_ios(&a, &c) - 1.0) < 1e-12);
    slice_box z = B(3, 3, 3, 9, 1, 0);
    CHECK(slice_iou(&a, &z) == 0 && slice_ios(&a, &z) == 0);
}

static void test_merge_seam(void)
{
    /* One object cut by a seam at x=100: a left part and a right part with a
     * strip in common, seen by two tiles, plus the full pass's whole box. */
    slice_box in[] = {
        B(60, 40, 110, 90, 0.80, 3),  /* left tile's part */
        B(90, 40, 140, 90, 0.70, 3),  /* right tile's part */
        B(62, 41, 138, 89, 0.60, 3),  /* the full pass */
        B(300, 40, 340, 90, 0.90, 3), /* another object of the class, far away */
        B(92, 40, 108, 90, 0.95, 7),  /* another class on the seam: untouched */
    };
    slice_box out[5];
    int group[5], rep[5];
    long k = slice_merge(in, 5, true, 0.5, 0, out, group, rep);
    CHECK_EQ_INT(k, 3);
    /* Score order: class 7 (0.95), far box (0.90), merged (0.80). The left
     * part takes the full pass's box (IOS 0.92) but not the right part (IOS
     * 0.4, compared with the left part itself as greedy_nmm does); the right
     * part then overlaps the union at IoU 0.6 and the NMS removes it. */
    CHECK_EQ_INT(rep[0], 4);
    CHECK_EQ_INT(rep[1], 3);
    CHECK_EQ_INT(rep[2], 0);
    CHECK(out[2].x1 == 60 && out[2].x2 == 138 && out[2].y1 == 40 && out[2].y2 == 90);
    CHECK(out[2].score == 0.80 && out[2].cls == 3);
    CHECK(group[0] == 2 && group[1] == -1 && group[2] == 2 && group[3] == 1 && group[4] == 0);

    /* The left part's IOS with the right part is 20*50 / (50*50) = 0.4: NMS
     * alone keeps both parts, they share too little IoU. */
    k = slice_merge(in, 2, false, 0.5, 0, out, group, rep);
    CHECK_EQ_INT(k, 2);
    /* With nmm at the same threshold they stay apart as well (IOS 0.4 <= 0.5). */
    k = slice_merge(in, 2, true, 0.5, 0, out, group, rep);
    CHECK_EQ_INT(k, 2);
    /* ...and merge when the strip is wider. */
    slice_box w[] = {B(60, 40, 110, 90, 0.8, 3), B(80, 40, 130, 90, 0.7, 3)};
    k = slice_merge(w, 2, true, 0.5, 0, out, group, rep);
    CHECK_EQ_INT(k, 1);
    CHECK(out[0].x1 == 60 && out[0].x2 == 130);
    CHECK(group[0] == 0 && group[1] == 0);
}

static void test_merge_nms_after_nmm(void)
{
    /* a takes b (IOS 1: b inside a); c is not taken by a (IOS 0.4) but the
     * union... here the final NMS at IoU > 0.5 removes the lower of two
     * candidates that overlap that much. */
    slice_box in[] = {
        B(0, 0, 100, 100, 0.9, 0),
        B(10, 10, 20, 20, 0.8, 0),
        B(0, 0, 100, 100, 0.85, 1), /* other class: kept */
        B(20, 0, 120, 100, 0.5, 0), /* IoU with a 80/120 = 0.67, IOS 0.8: taken by a */
    };
    slice_box out[4];
    int group[4], rep[4];
    long k = slice_merge(in, 4, true, 0.5, 0, out, group, rep);
    CHECK_EQ_INT(k, 2);
    CHECK(out[0].x2 == 120 && out[0].cls == 0);
    CHECK(group[1] == 0 && group[3] == 0 && group[2] == 1);
    /* nms alone: the inner box stays (IoU 0.01), the shifted one goes. */
    k = slice_merge(in, 4, false, 0.5, 0, out, group, rep);
    CHECK_EQ_INT(k, 3);
    CHECK(group[3] == -1 && group[1] >= 0);
    /* max_det caps the results, highest scores first. */
    k = slice_merge(in, 4, false, 0.5, 1, out, group, rep);
    CHECK_EQ_INT(k, 1);
    CHECK(rep[0] == 0 && group[2] == -1);
    /* Equal scores keep input order. */
    slice_box eq[] = {B(0, 0, 10, 10, 0.5, 0), B(1, 0, 11, 10, 0.5, 0)};
    k = slice_merge(eq, 2, false, 0.5, 0, out, group, rep);
    CHECK(k == 1 && rep[0] == 0);
    CHECK_EQ_INT(slice_merge(eq, 0, true, 0.5, 0, out, group, rep), 0);
}

static void test_mask_union(void)
{
    /* Two 4x4 tiles (column-major RLE); tile A at (0,0) has column 3 set in
     * rows 1..2, tile B at (2,0) has columns 0..1 set in rows 1..2: the union
     * is columns 2..3 (from B's 0..1) and 3 (A), rows 1..2. */
    json_t *a = json_pack("{s:[i,i],s:[i,i,i]}", "size", 4, 4, "counts", 13, 2, 1);
    json_t *b = json_pack("{s:[i,i],s:[i,i,i,i,i]}", "size", 4, 4, "counts", 1, 2, 2, 2, 9);
    slice_mask_part parts[] = {{a, 0, 0}, {b, 2, 0}};
    yolo_mask m;
    CHECK_EQ_INT(slice_mask_union(parts, 2, &m), 0);
    CHECK(m.x0 == 2 && m.y0 == 1 && m.w == 2 && m.h == 2);
    CHECK_EQ_INT(m.area, 4);
    mask_free(&m);
    /* A broken RLE (runs past its size) is refused. */
    json_t *bad = json_pack("{s:[i,i],s:[i,i]}", "size", 2, 2, "counts", 1, 9);
    slice_mask_part bp[] = {{bad, 0, 0}};
    CHECK_EQ_INT(slice_mask_union(bp, 1, &m), -1);
    json_decref(a), json_decref(b), json_decref(bad);
}

static void test_opts(void)
{
    slice_opts o;
    char msg[160];
    CHECK(slice_opts_parse(json_true(), &o, msg, sizeof msg) == 0 && o.mode == SLICE_AUTO && o.full && o.size == 0);
    CHECK(slice_opts_parse(json_false(), &o, msg, sizeof msg) == 0 && o.mode == SLICE_OFF);
    CHECK(slice_opts_parse(NULL, &o, msg, sizeof msg) == 0 && o.mode == SLICE_OFF);
    json_t *j = json_loads("{\"size\": 512, \"overlap\": 0.25, \"full\": false, \"merge\": \"nms\"}", 0, NULL);
    CHECK(slice_opts_parse(j, &o, msg, sizeof msg) == 0 && o.mode == SLICE_ON && o.size == 512 && !o.full &&
          o.merge == SLICE_MERGE_NMS && fabsf(o.overlap - 0.25f) < 1e-6f);
    json_decref(j);
    const char *bad[] = {"{\"sise\": 640}", "{\"size\": 10}", "{\"size\": 640.5}", "{\"overlap\": 0.95}",
                         "{\"overlap\": \"x\"}", "{\"full\": 1}", "{\"merge\": \"wbf\"}", "3", "\"maybe\"", "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        j = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        msg[0] = 0;
        CHECK(j && slice_opts_parse(j, &o, msg, sizeof msg) == -1 && msg[0]);
        json_decref(j);
    }
    /* Form fields: text. */
    j = json_string("{\"size\": 320}");
    CHECK(slice_opts_parse(j, &o, msg, sizeof msg) == 0 && o.mode == SLICE_ON && o.size == 320);
    json_decref(j);
    j = json_string("true");
    CHECK(slice_opts_parse(j, &o, msg, sizeof msg) == 0 && o.mode == SLICE_AUTO);
    json_decref(j);
    j = json_string("{oops");
    CHECK(slice_opts_parse(j, &o, msg, sizeof msg) == -1);
    json_decref(j);
    CHECK_STR(slice_merge_name(SLICE_MERGE_NMM), "nmm");
}

static atomic_int hits[1000];

static void count_one(void *arg, size_t i)
{
    (void)arg;
    atomic_fetch_add(&hits[i], 1);
}

static void test_fanout(void)
{
    fanout_run_threads(1000, count_one, NULL, 4);
    int once = 1;
    for (int i = 0; i < 1000; i++) once &= atomic_load(&hits[i]) == 1;
    CHECK(once);
    /* A helper that never shows up does not hold the starter. */
    fanout *g = fanout_new(10, count_one, NULL, 3);
    CHECK(g != NULL);
    fanout_work(g);
    fanout_wait(g);
    fanout_unref(g), fanout_unref(g), fanout_unref(g);
    /* One late helper finds nothing to do, then the last reference frees it. */
    fanout_work(g);
    fanout_unref(g);
    for (int i = 0; i < 10; i++) CHECK_EQ_INT(atomic_load(&hits[i]), 2);
}

int main(void)
{
    test_grid();
    test_overlaps();
    test_merge_seam();
    test_merge_nms_after_nmm();
    test_mask_union();
    test_opts();
    test_fanout();
    return check_report("slice");
}
