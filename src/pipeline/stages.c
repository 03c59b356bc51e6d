#include "pipeline/stages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "pipeline/track_json.h"
#include "util/clock.h"

int stage_run_one(const stage *st, const char *name, metrics_stage metric, const stage_input *in, json_t *earlier,
                  double *seconds, sight_error *err)
{
    if (!st) {
        char code[48];
        snprintf(code, sizeof code, "%s_unavailable", name);
        sight_error_set(err, code, "%s was requested but this server has no such stage configured", name);
        return -1;
    }
    double t = clock_s();
    json_t *out = NULL;
    if (st->run(st->self, in, &out, err) != 0) {
        json_decref(out);
        return -1;
    }
    *seconds = clock_s() - t;
    metrics_stage_seconds(metric, *seconds);
    json_object_set_new(earlier, st->name, out);
    return 0;
}

/* One stage of an image, between two checks of cancellation; when the client
 * asked for it, its output and time go into the result too. */
static int run_stage(const stage *st, const char *name, metrics_stage metric, stage_input *in, bool show,
                     json_t *earlier, json_t *result, json_t *timing, sight_error *err)
{
    if (st && atomic_load(in->cancelled)) {
        sight_error_set(err, "cancelled", "%s", "request cancelled");
        return -1;
    }
    double dt;
    if (stage_run_one(st, name, metric, in, earlier, &dt, err) != 0) return -1;
    if (show) {
        json_object_set(result, st->name, json_object_get(earlier, st->name));
        json_object_set_new(timing, st->name, json_real(dt * 1000.0));
    }
    return 0;
}

/* Shrink-on-load only when every stage that will see the image can work from a smaller one. */
static void decode_hint(const stage_set *set, const file_job *f, image_decode_opts *o)
{
    /* Sliced detection runs its tiles at the image's full resolution. */
    if (f->is_yolo && f->slice.mode != SLICE_OFF) return;
    const stage *req[3];
    int n = 0;
    bool grounding = f->is_llm && set->llm && set->llm->wants_grounding;
    if (f->is_yolo || (grounding && set->yolo)) req[n++] = set->yolo;
    if (f->is_ocr || (grounding && set->ocr)) req[n++] = set->ocr;
    if (f->is_llm) req[n++] = set->llm;
    for (int i = 0; i < n; i++) {
        if (!req[i] || req[i]->min_width <= 0 || req[i]->min_height <= 0) {
            o->min_width = o->min_height = 0;
            return;
        }
        if (req[i]->min_width > o->min_width) o->min_width = req[i]->min_width;
        if (req[i]->min_height > o->min_height) o->min_height = req[i]->min_height;
        if (req[i]->shrink_from > o->shrink_from) o->shrink_from = req[i]->shrink_from;
    }
}

struct stage_work {
    image_t img;
    json_t *result, *timing, *earlier;
    double t0;
    bool llm_left; /* the llm stage is still to run */
    int max_tiles;
};

void stages_work_free(stage_work *w)
{
    if (!w) return;
    image_free(&w->img);
    json_decref(w->result);
    json_decref(w->timing);
    json_decref(w->earlier);
    free(w);
}

static stage_input input_of(const stage_call *call, stage_work *w)
{
    return (stage_input){call->query, call->params, &w->img, w->earlier, call->file->model, call->cancelled, call->emit, call->emit_ctx, &call->file->slice, w->max_tiles, call->parallel, call->parallel_ctx, NULL};
}

stage_work *stages_begin(const stage_set *set, const stage_call *call, sight_error *err)
{
    const file_job *file = call->file;
    stage_work *w = calloc(1, sizeof *w);
    if (!w) {
        sight_error_set(err, "out_of_memory", "out of memory");
        return NULL;
    }
    w->t0 = clock_s();
    w->max_tiles = set->max_tiles > 0 ? set->max_tiles : 64;
    /* The detector converts colour on its letterbox; OCR and the LLM stage
     * read the whole image, which is converted before they run. */
    image_decode_opts opts = {.max_pixels = (uint64_t)set->max_pixels, .fit = true, .max_pixels_heif = (uint64_t)set->max_pixels_heif, .cancelled = call->cancelled, .defer_icc = true};
    decode_hint(set, file, &opts);

    char msg[256];
    image_status st = image_decode(file->data, file->len, &opts, &w->img, msg, sizeof msg);
    if (st != IMAGE_OK) {
        sight_error_set(err, image_status_code(st), "%s", msg);
        free(w);
        return NULL;
    }
    double t_dec = clock_s() - w->t0;
    metrics_stage_seconds(STAGE_DECODE, t_dec);

    w->result = json_object();
    w->timing = json_object();
    w->earlier = json_object();
    json_object_set_new(w->result, "image", json_pack("{s:i,s:i,s:s}", "width", w->img.orig_width, "height", w->img.orig_height, "format", image_format_name(w->img.format)));
    json_object_set_new(w->timing, "decode", json_real(t_dec * 1000.0));

    stage_input in = input_of(call, w);
    /* The analyser is grounded in detections and text when those stages exist,
     * whether or not the client asked to see them. */
    bool grounding = file->is_llm && set->llm && set->llm->wants_grounding;
    int rc = 0;
    if (file->is_yolo || (grounding && set->yolo))
        rc = run_stage(set->yolo, "yolo", STAGE_YOLO, &in, file->is_yolo, w->earlier, w->result, w->timing, err);
    if (rc == 0 && file->is_yolo && file->video.track) rc = track_json_image(file, json_object_get(w->earlier, "yolo"), err);
    if (rc == 0 && (file->is_ocr || (grounding && set->ocr))) {
        image_to_srgb(&w->img);
        rc = run_stage(set->ocr, "ocr", STAGE_OCR, &in, file->is_ocr, w->earlier, w->result, w->timing, err);
    }
    if (rc != 0) {
        stages_work_free(w);
        return NULL;
    }
    w->llm_left = file->is_llm;
    return w;
}

bool stages_llm_left(const stage_work *w) { return w->llm_left; }

json_t *stages_finish(const stage_set *set, const stage_call *call, stage_work *w, sight_error *err)
{
    int rc = 0;
    if (w->llm_left && call->file->llm_refused) {
        /* The other stages ran; only the provider call is refused. */
        sight_error_set(err, "llm_quota_exceeded", "%s", "this API key's LLM-token quota is spent for this period");
        rc = -1;
    } else if (w->llm_left) {
        image_to_srgb(&w->img);
        stage_input in = input_of(call, w);
        rc = run_stage(set->llm, "llm", STAGE_LLM, &in, true, w->earlier, w->result, w->timing, err);
    }
    json_t *result = NULL;
    if (rc == 0) {
        json_object_set_new(w->timing, "total", json_real((clock_s() - w->t0) * 1000.0));
        json_object_set(w->result, "timing_ms", w->timing);
        result = json_incref(w->result);
    }
    stages_work_free(w);
    return result;
}

json_t *stages_run_file(const stage_set *set, const stage_call *call, sight_error *err)
{
    stage_work *w = stages_begin(set, call, err);
    return w ? stages_finish(set, call, w, err) : NULL;
}

void stages_count_result(request_usage *u, const json_t *result)
{
    const json_t *img = json_object_get(result, "image");
    u->megapixels += (double)json_integer_value(json_object_get(img, "width")) *
        (double)json_integer_value(json_object_get(img, "height")) / 1e6;
    const json_t *yolo = json_object_get(result, "yolo");
    const json_t *runs = json_object_get(yolo, "runs");
    if (yolo) u->yolo_runs += json_is_integer(runs) ? json_integer_value(runs) : 1;
    /* A video: every analysed frame counts as an image would. */
    const json_t *vid = json_object_get(result, "video"), *vt = json_object_get(result, "timing_ms");
    double frames = (double)json_integer_value(json_object_get(vid, "frames"));
    u->megapixels += frames * (double)json_integer_value(json_object_get(vid, "width")) * (double)json_integer_value(json_object_get(vid, "height")) / 1e6;
    if (vid && json_object_get(vt, "yolo")) u->yolo_runs += (int64_t)frames;
    if (vid && json_object_get(vt, "ocr")) u->ocr_runs += (int64_t)frames;
    if (json_object_get(result, "ocr")) u->ocr_runs++;
    const json_t *llm = json_object_get(result, "llm");
    if (llm) {
        u->llm_calls++;
        const json_t *use = json_object_get(llm, "usage");
        u->llm_prompt_tokens += json_integer_value(json_object_get(use, "prompt_tokens"));
        u->llm_completion_tokens += json_integer_value(json_object_get(use, "completion_tokens"));
    }
}
