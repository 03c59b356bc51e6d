#include "ocr/ocr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ocr/ctc.h"
#include "ocr/db_postprocess.h"
#include "ocr/geometry.h"
#include "ocr/lines.h"
#include "ocr/resize.h"
#include "ort/ort_env.h"
#include "util/clock.h"
#include "util/log.h"

/* PaddleOCR's inference defaults (tools/infer/utility.py) for PP-OCRv4. */
#define DET_LIMIT_SIDE 960 /* det_limit_side_len, det_limit_type "max" */
/* Longest detector input side for a very thin image (see detect()). */
#define DET_MAX_SIDE 4000
/* Shortest detector input side: rows of context a text line needs around it (see detect()). */
#define DET_MIN_CONTEXT 64
#define REC_H 48 /* rec_image_shape 3,48,320 */
#define REC_MIN_W 320
#define REC_BATCH 6     /* rec_batch_num */
#define DROP_SCORE 0.5f /* lines recognised with less confidence are dropped */
/* Not in PaddleOCR: a bound on the recogniser input width, so that a hostile
 * sliver several thousand times wider than tall cannot ask for gigabytes.
 * Longer lines are squeezed into it. */
#define REC_MAX_W 4096
/* Largest crop taken from the image (pixels); a text line is far smaller. */
#define CROP_MAX_PIXELS ((size_t)64 << 20)

static const char *const DET_FILES[] = {"ch_PP-OCRv4_det_infer.onnx", "det.onnx", NULL};
static const char *const REC_FILES[] = {"ch_PP-OCRv4_rec_infer.onnx", "rec.onnx", NULL};
static const char *const DICT_FILES[] = {"ppocr_keys_v1.txt", "dict.txt", NULL};

typedef struct {
    OrtSession *sess;
    char *in_name, *out_name;
} model;

struct ocr_engine {
    const OrtApi *api;
    OrtMemoryInfo *mem;
    model det, rec;
    ocr_dict dict;
    int threads, concurrency;
    /* Gate: at most `concurrency` Runs at once, each on `threads` threads, so
     * concurrent requests do not oversubscribe the cores. */
    gate runs;
    stage st;
};

static int find_file(const char *dir, const char *const *names, char *path, size_t len)
{
    for (int i = 0; names[i]; i++) {
        snprintf(path, len, "%s/%s", dir, names[i]);
        if (access(path, R_OK) == 0) return 0;
    }
    snprintf(path, len, "%s/%s", dir, names[0]);
    return -1;
}

bool ocr_models_present(const char *dir, char *missing, size_t missing_len)
{
    char p[1200];
    const char *const *sets[] = {DET_FILES, REC_FILES, DICT_FILES};
    for (int i = 0; i < 3; i++)
        if (find_file(dir, sets[i], p, sizeof p)) {
            snprintf(missing, missing_len, "%s", p);
            return false;
        }
    return true;
}

static int load_model(ocr_engine *e, OrtEnv *env, const char *path, model *m, char *err, size_t len)
{
    const OrtApi *api = e->api;
    OrtSessionOptions *so = NULL;
    OrtAllocator *alloc;
    char *name = NULL, what[1300];
    int rc = -1;
    snprintf(what, sizeof what, "loading %s", path);
    if (!(so = ort_session_options(api, e->threads, err, len)) ||
        ort_status_fail(api, api->CreateSession(env, path, so, &m->sess), err, len, what) ||
        ort_status_fail(api, api->GetAllocatorWithDefaultOptions(&alloc), err, len, "allocator"))
        goto done;
    size_t nin, nout;
    if (ort_status_fail(api, api->SessionGetInputCount(m->sess, &nin), err, len, "inputs") ||
        ort_status_fail(api, api->SessionGetOutputCount(m->sess, &nout), err, len, "outputs"))
        goto done;
    if (nin != 1 || nout < 1) {
        snprintf(err, len, "%s: expected 1 input and an output, found %zu and %zu", path, nin, nout);
        goto done;
    }
    if (ort_status_fail(api, api->SessionGetInputName(m->sess, 0, alloc, &name), err, len, "input name")) goto done;
    m->in_name = strdup(name);
    alloc->Free(alloc, name);
    if (ort_status_fail(api, api->SessionGetOutputName(m->sess, 0, alloc, &name), err, len, "output name")) goto done;
    m->out_name = strdup(name);
    alloc->Free(alloc, name);
    if (!m->in_name || !m->out_name) {
        snprintf(err, len, "out of memory");
        goto done;
    }
    rc = 0;
done:
    if (so) api->ReleaseSessionOptions(so);
    return rc;
}

/* Runs m on one float tensor; *out holds the output (caller releases) and
 * shape/nd/data describe it. */
static int run(ocr_engine *e, const model *m, float *input, const int64_t shape[4], OrtValue **out, int64_t *oshape,
               size_t *ond, const float **odata, char *err, size_t len)
{
    const OrtApi *api = e->api;
    if (ort_run_float(api, m->sess, e->mem, &e->runs, m->in_name, m->out_name, input, shape, out, NULL, err, len))
        return -1;
    int rc = ort_float_output(api, *out, 4, oshape, ond, odata, err, len);
    if (rc == 0 && *ond < 2) snprintf(err, len, "output rank %zu is unexpected", *ond), rc = -1;
    if (rc) {
        api->ReleaseValue(*out);
        *out = NULL;
    }
    return rc;
}

static void model_free(const OrtApi *api, model *m)
{
    if (m->sess) api->ReleaseSession(m->sess);
    free(m->in_name);
    free(m->out_name);
}

void ocr_close(ocr_engine *e)
{
    if (!e) return;
    model_free(e->api, &e->det);
    model_free(e->api, &e->rec);
    if (e->mem) e->api->ReleaseMemoryInfo(e->mem);
    ocr_dict_free(&e->dict);
    gate_destroy(&e->runs);
    free(e);
}

static int stage_run(void *self, const stage_input *in, json_t **out, sight_error *err)
{
    return ocr_read_cancellable(self, in->image, in->cancelled, out, err);
}

ocr_engine *ocr_open(const char *dir, int threads, char *err, size_t err_len)
{
    const OrtApi *api;
    OrtEnv *env = ort_env_get(&api);
    if (!env) {
        snprintf(err, err_len, "ONNX Runtime could not be initialised");
        return NULL;
    }
    char det_path[1200], rec_path[1200], dict_path[1200];
    if (find_file(dir, DET_FILES, det_path, sizeof det_path) || find_file(dir, REC_FILES, rec_path, sizeof rec_path) ||
        find_file(dir, DICT_FILES, dict_path, sizeof dict_path)) {
        char missing[1200];
        ocr_models_present(dir, missing, sizeof missing);
        snprintf(err, err_len, "cannot read %s", missing);
        return NULL;
    }
    ocr_engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    e->api = api;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    /* One request's OCR is several Runs in a row, so latency matters more than
     * for detection: by default one Run uses every core. */
    e->threads = threads > 0 ? threads : (int)cores;
    e->concurrency = (int)(cores / e->threads) > 0 ? (int)(cores / e->threads) : 1;
    gate_init(&e->runs, e->concurrency);
    if (ocr_dict_load(dict_path, &e->dict, err, err_len)) goto fail;
    if (load_model(e, env, det_path, &e->det, err, err_len) || load_model(e, env, rec_path, &e->rec, err, err_len))
        goto fail;
    if (ort_status_fail(api, api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &e->mem), err, err_len,
                        "memory info"))
        goto fail;

    /* Warm-up runs check that the models are what we think: the detector
     * gives a one-channel map of its input's size, the recogniser one
     * probability per dictionary class. */
    static float det_in[3 * 32 * 32], rec_in[3 * REC_H * REC_MIN_W];
    int64_t ds[4] = {1, 3, 32, 32}, rs[4] = {1, 3, REC_H, REC_MIN_W}, os[4];
    size_t nd;
    const float *data;
    OrtValue *ov;
    char msg[512];
    if (run(e, &e->det, det_in, ds, &ov, os, &nd, &data, msg, sizeof msg)) {
        snprintf(err, err_len, "%s: %s", det_path, msg);
        goto fail;
    }
    api->ReleaseValue(ov);
    if (nd != 4 || os[1] != 1 || os[2] != 32 || os[3] != 32) {
        snprintf(err, err_len, "%s is not a DB text detector: its output is not [1, 1, H, W]", det_path);
        goto fail;
    }
    if (run(e, &e->rec, rec_in, rs, &ov, os, &nd, &data, msg, sizeof msg)) {
        snprintf(err, err_len, "%s: %s", rec_path, msg);
        goto fail;
    }
    api->ReleaseValue(ov);
    if (nd != 3 || os[2] != e->dict.n) {
        snprintf(err, err_len, "%s has %lld output classes but %s gives %d (blank + %d characters + space)", rec_path,
                 nd == 3 ? (long long)os[2] : -1LL, dict_path, e->dict.n, e->dict.n - 2);
        goto fail;
    }
    /* Crops are taken from the full-size image: no shrink-on-load for OCR. */
    e->st = (stage){.name = "ocr", .self = e, .run = stage_run, .validate = NULL, .min_width = 0, .min_height = 0};
    return e;
fail:
    ocr_close(e);
    return NULL;
}

const stage *ocr_stage(ocr_engine *e) { return &e->st; }

void ocr_describe(const ocr_engine *e, char *buf, size_t len)
{
    snprintf(buf, len, "PP-OCRv4 detection + recognition, %d characters, %d concurrent run(s) x %d intra-op thread(s)",
             e->dict.n - 2, e->concurrency, e->threads);
}

static void fail_err(sight_error *err, const char *code, const char *msg)
{
    snprintf(err->code, sizeof err->code, "%s", code);
    snprintf(err->message, sizeof err->message, "%s", msg);
}

/* Text detection: boxes in pixels of img. */
static int detect(ocr_engine *e, const image_t *img, ocr_det_box **boxes, int *n, char *msg, size_t len)
{
    const int w = img->width, h = img->height;
    /* DetResizeForTest, limit_type "max": shrink so the longer side is at most
     * 960, then each side to the nearest multiple of 32 (at least 32). */
    const int lng = w > h ? w : h, shrt = w > h ? h : w;
    double ratio = lng > DET_LIMIT_SIDE ? (double)DET_LIMIT_SIDE / lng : 1.0;
    /* Not in PaddleOCR: a thin strip of text. Shrunk to 960 wide and
     * stretched to 32 rows, a 3000 x 80 line came out distorted; and even
     * undistorted, the detector saw text only near the two ends of an input
     * a few rows tall (it needs context above and below). So a strip keeps
     * enough scale for its short side to reach 32 (never enlarged; long side
     * at most DET_MAX_SIDE), and is placed unstretched in an input at least
     * DET_MIN_CONTEXT tall, the rest filled by repeating its edge pixels. */
    int cw, ch, rw, rh; /* content size, input size */
    if (shrt * ratio < DET_MIN_CONTEXT) {
        double keep = 32.0 / shrt < 1.0 ? 32.0 / shrt : 1.0;
        if (lng * keep > DET_MAX_SIDE) keep = (double)DET_MAX_SIDE / lng;
        if (keep > ratio) ratio = keep;
        cw = (int)(w * ratio), ch = (int)(h * ratio);
        if (cw < 1) cw = 1;
        if (ch < 1) ch = 1;
        rw = (cw + 31) / 32 * 32, rh = (ch + 31) / 32 * 32;
        if (w < h) rw = rw < DET_MIN_CONTEXT ? DET_MIN_CONTEXT : rw;
        else rh = rh < DET_MIN_CONTEXT ? DET_MIN_CONTEXT : rh;
    } else {
        rw = (int)(w * ratio), rh = (int)(h * ratio);
        rw = (int)nearbyint(rw / 32.0) * 32, rh = (int)nearbyint(rh / 32.0) * 32;
        if (rw < 32) rw = 32;
        if (rh < 32) rh = 32;
        cw = rw, ch = rh;
    }
    const size_t plane = (size_t)rw * rh;
    uint8_t *small = malloc(plane * 3);
    float *input = malloc(plane * 3 * sizeof *input);
    if (!small || !input) {
        free(small), free(input);
        snprintf(msg, len, "out of memory");
        return -1;
    }
    /* Content top-left at its own stride rw; padding repeats the last column and row. */
    uint8_t *tmp = cw == rw && ch == rh ? small : malloc((size_t)cw * ch * 3);
    if (!tmp) {
        free(small), free(input);
        snprintf(msg, len, "out of memory");
        return -1;
    }
    ocr_resize_rgb(img->pixels, w, h, tmp, cw, ch);
    if (tmp != small) {
        for (int y = 0; y < rh; y++) {
            const uint8_t *src = tmp + (size_t)(y < ch ? y : ch - 1) * cw * 3;
            uint8_t *dst = small + (size_t)y * rw * 3;
            memcpy(dst, src, (size_t)cw * 3);
            for (int x = cw; x < rw; x++) memcpy(dst + (size_t)x * 3, src + (size_t)(cw - 1) * 3, 3);
        }
        free(tmp);
    }
    /* NormalizeImage: (x / 255 - mean) / std with ImageNet's mean and std,
     * applied by PaddleOCR to OpenCV's BGR pixels: channel 0 is blue and
     * takes mean 0.485. */
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 3; c++) {
        float lut[256];
        for (int v = 0; v < 256; v++) lut[v] = (v / 255.0f - mean[c]) / sd[c];
        float *dst = input + (size_t)c * plane;
        const uint8_t *src = small + (2 - c); /* BGR from RGB */
        for (size_t i = 0; i < plane; i++) dst[i] = lut[src[3 * i]];
    }
    free(small);
    int64_t shape[4] = {1, 3, rh, rw}, os[4];
    size_t nd;
    const float *prob;
    OrtValue *ov;
    int rc = run(e, &e->det, input, shape, &ov, os, &nd, &prob, msg, len);
    free(input);
    if (rc) return -1;
    if (nd != 4 || os[2] != rh || os[3] != rw) {
        e->api->ReleaseValue(ov);
        snprintf(msg, len, "detector output has an unexpected shape");
        return -1;
    }
    ocr_db_params p;
    ocr_db_defaults(&p);
    if (cw == rw && ch == rh) {
        rc = ocr_db_boxes(prob, rw, rh, w, h, &p, boxes, n);
    } else {
        /* Only the content part of the map (the padding repeats its edge). */
        float *part = malloc((size_t)cw * ch * sizeof *part);
        for (int y = 0; part && y < ch; y++) memcpy(part + (size_t)y * cw, prob + (size_t)y * rw, (size_t)cw * sizeof *part);
        rc = part ? ocr_db_boxes(part, cw, ch, w, h, &p, boxes, n) : -1;
        free(part);
    }
    e->api->ReleaseValue(ov);
    if (rc) snprintf(msg, len, "out of memory");
    return rc;
}

typedef struct {
    uint8_t *px;
    int w, h;
    float ratio;
    char *text;
    float conf;
} crop_t;

static int by_ratio(const void *a, const void *b, void *ctx)
{
    const crop_t *c = ctx;
    float x = c[*(const int *)a].ratio, y = c[*(const int *)b].ratio;
    return (x > y) - (x < y);
}

/* Recognises crops[idx[0..n)] in one batch: each resized to height 48
 * keeping its ratio, normalised to [-1, 1] in BGR order, right-padded with 0
 * to the widest of the batch (at least 320). */
static int recognise_batch(ocr_engine *e, crop_t *crops, const int *idx, int n, char *msg, size_t len)
{
    float max_ratio = (float)REC_MIN_W / REC_H;
    for (int i = 0; i < n; i++)
        if (crops[idx[i]].ratio > max_ratio) max_ratio = crops[idx[i]].ratio;
    int W = (int)(REC_H * max_ratio);
    if (W > REC_MAX_W) W = REC_MAX_W;
    const size_t plane = (size_t)REC_H * W, per = 3 * plane;
    float *input = calloc((size_t)n * per, sizeof *input);
    uint8_t *rs = malloc(plane * 3);
    if (!input || !rs) {
        free(input), free(rs);
        snprintf(msg, len, "out of memory");
        return -1;
    }
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (v / 255.0f - 0.5f) / 0.5f;
    for (int i = 0; i < n; i++) {
        crop_t *c = &crops[idx[i]];
        double want = ceil(REC_H * (double)c->ratio);
        int rw = want > W ? W : want < 1 ? 1
                                         : (int)want;
        ocr_resize_rgb(c->px, c->w, c->h, rs, rw, REC_H);
        float *dst = input + (size_t)i * per;
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < REC_H; y++) {
                float *row = dst + (size_t)ch * plane + (size_t)y * W;
                const uint8_t *src = rs + (size_t)y * rw * 3 + (2 - ch);
                for (int x = 0; x < rw; x++) row[x] = lut[src[3 * x]];
            }
    }
    free(rs);
    int64_t shape[4] = {n, 3, REC_H, W}, os[4];
    size_t nd;
    const float *probs;
    OrtValue *ov;
    int rc = run(e, &e->rec, input, shape, &ov, os, &nd, &probs, msg, len);
    free(input);
    if (rc) return -1;
    if (nd != 3 || os[0] != n || os[2] != e->dict.n || os[1] < 1) {
        e->api->ReleaseValue(ov);
        snprintf(msg, len, "recogniser output has an unexpected shape");
        return -1;
    }
    const int T = (int)os[1], C = (int)os[2];
    for (int i = 0; i < n && rc == 0; i++) {
        crop_t *c = &crops[idx[i]];
        if (ocr_ctc_decode(probs + (size_t)i * T * C, T, C, &e->dict, &c->text, &c->conf)) {
            snprintf(msg, len, "out of memory");
            rc = -1;
        }
    }
    e->api->ReleaseValue(ov);
    return rc;
}

static double round_to(double v, double q) { return round(v / q) * q; }

int ocr_read_cancellable(ocr_engine *e, const image_t *img, const atomic_bool *cancelled, json_t **out,
                         sight_error *err)
{
    char msg[512];
    *out = NULL;
    double t0 = clock_ms();
    ocr_det_box *boxes = NULL;
    int n = 0;
    if (img->width > 0 && img->height > 0 && img->pixels && detect(e, img, &boxes, &n, msg, sizeof msg)) {
        log_error("OCR detection: %s", msg);
        fail_err(err, "ocr_unavailable", "text detection failed");
        return -1;
    }
    double t1 = clock_ms();
    int *order = malloc((size_t)(n ? n : 1) * sizeof *order), *row = malloc((size_t)(n ? n : 1) * sizeof *row);
    int *byw = malloc((size_t)(n ? n : 1) * sizeof *byw);
    ocr_pt(*quads)[4] = malloc((size_t)(n ? n : 1) * sizeof *quads);
    crop_t *crops = calloc((size_t)(n ? n : 1), sizeof *crops);
    int rc = (!order || !row || !byw || !quads || !crops) ? -1 : 0;
    if (rc) snprintf(msg, sizeof msg, "out of memory");
    for (int i = 0; rc == 0 && i < n; i++) memcpy(quads[i], boxes[i].box, sizeof quads[i]);
    if (rc == 0 && ocr_reading_order((const ocr_pt(*)[4])quads, n, order, row)) rc = -1, snprintf(msg, sizeof msg, "out of memory");
    /* Crops in reading order; a degenerate one stays empty and reads as nothing. */
    int m = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        crop_t *c = &crops[i];
        c->px = ocr_crop_quad(img->pixels, img->width, img->height, quads[order[i]], CROP_MAX_PIXELS, &c->w, &c->h);
        if (c->px) c->ratio = (float)c->w / c->h, byw[m++] = i;
    }
    /* Batches of similar width waste little padding (PaddleOCR sorts the same way). */
    if (rc == 0 && m > 1) qsort_r(byw, (size_t)m, sizeof *byw, by_ratio, crops);
    for (int b = 0; rc == 0 && b < m; b += REC_BATCH) {
        if (cancelled && atomic_load(cancelled)) {
            rc = -2;
            break;
        }
        int k = m - b < REC_BATCH ? m - b : REC_BATCH;
        if (recognise_batch(e, crops, byw + b, k, msg, sizeof msg)) rc = -1;
    }
    double t2 = clock_ms();
    if (rc == 0) {
        /* Boxes back to the full-size image when it was decoded smaller. */
        double sx = (double)img->orig_width / (img->width > 0 ? img->width : 1);
        double sy = (double)img->orig_height / (img->height > 0 ? img->height : 1);
        json_t *lines = json_array();
        const char **texts = malloc((size_t)(n ? n : 1) * sizeof *texts);
        int *rows = malloc((size_t)(n ? n : 1) * sizeof *rows);
        int kept = 0;
        for (int i = 0; texts && rows && i < n; i++) {
            crop_t *c = &crops[i];
            if (!c->text || !c->text[0] || c->conf < DROP_SCORE) continue;
            const ocr_pt *q = quads[order[i]];
            json_t *box = json_array();
            for (int k = 0; k < 4; k++)
                json_array_append_new(box, json_pack("[f,f]", round_to(q[k].x * sx, 1e-1), round_to(q[k].y * sy, 1e-1)));
            json_array_append_new(lines, json_pack("{s:s,s:f,s:o}", "text", c->text, "confidence", round_to(c->conf, 1e-4), "box", box));
            texts[kept] = c->text, rows[kept] = row[i], kept++;
        }
        char *all = texts && rows ? ocr_join_lines(texts, rows, kept) : NULL;
        double t3 = clock_ms();
        if (all)
            *out = json_pack("{s:s,s:o,s:s,s:{s:f,s:f,s:f}}", "model", "PP-OCRv4", "lines", lines, "text", all,
                             "speed_ms", "detection", round_to(t1 - t0, 1e-3), "recognition",
                             round_to(t2 - t1, 1e-3), "postprocess", round_to(t3 - t2, 1e-3));
        else
            json_decref(lines);
        free(all);
        free(texts);
        free(rows);
        if (!*out) rc = -1, snprintf(msg, sizeof msg, "out of memory");
    }
    for (int i = 0; crops && i < n; i++) free(crops[i].px), free(crops[i].text);
    free(crops), free(quads), free(byw), free(order), free(row), free(boxes);
    if (rc == -2) {
        fail_err(err, "cancelled", "request cancelled");
        return -1;
    }
    if (rc) {
        log_error("OCR: %s", msg);
        fail_err(err, "ocr_unavailable", "text recognition failed");
        return -1;
    }
    return 0;
}

int ocr_read(ocr_engine *e, const image_t *img, json_t **out, sight_error *err)
{
    return ocr_read_cancellable(e, img, NULL, out, err);
}
