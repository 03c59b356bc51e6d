#include "detect/task_result.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "detect/mask.h"
#include "util/clock.h"

#define MAX_POLYGON 200

double task_round(double v, double q) { return round(v / q) * q; }

static bool is_prob(float v) { return v >= 0.0f && v <= 1.0f; } /* false for NaN */

static int bad_conf(const task_ctx *c, const char *what, float v, sight_error *err)
{
    sight_error_set(err, "detector_failed",
                    "model %s gave %s %g, outside [0, 1]: its outputs are not what the %s decoder expects",
                    c->model_name, what, (double)v, yolo_task_name(c->spec->task));
    return -1;
}

static const char *class_name(const task_ctx *c, int cls, char idbuf[16])
{
    if (cls >= 0 && cls < c->n_names) return c->names[cls];
    snprintf(idbuf, 16, "%d", cls);
    return idbuf;
}

/* NaN becomes 0: a hostile model's keypoint must still be a JSON number. */
static double clampd(double v, double hi) { return !(v >= 0) ? 0 : v > hi ? hi
                                                                          : v; }

/* Keypoints back to full-size pixels, clipped as upstream's scale_coords. */
static json_t *keypoints_json(const task_ctx *c, int idx, double sx, double sy, sight_error *err)
{
    const yolo_task_spec *s = c->spec;
    json_t *arr = json_array();
    for (int k = 0; k < s->kpt_k; k++) {
        float x, y, conf;
        yolo_keypoint(s, c->data, c->N, idx, k, &x, &y, &conf);
        if (s->kpt_d == 3 && !is_prob(conf)) {
            json_decref(arr);
            bad_conf(c, "a keypoint confidence", conf, err);
            return NULL;
        }
        double ix = clampd((x - c->map.pad_left) / c->map.gain, c->img_w) * sx;
        double iy = clampd((y - c->map.pad_top) / c->map.gain, c->img_h) * sy;
        char nb[16];
        const char *name = s->kpt_k == 17 ? yolo_coco_keypoints[k] : (snprintf(nb, sizeof nb, "kp%d", k), nb);
        json_t *o = json_pack("{s:s,s:f,s:f}", "name", name, "x", task_round(ix, 1e-2), "y", task_round(iy, 1e-2));
        if (s->kpt_d == 3) json_object_set_new(o, "confidence", json_real(task_round(conf, 1e-6)));
        json_array_append_new(arr, o);
    }
    return arr;
}

int task_mask_json(json_t *o, const yolo_mask *m, int orig_w, int orig_h, bool rle)
{
    json_object_set_new(o, "mask_area", json_integer(m->area));
    int rc;
    if (rle) {
        uint32_t *counts;
        size_t n;
        if ((rc = mask_rle(m, orig_w, orig_h, &counts, &n)) == 0) {
            json_t *ca = json_array();
            for (size_t i = 0; i < n; i++) json_array_append_new(ca, json_integer(counts[i]));
            json_object_set_new(o, "rle", json_pack("{s:[i,i],s:o}", "size", orig_h, orig_w, "counts", ca));
            free(counts);
        }
    } else {
        float *pts;
        int np;
        if ((rc = mask_outline(m, MAX_POLYGON, &pts, &np)) == 0) {
            json_t *pa = json_array();
            for (int i = 0; i < np; i++) json_array_append_new(pa, json_pack("[i,i]", (int)pts[2 * i], (int)pts[2 * i + 1]));
            json_object_set_new(o, "polygon", pa);
            free(pts);
        }
    }
    return rc;
}

static int mask_json(const task_ctx *c, const yolo_det *b, const float box_in[4], json_t *o, double sx, double sy)
{
    const yolo_task_spec *s = c->spec;
    const mask_geom g = {.gain = c->map.gain, .pad_left = (float)c->map.pad_left, .pad_top = (float)c->map.pad_top, .in_w = c->in_w, .in_h = c->in_h, .img_per_orig_x = 1 / sx, .img_per_orig_y = 1 / sy, .orig_w = c->orig_w, .orig_h = c->orig_h};
    yolo_mask m;
    const float *coeffs = c->data + (int64_t)(4 + s->nc) * c->N + b->idx;
    if (mask_build(coeffs, (size_t)c->N, c->protos, s->n_proto, s->proto_h, s->proto_w, &g, box_in, &m)) return -1;
    int rc = task_mask_json(o, &m, c->orig_w, c->orig_h, c->mask_rle);
    mask_free(&m);
    return rc;
}

static int obb_json(const task_ctx *c, const yolo_det *b, json_t *o, double sx, double sy, sight_error *err)
{
    yolo_obb ob = yolo_obb_at(c->data, c->N, c->spec->nc, b->idx);
    if (!isfinite(ob.cx) || !isfinite(ob.cy) || !isfinite(ob.w) || !isfinite(ob.h) || !isfinite(ob.angle)) {
        sight_error_set(err, "detector_failed", "model %s gave an oriented box that is not finite", c->model_name);
        return -1;
    }
    const double g = c->map.gain;
    /* Centre and sides through the letterbox; the angle is unchanged (the scale is uniform). */
    ob.cx = (float)((ob.cx - c->map.pad_left) / g), ob.cy = (float)((ob.cy - c->map.pad_top) / g);
    ob.w = (float)(ob.w / g), ob.h = (float)(ob.h / g);
    float pts[8];
    yolo_obb_corners(&ob, pts);
    json_t *poly = json_array();
    for (int k = 0; k < 4; k++)
        json_array_append_new(poly, json_pack("[f,f]", task_round(pts[2 * k] * sx, 1e-2), task_round(pts[2 * k + 1] * sy, 1e-2)));
    json_object_set_new(o, "obb", json_pack("{s:f,s:f,s:f,s:f,s:f}", "cx", task_round(ob.cx * sx, 1e-3), "cy", task_round(ob.cy * sy, 1e-3), "w", task_round(ob.w * sx, 1e-3), "h", task_round(ob.h * sy, 1e-3), "angle", task_round(ob.angle * 180.0 / M_PI, 1e-3)));
    json_object_set_new(o, "polygon", poly);
    return 0;
}

int task_detections_json(const task_ctx *c, yolo_det *dets, size_t n, json_t *arr, double *extra_ms, sight_error *err)
{
    /* Boxes go back to the decoded image, then up to full size if the JPEG
     * was decoded at reduced scale. */
    const double sx = (double)c->orig_w / c->img_w, sy = (double)c->orig_h / c->img_h;
    const yolo_task task = c->spec->task;
    *extra_ms = 0;
    for (size_t i = 0; i < n; i++) {
        yolo_det *b = &dets[i];
        if (!is_prob(b->score)) return bad_conf(c, "a detection confidence", b->score, err);
        const float box_in[4] = {b->x1, b->y1, b->x2, b->y2};
        letterbox_unmap(&c->map, c->img_w, c->img_h, &b->x1, &b->y1, &b->x2, &b->y2);
        char idbuf[16];
        json_t *o = json_pack("{s:i,s:s,s:f,s:{s:f,s:f,s:f,s:f}}", "class_id", b->cls, "class", class_name(c, b->cls, idbuf),
                              "confidence", task_round(b->score, 1e-6), "box", "x1", task_round(b->x1 * sx, 1e-3), "y1",
                              task_round(b->y1 * sy, 1e-3), "x2", task_round(b->x2 * sx, 1e-3), "y2", task_round(b->y2 * sy, 1e-3));
        if (!o) {
            sight_error_set(err, "out_of_memory", "out of memory");
            return -1;
        }
        json_array_append_new(arr, o);
        const double t = clock_ms();
        if (task == YOLO_TASK_POSE) {
            json_t *kp = keypoints_json(c, b->idx, sx, sy, err);
            if (!kp) return -1;
            json_object_set_new(o, "keypoints", kp);
        } else if (task == YOLO_TASK_SEGMENT) {
            if (mask_json(c, b, box_in, o, sx, sy)) {
                sight_error_set(err, "out_of_memory", "out of memory computing a mask");
                return -1;
            }
        } else if (task == YOLO_TASK_OBB) {
            if (obb_json(c, b, o, sx, sy, err)) return -1;
        }
        *extra_ms += clock_ms() - t;
    }
    return 0;
}

int task_classify_json(const task_ctx *c, const bool *allowed, json_t **out, sight_error *err)
{
    const int nc = c->spec->nc;
    for (int i = 0; i < nc; i++)
        if (!is_prob(c->data[i])) return bad_conf(c, "a class probability", c->data[i], err);
    int ids[5];
    int k = yolo_top_classes(c->data, nc, allowed, allowed ? nc : 0, 5, ids);
    *out = json_array();
    for (int i = 0; i < k; i++) {
        char idbuf[16];
        json_array_append_new(*out, json_pack("{s:i,s:s,s:f}", "class_id", ids[i], "class", class_name(c, ids[i], idbuf), "confidence", task_round(c->data[ids[i]], 1e-6)));
    }
    return 0;
}
