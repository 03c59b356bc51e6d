#include "detect/slice_detect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect/mask.h"
#include "detect/slice_mask.h"
#include "detect/slice_merge.h"
#include "detect/task_result.h"
#include "metrics/metrics.h"
#include "util/clock.h"

/* SAHI's defaults: IOS 0.5 for merging, and the same bar for the NMS after it. */
#define MERGE_THRESHOLD 0.5

bool slice_wanted(const detector *d, const stage_input *in)
{
    if (!in->slice || in->slice->mode == SLICE_OFF) return false;
    if (!strcmp(detector_task_name(d), "classify")) return false;
    if (in->slice->mode == SLICE_ON) return true;
    int iw, ih;
    detector_input_size(d, &iw, &ih);
    return in->image->width > 2 * iw || in->image->height > 2 * ih;
}

typedef struct {
    detector *d;
    const image_t *img;
    const detect_params *p;
    const slice_rect *tiles;
    size_t ntiles; /* run ntiles, when there is one, is the full pass */
    const atomic_bool *cancelled;
    json_t **res;
    sight_error *errs;
} runs_ctx;

/* One run: a tile copied out of the image (the letterbox reads a contiguous
 * image), or the whole image. */
static void run_one(void *arg, size_t i)
{
    runs_ctx *c = arg;
    if (atomic_load(c->cancelled)) {
        sight_error_set(&c->errs[i], "cancelled", "%s", "request cancelled");
        return;
    }
    if (i == c->ntiles) {
        if (detector_detect(c->d, c->img, c->p, &c->res[i], &c->errs[i])) c->res[i] = NULL;
        return;
    }
    const slice_rect *t = &c->tiles[i];
    /* The image's deferred ICC transform is borrowed (the tile is freed with
     * free, not image_free): the detector converts each tile's letterbox. */
    image_t tile = {.width = t->w, .height = t->h, .orig_width = t->w, .orig_height = t->h, .format = c->img->format, .exif_orientation = 1, .icc = c->img->icc};
    if (!(tile.pixels = malloc((size_t)t->w * t->h * 3))) {
        sight_error_set(&c->errs[i], "out_of_memory", "%s", "out of memory for a tile");
        return;
    }
    for (int y = 0; y < t->h; y++)
        memcpy(tile.pixels + (size_t)y * t->w * 3, c->img->pixels + ((size_t)(t->y + y) * c->img->width + t->x) * 3, (size_t)t->w * 3);
    if (detector_detect(c->d, &tile, c->p, &c->res[i], &c->errs[i])) c->res[i] = NULL;
    free(tile.pixels);
}

static json_t *num(double v) { return json_real(task_round(v, 1e-3)); }

/* A point {x, y} (keypoint) or [x, y] (polygon corner) moved by the tile's place. */
static void shift_xy(json_t *pt, int tx, int ty)
{
    if (json_is_object(pt)) {
        json_object_set_new(pt, "x", json_real(task_round(json_number_value(json_object_get(pt, "x")) + tx, 1e-2)));
        json_object_set_new(pt, "y", json_real(task_round(json_number_value(json_object_get(pt, "y")) + ty, 1e-2)));
    } else if (json_is_array(pt)) {
        json_array_set_new(pt, 0, json_real(task_round(json_number_value(json_array_get(pt, 0)) + tx, 1e-2)));
        json_array_set_new(pt, 1, json_real(task_round(json_number_value(json_array_get(pt, 1)) + ty, 1e-2)));
    }
}

/* The representative's keypoints and oriented box, in image coordinates. */
static void shift_parts(json_t *o, int tx, int ty)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(o, "keypoints"), i, v) shift_xy(v, tx, ty);
    json_t *obb = json_object_get(o, "obb");
    if (obb) {
        json_object_set_new(obb, "cx", num(json_number_value(json_object_get(obb, "cx")) + tx));
        json_object_set_new(obb, "cy", num(json_number_value(json_object_get(obb, "cy")) + ty));
        json_array_foreach(json_object_get(o, "polygon"), i, v) shift_xy(v, tx, ty);
    }
}

/* A merged detection's mask: the union of its members' (tiles' RLE). */
static int merged_mask(json_t *o, const slice_mask_part *parts, size_t n, const image_t *img, bool rle)
{
    yolo_mask m;
    if (slice_mask_union(parts, n, &m)) return -1;
    json_object_del(o, "rle");
    json_object_del(o, "polygon");
    int rc = task_mask_json(o, &m, img->orig_width, img->orig_height, rle);
    mask_free(&m);
    return rc;
}

typedef struct {
    const json_t *det; /* a run's detection object */
    int tx, ty;        /* its run's place in the image */
} member;

/* Merges every run's detections into arr. */
static int merge_runs(const runs_ctx *c, size_t nruns, const slice_opts *o, bool rle, json_t *arr, sight_error *err)
{
    size_t n = 0;
    for (size_t r = 0; r < nruns; r++) n += json_array_size(json_object_get(c->res[r], "detections"));
    if (n == 0) return 0;
    slice_box *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    member *mem = malloc(n * sizeof *mem);
    slice_mask_part *parts = malloc(n * sizeof *parts);
    int *group = malloc(n * sizeof *group), *rep = malloc(n * sizeof *rep);
    long k = -1;
    if (in && out && mem && parts && group && rep) {
        size_t j = 0;
        for (size_t r = 0; r < nruns; r++) {
            const int tx = r < c->ntiles ? c->tiles[r].x : 0, ty = r < c->ntiles ? c->tiles[r].y : 0;
            size_t i;
            json_t *det;
            json_array_foreach(json_object_get(c->res[r], "detections"), i, det) {
                const json_t *b = json_object_get(det, "box");
                in[j] = (slice_box){json_number_value(json_object_get(b, "x1")) + tx, json_number_value(json_object_get(b, "y1")) + ty,
                                    json_number_value(json_object_get(b, "x2")) + tx, json_number_value(json_object_get(b, "y2")) + ty,
                                    json_number_value(json_object_get(det, "confidence")), (int)json_integer_value(json_object_get(det, "class_id"))};
                mem[j++] = (member){det, tx, ty};
            }
        }
        /* An oriented box is not the union of two: obb models only suppress. */
        bool nmm = o->merge == SLICE_MERGE_NMM && !json_object_get(mem[0].det, "obb");
        k = slice_merge(in, n, nmm, MERGE_THRESHOLD, c->p->max_detections, out, group, rep);
    }
    int rc = k < 0 ? -1 : 0;
    for (long r = 0; r < k && rc == 0; r++) {
        const member *m = &mem[rep[r]];
        json_t *d = json_deep_copy(m->det);
        if (!d) {
            rc = -1;
            break;
        }
        json_object_set_new(d, "box", json_pack("{s:o,s:o,s:o,s:o}", "x1", num(out[r].x1), "y1", num(out[r].y1), "x2", num(out[r].x2), "y2", num(out[r].y2)));
        shift_parts(d, m->tx, m->ty);
        if (json_object_get(d, "rle")) {
            size_t np = 0;
            for (size_t i = 0; i < n; i++)
                if (group[i] == r) parts[np++] = (slice_mask_part){json_object_get(mem[i].det, "rle"), mem[i].tx, mem[i].ty};
            rc = merged_mask(d, parts, np, c->img, rle);
        }
        json_array_append_new(arr, d);
    }
    if (rc) sight_error_set(err, "out_of_memory", "%s", "out of memory merging tiles");
    free(in), free(out), free(mem), free(parts), free(group), free(rep);
    return rc;
}

/* Adds each run's speed_ms into the total (the work done, not the wall time). */
static void add_speed(json_t *total, const json_t *speed)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)speed, k, v)
        json_object_set_new(total, k, json_real(task_round(json_number_value(json_object_get(total, k)) + json_number_value(v), 1e-3)));
}

int slice_detect(detector *d, const stage_input *in, const detect_params *p, json_t **out, sight_error *err)
{
    const slice_opts *o = in->slice;
    const image_t *img = in->image;
    int iw, ih;
    detector_input_size(d, &iw, &ih);
    int tw = o->size > 0 ? o->size : iw, th = o->size > 0 ? o->size : ih;
    const size_t max = in->max_tiles > 0 ? (size_t)in->max_tiles : 64;
    size_t need = slice_grid(img->width, img->height, tw, th, o->overlap, NULL, 0);
    /* Automatic slicing fits the limit rather than fail: tiles grow by an
     * eighth of the input at a time (a 416 model's 4K image: 84 tiles of 416,
     * 60 of 468). An explicit size is the client's choice: refused below. */
    while (o->mode == SLICE_AUTO && need > max && (tw < img->width || th < img->height)) {
        tw += iw / 8 > 0 ? iw / 8 : 1, th += ih / 8 > 0 ? ih / 8 : 1;
        need = slice_grid(img->width, img->height, tw, th, o->overlap, NULL, 0);
    }
    if (need > max) {
        sight_error_set(err, "too_many_tiles", "slicing this %dx%d image into %dx%d tiles at overlap %.2f takes %zu tiles; the limit is %zu (--max-tiles)",
                        img->width, img->height, tw, th, (double)o->overlap, need, max);
        err->status = 422;
        return -1;
    }
    const size_t nruns = need + (o->full ? 1 : 0);
    slice_rect *tiles = malloc(need * sizeof *tiles);
    json_t **res = calloc(nruns, sizeof *res);
    sight_error *errs = calloc(nruns, sizeof *errs);
    if (!tiles || !res || !errs) {
        free(tiles), free(res), free(errs);
        sight_error_set(err, "out_of_memory", "%s", "out of memory");
        return -1;
    }
    slice_grid(img->width, img->height, tw, th, o->overlap, tiles, need);
    /* Masks travel as RLE over their tile, so that parts can be painted together. */
    detect_params tp = *p;
    tp.mask_rle = true;
    runs_ctx c = {d, img, &tp, tiles, need, in->cancelled, res, errs};
    if (in->parallel) in->parallel(in->parallel_ctx, nruns, run_one, &c);
    else
        for (size_t i = 0; i < nruns; i++) run_one(&c, i);
    metrics_slice_runs((long)nruns);
    int rc = 0;
    for (size_t i = 0; i < nruns && rc == 0; i++)
        if (!res[i]) rc = -1, *err = errs[i];
    json_t *arr = json_array(), *speed = json_object(), *grid = json_array();
    double t0 = clock_ms();
    c.p = p; /* the client's max_detections for the merged list */
    if (rc == 0) rc = merge_runs(&c, nruns, o, p->mask_rle, arr, err);
    for (size_t i = 0; rc == 0 && i < nruns; i++) add_speed(speed, json_object_get(res[i], "speed_ms"));
    json_object_set_new(speed, "merge", json_real(task_round(clock_ms() - t0, 1e-3)));
    for (size_t i = 0; i < need; i++) json_array_append_new(grid, json_pack("[i,i,i,i]", tiles[i].x, tiles[i].y, tiles[i].w, tiles[i].h));
    if (rc == 0) {
        *out = json_pack("{s:O,s:O,s:o,s:o,s:o,s:b,s:s,s:I}", "model", json_object_get(res[0], "model"), "task", json_object_get(res[0], "task"),
                         "detections", arr, "speed_ms", speed, "slices", grid, "full_pass", o->full, "merge", slice_merge_name(o->merge), "runs", (json_int_t)nruns);
        if (!*out) rc = -1, sight_error_set(err, "out_of_memory", "%s", "out of memory");
    } else {
        json_decref(arr), json_decref(speed), json_decref(grid);
    }
    for (size_t i = 0; i < nruns; i++) json_decref(res[i]);
    free(tiles), free(res), free(errs);
    return rc;
}
