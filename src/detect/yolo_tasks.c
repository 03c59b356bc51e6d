/* Task detection and the keypoint / oriented-box / classification decoders,
 * after Ultralytics' post-processing (ops.non_max_suppression's extra
 * channels, regularize_rboxes, batch_probiou, nms_rotated). */
#include "detect/yolo_tasks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const yolo_coco_keypoints[17] = {
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
};

const char *yolo_task_name(yolo_task t)
{
    switch (t) {
    case YOLO_TASK_DETECT: return "detect";
    case YOLO_TASK_SEGMENT: return "segment";
    case YOLO_TASK_POSE: return "pose";
    case YOLO_TASK_OBB: return "obb";
    case YOLO_TASK_CLASSIFY: return "classify";
    }
    return "unknown";
}

static void shape_str(const int64_t *shape, size_t ndim, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "[");
    for (size_t i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

int yolo_task_detect(const yolo_model_info *mi, const int64_t *const *out_shapes, const size_t *out_ndims, size_t n_out,
                     yolo_task_spec *spec, char *err, size_t err_len)
{
    memset(spec, 0, sizeof *spec);
    char s0[128], s1[128] = "none";
    if (n_out < 1) {
        snprintf(err, err_len, "the model has no output");
        return -1;
    }
    shape_str(out_shapes[0], out_ndims[0], s0, sizeof s0);
    if (n_out > 1) shape_str(out_shapes[1], out_ndims[1], s1, sizeof s1);
    const char *t = mi->task;
    yolo_task task;
    if (!t) task = out_ndims[0] == 2      ? YOLO_TASK_CLASSIFY
        : n_out >= 2 && out_ndims[1] == 4 ? YOLO_TASK_SEGMENT
                                          : YOLO_TASK_DETECT;
    else if (!strcmp(t, "detect")) task = YOLO_TASK_DETECT;
    else if (!strcmp(t, "segment")) task = YOLO_TASK_SEGMENT;
    else if (!strcmp(t, "pose")) task = YOLO_TASK_POSE;
    else if (!strcmp(t, "obb")) task = YOLO_TASK_OBB;
    else if (!strcmp(t, "classify")) task = YOLO_TASK_CLASSIFY;
    else {
        snprintf(err, err_len, "metadata task '%.40s' is not one Sight decodes (detect, segment, pose, obb, classify)", t);
        return -1;
    }
    spec->task = task;
    const int64_t *sh = out_shapes[0];
    if (task == YOLO_TASK_CLASSIFY) {
        if (out_ndims[0] != 2 || sh[0] != 1 || sh[1] < 1 || sh[1] > 1000000) {
            snprintf(err, err_len, "classify output shape %s: expected [1, nc]", s0);
            return -1;
        }
        spec->nc = (int)sh[1];
    } else {
        int nc0;
        if (yolo_layout_detect(sh, out_ndims[0], mi->in_w, mi->in_h, mi->end2end, mi->layout_hint, &spec->layout, &nc0,
                               err, err_len))
            return -1;
        spec->nc = nc0;
        const int64_t C = out_ndims[0] == 3 ? sh[1] : 0;
        if (task != YOLO_TASK_DETECT && spec->layout != YOLO_LAYOUT_V8) {
            snprintf(err, err_len, "%s output shape %s read as the %s layout: a %s model needs output0 [1, 4+nc+extra, N]",
                     yolo_task_name(task), s0, yolo_layout_name(spec->layout), yolo_task_name(task));
            return -1;
        }
        if (task == YOLO_TASK_SEGMENT) {
            const int64_t *p = n_out >= 2 ? out_shapes[1] : NULL;
            if (!p || out_ndims[1] != 4 || p[0] != 1 || p[1] < 1 || p[1] > 256 || p[2] < 1 || p[3] < 1 ||
                p[2] > 4096 || p[3] > 4096) {
                snprintf(err, err_len, "segment outputs %s and %s: expected output1 [1, P, mh, mw] mask prototypes "
                                       "beside output0 [1, 4+nc+P, N]",
                         s0, s1);
                return -1;
            }
            spec->n_proto = (int)p[1], spec->proto_h = (int)p[2], spec->proto_w = (int)p[3];
            spec->nc = (int)(C - 4 - p[1]);
            if (spec->nc < 1) {
                snprintf(err, err_len, "segment output %s with %d prototypes %s leaves no class channel "
                                       "(expected [1, 4+nc+%d, N])",
                         s0, spec->n_proto, s1, spec->n_proto);
                return -1;
            }
        } else if (task == YOLO_TASK_POSE) {
            if (mi->kpt_k < 1 || (mi->kpt_d != 2 && mi->kpt_d != 3)) {
                snprintf(err, err_len, "pose output %s: the metadata kpt_shape [K, D] (D 2 or 3) is missing or "
                                       "invalid, so the keypoint channels cannot be told from the class scores",
                         s0);
                return -1;
            }
            spec->kpt_k = mi->kpt_k, spec->kpt_d = mi->kpt_d;
            spec->nc = (int)(C - 4 - (int64_t)mi->kpt_k * mi->kpt_d);
            if (spec->nc < 1) {
                snprintf(err, err_len, "pose output %s with kpt_shape [%d, %d]: expected [1, 4+nc+%d, N] with nc >= 1", s0,
                         mi->kpt_k, mi->kpt_d, mi->kpt_k * mi->kpt_d);
                return -1;
            }
        } else if (task == YOLO_TASK_OBB) {
            spec->nc = (int)(C - 5);
            if (spec->nc < 1) {
                snprintf(err, err_len, "obb output %s: expected [1, 4+nc+1, N] with nc >= 1 (the last channel the angle)", s0);
                return -1;
            }
        }
    }
    if (mi->n_names >= 0 && spec->nc > 0 && spec->nc != mi->n_names) {
        snprintf(err, err_len, "%s output %s%s%s implies %d classes but the model has %d names; expected %s", yolo_task_name(task),
                 s0, task == YOLO_TASK_SEGMENT ? " with prototypes " : "", task == YOLO_TASK_SEGMENT ? s1 : "", spec->nc,
                 mi->n_names,
                 task == YOLO_TASK_CLASSIFY      ? "[1, names]"
                     : task == YOLO_TASK_POSE    ? "[1, 4+names+K*D, N] (kpt_shape from the metadata)"
                     : task == YOLO_TASK_OBB     ? "[1, 4+names+1, N]"
                     : task == YOLO_TASK_SEGMENT ? "[1, 4+names+P, N]"
                                                 : "[1, 4+names, N] (a segment, pose or obb export needs its task metadata)");
        return -1;
    }
    return 0;
}

void yolo_keypoint(const yolo_task_spec *s, const float *data, int64_t N, int idx, int kp, float *x, float *y,
                   float *conf)
{
    const float *c = data + (int64_t)(4 + s->nc + kp * s->kpt_d) * N + idx;
    *x = c[0], *y = c[N];
    *conf = s->kpt_d == 3 ? c[2 * N] : -1.0f;
}

yolo_obb yolo_obb_at(const float *data, int64_t N, int nc, int idx)
{
    float w = data[2 * N + idx], h = data[3 * N + idx], t = data[(4 + nc) * N + idx];
    /* regularize_rboxes: an angle past pi/2 (mod pi) is the same box with its sides swapped. */
    const float pi = (float)M_PI;
    float tm = fmodf(t, pi);
    if (tm < 0) tm += pi;
    if (tm >= pi / 2) {
        float s = w;
        w = h, h = s;
    }
    float a = fmodf(t, pi / 2);
    if (a < 0) a += pi / 2;
    return (yolo_obb){data[idx], data[N + idx], w, h, a};
}

static void covariance(const yolo_obb *o, double *a, double *b, double *c)
{
    double va = (double)o->w * o->w / 12, vb = (double)o->h * o->h / 12;
    double co = cos(o->angle), si = sin(o->angle);
    *a = va * co * co + vb * si * si;
    *b = va * si * si + vb * co * co;
    *c = (va - vb) * co * si;
}

float yolo_probiou(const yolo_obb *p, const yolo_obb *q)
{
    const double eps = 1e-7;
    double a1, b1, c1, a2, b2, c2;
    covariance(p, &a1, &b1, &c1);
    covariance(q, &a2, &b2, &c2);
    double dx = (double)p->cx - q->cx, dy = (double)p->cy - q->cy;
    double A = a1 + a2, B = b1 + b2, Cc = c1 + c2;
    double den = A * B - Cc * Cc;
    double t1 = (A * dy * dy + B * dx * dx) / (den + eps) * 0.25;
    double t2 = (Cc * (-dx) * dy) / (den + eps) * 0.5;
    double d1 = a1 * b1 - c1 * c1, d2 = a2 * b2 - c2 * c2;
    double t3 = log(den / (4 * sqrt((d1 > 0 ? d1 : 0) * (d2 > 0 ? d2 : 0)) + eps) + eps) * 0.5;
    double bd = t1 + t2 + t3;
    if (!(bd > eps)) bd = eps; /* also NaN from degenerate boxes */
    if (bd > 100) bd = 100;
    double hd = sqrt(1 - exp(-bd) + eps);
    return (float)(1 - hd);
}

void yolo_obb_corners(const yolo_obb *o, float pts[8])
{
    const float co = cosf(o->angle), si = sinf(o->angle);
    const float v1x = o->w / 2 * co, v1y = o->w / 2 * si, v2x = -o->h / 2 * si, v2y = o->h / 2 * co;
    const float p[8] = {o->cx + v1x + v2x, o->cy + v1y + v2y, o->cx + v1x - v2x, o->cy + v1y - v2y,
                        o->cx - v1x - v2x, o->cy - v1y - v2y, o->cx - v1x + v2x, o->cy - v1y + v2y};
    memcpy(pts, p, sizeof p);
}

long yolo_obb_nms(yolo_det *dets, size_t n, const float *data, int64_t N, int nc, float iou, int max_det)
{
    const size_t lim = max_det > 0 ? (size_t)max_det : 0;
    yolo_obb *ob = n ? malloc(n * sizeof *ob) : NULL;
    yolo_det *res = n ? malloc(n * sizeof *res) : NULL;
    if (n && (!ob || !res)) {
        free(ob);
        free(res);
        return -1;
    }
    for (size_t i = 0; i < n; i++) ob[i] = yolo_obb_at(data, N, nc, dets[i].idx);
    size_t kept = 0;
    for (size_t i = 0; i < n && kept < lim; i++) {
        bool keep = true;
        /* Every higher-scoring box counts, kept or not: upstream takes the
         * upper triangle of the IoU matrix in one pass. */
        for (size_t j = 0; j < i && keep; j++)
            if (dets[j].cls == dets[i].cls && yolo_probiou(&ob[j], &ob[i]) >= iou) keep = false;
        if (!keep) continue;
        float pts[8];
        yolo_obb_corners(&ob[i], pts);
        yolo_det d = dets[i];
        d.x1 = d.x2 = pts[0], d.y1 = d.y2 = pts[1];
        for (int k = 1; k < 4; k++) {
            d.x1 = fminf(d.x1, pts[2 * k]), d.x2 = fmaxf(d.x2, pts[2 * k]);
            d.y1 = fminf(d.y1, pts[2 * k + 1]), d.y2 = fmaxf(d.y2, pts[2 * k + 1]);
        }
        res[kept++] = d;
    }
    if (kept) memcpy(dets, res, kept * sizeof *dets);
    free(ob);
    free(res);
    return (long)kept;
}

int yolo_top_classes(const float *scores, int nc, const bool *allowed, int n_allowed, int k, int *ids)
{
    if (k > 5) k = 5;
    int n = 0;
    for (int c = 0; c < nc; c++) {
        if (allowed && (c >= n_allowed || !allowed[c])) continue;
        if (!(scores[c] == scores[c])) continue; /* NaN */
        int pos = n < k ? n++ : k;
        if (pos == k && !(scores[c] > scores[ids[k - 1]])) continue;
        if (pos == k) pos = k - 1;
        while (pos > 0 && scores[c] > scores[ids[pos - 1]]) ids[pos] = ids[pos - 1], pos--;
        ids[pos] = c;
    }
    return n;
}
