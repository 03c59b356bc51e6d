#include "pipeline/stages.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "metrics/metrics.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_err(stage_error *e, const char *code, const char *fmt, const char *arg)
{
    snprintf(e->code, sizeof e->code, "%s", code);
    snprintf(e->message, sizeof e->message, fmt, arg);
}

static int run_stage(const stage *st, const char *name, metrics_stage metric, const stage_input *in,
                     json_t *result, json_t *timing, stage_error *err)
{
    if (!st) {
        char code[48];
        snprintf(code, sizeof code, "%s_unavailable", name);
        set_err(err, code, "%s was requested but this server has no such stage configured", name);
        return -1;
    }
    double t = now_s();
    json_t *out = NULL;
    if (st->run(st->self, in, &out, err) != 0) {
        json_decref(out);
        return -1;
    }
    double dt = now_s() - t;
    metrics_stage_seconds(metric, dt);
    json_object_set_new(result, st->name, out);
    json_object_set_new(timing, st->name, json_real(dt * 1000.0));
    return 0;
}

/* Shrink-on-load only when every requested stage can work from a smaller image. */
static void decode_hint(const stage_set *set, const file_job *f, image_decode_opts *o)
{
    const stage *req[2];
    int n = 0;
    if (f->is_yolo) req[n++] = set->yolo;
    if (f->is_llm) req[n++] = set->llm;
    for (int i = 0; i < n; i++) {
        if (!req[i] || req[i]->min_width <= 0 || req[i]->min_height <= 0) {
            o->min_width = o->min_height = 0;
            return;
        }
        if (req[i]->min_width > o->min_width) o->min_width = req[i]->min_width;
        if (req[i]->min_height > o->min_height) o->min_height = req[i]->min_height;
    }
}

json_t *stages_run_file(const stage_set *set, const char *query, const json_t *params, const file_job *file,
                        const atomic_bool *cancelled, stage_error *err)
{
    double t0 = now_s();
    image_decode_opts opts = {.max_pixels = (uint64_t)set->max_pixels, .fit = true};
    decode_hint(set, file, &opts);

    image_t img;
    char msg[256];
    image_status st = image_decode(file->data, file->len, &opts, &img, msg, sizeof msg);
    if (st != IMAGE_OK) {
        set_err(err, image_status_code(st), "%s", msg);
        return NULL;
    }
    double t_dec = now_s() - t0;
    metrics_stage_seconds(STAGE_DECODE, t_dec);

    json_t *result = json_object();
    json_t *timing = json_object();
    json_object_set_new(result, "image", json_pack("{s:i,s:i,s:s}", "width", img.orig_width, "height",
                                                   img.orig_height, "format", image_format_name(img.format)));
    json_object_set_new(timing, "decode", json_real(t_dec * 1000.0));

    stage_input in = {query, params, file, &img};
    int rc = 0;
    if (file->is_yolo) {
        if (atomic_load(cancelled)) rc = -1, set_err(err, "cancelled", "%s", "request cancelled");
        else rc = run_stage(set->yolo, "yolo", STAGE_YOLO, &in, result, timing, err);
    }
    if (rc == 0 && file->is_llm) {
        if (atomic_load(cancelled)) rc = -1, set_err(err, "cancelled", "%s", "request cancelled");
        else rc = run_stage(set->llm, "llm", STAGE_LLM, &in, result, timing, err);
    }
    image_free(&img);
    if (rc != 0) {
        json_decref(result);
        json_decref(timing);
        return NULL;
    }
    json_object_set_new(timing, "total", json_real((now_s() - t0) * 1000.0));
    json_object_set_new(result, "timing_ms", timing);
    return result;
}
