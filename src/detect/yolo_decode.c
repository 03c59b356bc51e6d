/* YOLO output decoders and NMS, following the upstream post-processing:
 * Ultralytics non_max_suppression (YOLOv8/YOLO11, and its end-to-end branch
 * for YOLO26/YOLOv10), YOLOv5's non_max_suppression, and YOLOX's grid decode
 * (demo_postprocess) followed by the same score filter and NMS. */
#include "detect/yolo_decode.h"
#include "util/array.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NMS 30000  /* Ultralytics/YOLOv5 max_nms: boxes fed to NMS at most */
#define MAX_WH 7680.0f /* Ultralytics/YOLOv5 max_wh: per-class box offset in NMS */
#define MAX_DIM ((int64_t)1 << 30)

const char *yolo_layout_name(yolo_layout l)
{
    switch (l) {
    case YOLO_LAYOUT_V8: return "yolov8";
    case YOLO_LAYOUT_E2E: return "end2end";
    case YOLO_LAYOUT_V5: return "yolov5";
    case YOLO_LAYOUT_YOLOX: return "yolox";
    }
    return "unknown";
}

/* Rows a YOLOX head emits for this input: one per cell of the stride 8, 16
 * and 32 grids (sizes floored, as demo_postprocess does). YOLOv5 has 3
 * anchors per cell, so 3 times this. */
static int64_t grid_cells(int in_w, int in_h)
{
    if (in_w <= 0 || in_h <= 0) return 0;
    int64_t n = 0;
    for (int s = 8; s <= 32; s *= 2) n += (int64_t)(in_h / s) * (in_w / s);
    return n;
}

static void shape_str(const int64_t *shape, size_t ndim, char *buf, size_t len)
{
    size_t o = 0;
    o += (size_t)snprintf(buf, len, "[");
    for (size_t i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

#define SUPPORTED "supported: [1, 4+nc, N] (yolov8: YOLOv8/YOLO11), [1, K, 6] (end2end: YOLO26/YOLOv10), " \
                  "[1, N, 5+nc] (yolov5 with N = 3 x grid cells, yolox with N = grid cells of strides 8/16/32)"

int yolo_layout_detect(const int64_t *shape, size_t ndim, int in_w, int in_h, int end2end, int hint,
                       yolo_layout *layout, int *nc, char *err, size_t err_len)
{
    char ss[128];
    shape_str(shape, ndim, ss, sizeof ss);
    if (ndim != 3 || shape[0] != 1) {
        snprintf(err, err_len, "unsupported YOLO output shape %s: expected 3 dimensions with batch 1; " SUPPORTED, ss);
        return -1;
    }
    int64_t a = shape[1], b = shape[2];
    if (a <= 0 || b <= 0 || a > MAX_DIM || b > MAX_DIM) {
        snprintf(err, err_len, "unsupported YOLO output shape %s: dimensions out of range; " SUPPORTED, ss);
        return -1;
    }
    int64_t g = grid_cells(in_w, in_h);

    if (hint >= 0) {
        switch (hint) {
        case YOLO_LAYOUT_V8:
            if (a < 5) break;
            *layout = YOLO_LAYOUT_V8, *nc = (int)(a - 4);
            return 0;
        case YOLO_LAYOUT_E2E:
            if (b != 6) break;
            *layout = YOLO_LAYOUT_E2E, *nc = 0;
            return 0;
        case YOLO_LAYOUT_V5:
            if (b < 6) break;
            *layout = YOLO_LAYOUT_V5, *nc = (int)(b - 5);
            return 0;
        case YOLO_LAYOUT_YOLOX:
            if (b < 6 || a != g) {
                snprintf(err, err_len, "YOLO output shape %s does not fit the forced layout yolox: it needs [1, %lld, 5+nc] "
                                       "(grid cells of strides 8/16/32 for a %dx%d input)",
                         ss, (long long)g, in_w, in_h);
                return -1;
            }
            *layout = YOLO_LAYOUT_YOLOX, *nc = (int)(b - 5);
            return 0;
        default:
            snprintf(err, err_len, "unknown YOLO layout %d forced for output shape %s", hint, ss);
            return -1;
        }
        static const char *const need[] = {"[1, 4+nc, N]", "[1, K, 6]", "[1, N, 5+nc]"};
        snprintf(err, err_len, "YOLO output shape %s does not fit the forced layout %s: it needs %s", ss,
                 yolo_layout_name((yolo_layout)hint), need[hint]);
        return -1;
    }

    /* The metadata's end2end flag wins for [1, K, 6]; this only matters for
     * K <= 5, which would otherwise also read as yolov8 with 1..2 classes. */
    if (b == 6 && end2end > 0) {
        *layout = YOLO_LAYOUT_E2E, *nc = 0;
        return 0;
    }
    /* Ultralytics exports are channel-major: [1, 84, 8400]. The dimension
     * order is what tells a 2-class yolov8 [1, 6, N] from end2end [1, K, 6]. */
    if (a >= 5 && b > a) {
        *layout = YOLO_LAYOUT_V8, *nc = (int)(a - 4);
        return 0;
    }
    if (b == 6 && end2end < 0 && a <= 1000) {
        *layout = YOLO_LAYOUT_E2E, *nc = 0;
        return 0;
    }
    if (b >= 6 && a > b) {
        if (g > 0 && a == g) {
            *layout = YOLO_LAYOUT_YOLOX, *nc = (int)(b - 5);
            return 0;
        }
        if (g > 0 && a == 3 * g) {
            *layout = YOLO_LAYOUT_V5, *nc = (int)(b - 5);
            return 0;
        }
        snprintf(err, err_len, "unsupported YOLO output shape %s: %lld rows is neither yolox's %lld grid cells nor "
                               "yolov5's %lld (3 anchors x cells) for a %dx%d input%s; " SUPPORTED,
                 ss, (long long)a, (long long)g,
                 (long long)(3 * g), in_w, in_h, b == 6 && end2end == 0 ? " (and the metadata says not end2end)" : "");
        return -1;
    }
    snprintf(err, err_len, "unsupported YOLO output shape %s; " SUPPORTED, ss);
    return -1;
}

/* ---- candidates ---- */

typedef struct {
    yolo_det *d;
    size_t n, cap;
} dvec;

static int push(dvec *v, float x1, float y1, float x2, float y2, float score, int cls, int idx)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        yolo_det *d = array_resize(v->d, cap, sizeof *d);
        if (!d) return -1;
        v->d = d, v->cap = cap;
    }
    v->d[v->n++] = (yolo_det){x1, y1, x2, y2, score, cls, idx};
    return 0;
}

/* xywh -> xyxy as Ultralytics' xywh2xyxy does it, in float. */
static int push_xywh(dvec *v, float cx, float cy, float w, float h, float score, int cls, int idx)
{
    float dw = w / 2, dh = h / 2;
    return push(v, cx - dw, cy - dh, cx + dw, cy + dh, score, cls, idx);
}

static inline bool class_ok(const yolo_decode_opts *o, int cls)
{
    return !o->allowed || (cls >= 0 && cls < o->n_allowed && o->allowed[cls]);
}

/* Stable sort by score, highest first (torchvision's nms sorts stably, so
 * equal scores keep their candidate order). Merge sort; insertion for runs. */
static void sort_desc(yolo_det *a, yolo_det *tmp, size_t n)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            yolo_det x = a[i];
            size_t j = i;
            while (j > 0 && a[j - 1].score < x.score) a[j] = a[j - 1], j--;
            a[j] = x;
        }
        return;
    }
    size_t h = n / 2;
    sort_desc(a, tmp, h);
    sort_desc(a + h, tmp, n - h);
    if (!(a[h - 1].score < a[h].score)) return; /* already in order */
    memcpy(tmp, a, h * sizeof *a);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) a[k++] = a[j].score > tmp[i].score ? a[j++] : tmp[i++];
    while (i < h) a[k++] = tmp[i++];
}

static int sort_scores(yolo_det *d, size_t n)
{
    if (n <= 16) {
        sort_desc(d, NULL, n);
        return 0;
    }
    yolo_det *tmp = malloc((n / 2 + 1) * sizeof *tmp);
    if (!tmp) return -1;
    sort_desc(d, tmp, n);
    free(tmp);
    return 0;
}

/* Sort, cap at max_nms, NMS, cap at max_det, hand over. */
static int finish(dvec *v, const yolo_decode_opts *o, bool nms, yolo_det **out, size_t *n)
{
    if (sort_scores(v->d, v->n)) {
        free(v->d);
        return -1;
    }
    size_t k = v->n;
    if (o->skip_nms) {
        if (k > MAX_NMS) k = MAX_NMS;
    } else if (nms) {
        if (k > MAX_NMS) k = MAX_NMS;
        k = yolo_nms(v->d, k, o->iou, o->max_det);
    } else if (k > (size_t)(o->max_det > 0 ? o->max_det : 0)) {
        k = (size_t)(o->max_det > 0 ? o->max_det : 0);
    }
    if (k == 0) {
        free(v->d);
        *out = NULL, *n = 0;
        return 0;
    }
    yolo_det *d = array_resize(v->d, k, sizeof *d); /* shrink; keep the old block if that fails */
    *out = d ? d : v->d, *n = k;
    return 0;
}

/* [1, 4+nc, N], channel-major. The max over classes is taken a block of
 * candidates at a time, walking each class row contiguously (a plain max that
 * vectorises); the argmax is found only for the few that pass. */
static int decode_v8(const float *data, int64_t C, int64_t N, const yolo_decode_opts *o, dvec *v)
{
    enum { BLK = 512 };
    const int nc = o->nc > 0 ? o->nc : (int)(C - 4);
    const float conf = o->conf;
    float best[BLK];
    for (int64_t i0 = 0; i0 < N; i0 += BLK) {
        const int m = (int)(N - i0 < BLK ? N - i0 : BLK);
        const float *s = data + 4 * N + i0;
        memcpy(best, s, (size_t)m * sizeof *best);
        for (int c = 1; c < nc; c++) {
            s += N;
            if (m == BLK) {
                for (int j = 0; j < BLK; j++) best[j] = s[j] > best[j] ? s[j] : best[j];
            } else {
                for (int j = 0; j < m; j++) best[j] = s[j] > best[j] ? s[j] : best[j];
            }
        }
        for (int j = 0; j < m; j++) {
            if (!(best[j] > conf)) continue;
            const int64_t i = i0 + j;
            const float *col = data + 4 * N + i;
            int cls = 0;
            float sc = col[0];
            for (int c = 1; c < nc; c++) /* first index of the max, like torch.max */
                if (col[c * N] > sc) sc = col[c * N], cls = c;
            if (!class_ok(o, cls)) continue;
            if (push_xywh(v, data[i], data[N + i], data[2 * N + i], data[3 * N + i], sc, cls, (int)i)) return -1;
        }
    }
    return 0;
}

/* [1, N, 5+nc] YOLOv5: candidates need obj > conf; scores are obj * cls (the
 * product taken before the argmax, as YOLOv5 does), best must be > conf. */
static int decode_v5(const float *data, int64_t N, int64_t C, const yolo_decode_opts *o, dvec *v)
{
    const int nc = (int)(C - 5);
    const float conf = o->conf;
    for (int64_t i = 0; i < N; i++) {
        const float *r = data + i * C;
        const float obj = r[4];
        if (!(obj > conf)) continue;
        int cls = 0;
        float sc = r[5] * obj;
        for (int c = 1; c < nc; c++) {
            float p = r[5 + c] * obj;
            if (p > sc) sc = p, cls = c;
        }
        if (!(sc > conf) || !class_ok(o, cls)) continue;
        if (push_xywh(v, r[0], r[1], r[2], r[3], sc, cls, (int)i)) return -1;
    }
    return 0;
}

/* [1, N, 5+nc] YOLOX raw head: rows stride by stride (8, 16, 32), each grid
 * row-major; demo_postprocess's decode, score = obj * best class score. */
static int decode_yolox(const float *data, int64_t N, int64_t C, int in_w, int in_h, const yolo_decode_opts *o,
                        dvec *v)
{
    const int nc = (int)(C - 5);
    const float conf = o->conf;
    const float *r = data;
    for (int s = 8; s <= 32; s *= 2) {
        const int gw = in_w / s, gh = in_h / s;
        for (int gy = 0; gy < gh; gy++) {
            for (int gx = 0; gx < gw; gx++, r += C) {
                int cls = 0;
                float cs = r[5];
                for (int c = 1; c < nc; c++)
                    if (r[5 + c] > cs) cs = r[5 + c], cls = c;
                const float sc = r[4] * cs;
                if (!(sc > conf) || !class_ok(o, cls)) continue;
                const float fs = (float)s;
                if (push_xywh(v, (r[0] + (float)gx) * fs, (r[1] + (float)gy) * fs, expf(r[2]) * fs, expf(r[3]) * fs,
                              sc, cls, (int)((r - data) / C)))
                    return -1;
            }
        }
    }
    (void)N;
    return 0;
}

/* [1, K, 6] end-to-end: x1,y1,x2,y2,score,class; already one box per object. */
static int decode_e2e(const float *data, int64_t K, const yolo_decode_opts *o, dvec *v)
{
    for (int64_t i = 0; i < K; i++) {
        const float *r = data + i * 6;
        if (!(r[4] > o->conf)) continue;
        if (!(r[5] > -0.5f && r[5] < 1e9f)) continue; /* also drops NaN */
        int cls = (int)roundf(r[5]);
        if (!class_ok(o, cls)) continue;
        if (push(v, r[0], r[1], r[2], r[3], r[4], cls, (int)i)) return -1;
    }
    return 0;
}

int yolo_decode(yolo_layout layout, const float *data, const int64_t *shape, size_t ndim, int in_w, int in_h,
                const yolo_decode_opts *opts, yolo_det **out, size_t *n)
{
    *out = NULL, *n = 0;
    if (ndim != 3 || shape[0] != 1 || shape[1] <= 0 || shape[2] <= 0 || shape[1] > MAX_DIM || shape[2] > MAX_DIM)
        return -1;
    const int64_t a = shape[1], b = shape[2];
    dvec v = {0};
    int rc;
    switch (layout) {
    case YOLO_LAYOUT_V8:
        if (a < 5 || (opts->nc > 0 && opts->nc > a - 4)) return -1;
        rc = decode_v8(data, a, b, opts, &v);
        break;
    case YOLO_LAYOUT_V5:
        if (b < 6) return -1;
        rc = decode_v5(data, a, b, opts, &v);
        break;
    case YOLO_LAYOUT_YOLOX:
        if (b < 6 || a != grid_cells(in_w, in_h)) return -1;
        rc = decode_yolox(data, a, b, in_w, in_h, opts, &v);
        break;
    case YOLO_LAYOUT_E2E:
        if (b != 6) return -1;
        rc = decode_e2e(data, a, opts, &v);
        break;
    default:
        return -1;
    }
    if (rc) {
        free(v.d);
        return -1;
    }
    return finish(&v, opts, layout != YOLO_LAYOUT_E2E, out, n);
}

/* IoU as torchvision's CPU nms computes it, on the boxes Ultralytics hands it:
 * each shifted by cls * max_wh, which only moves float rounding (only boxes of
 * one class are compared here), but doing it keeps the numbers identical. */
static inline float nms_iou(const yolo_det *a, const yolo_det *b)
{
    const float off = (float)a->cls * MAX_WH;
    const float ax1 = a->x1 + off, ay1 = a->y1 + off, ax2 = a->x2 + off, ay2 = a->y2 + off;
    const float bx1 = b->x1 + off, by1 = b->y1 + off, bx2 = b->x2 + off, by2 = b->y2 + off;
    const float area_a = (ax2 - ax1) * (ay2 - ay1), area_b = (bx2 - bx1) * (by2 - by1);
    const float xx1 = ax1 > bx1 ? ax1 : bx1, yy1 = ay1 > by1 ? ay1 : by1;
    const float xx2 = ax2 < bx2 ? ax2 : bx2, yy2 = ay2 < by2 ? ay2 : by2;
    const float w = xx2 - xx1 > 0 ? xx2 - xx1 : 0, h = yy2 - yy1 > 0 ? yy2 - yy1 : 0;
    const float inter = w * h;
    const float uni = area_a + area_b - inter;
    return uni != 0 ? inter / uni : 0; /* torchvision gets NaN there, which never suppresses */
}

/* Greedy: a box survives unless a kept box of its class overlaps it by more
 * than iou. Checking against the kept list only is the same as torchvision's
 * suppression flags, and needs no memory. Stops at max_det, as later keeps
 * would be cut anyway. */
size_t yolo_nms(yolo_det *dets, size_t n, float iou, int max_det)
{
    const size_t lim = max_det > 0 ? (size_t)max_det : 0;
    size_t kept = 0;
    for (size_t i = 0; i < n && kept < lim; i++) {
        const yolo_det d = dets[i];
        bool keep = true;
        for (size_t k = 0; k < kept && keep; k++)
            if (dets[k].cls == d.cls && nms_iou(&dets[k], &d) > iou) keep = false;
        if (keep) dets[kept++] = d;
    }
    return kept;
}
