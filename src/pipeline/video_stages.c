#include "pipeline/video_stages.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "pipeline/track_json.h"
#include "pipeline/video_sheet.h"
#include "util/clock.h"
#include "video/video_decode.h"

#define DEFAULT_MAX_SECONDS 600
#define DEFAULT_MAX_FRAMES 3000

bool video_stages_is_video(const file_job *f) { return f->data && video_sniff(f->data, f->len) != VIDEO_FMT_NONE; }

typedef struct {
    bytetrack *bt;
    json_t *class_names; /* class_id -> class name, for the track list */
    double yolo_s, ocr_s, track_s;
    int64_t frames;
    video_sheet *sheet; /* is_llm: the frames kept for its contact sheet */
} video_run;

/* One stage on a frame; its time adds to *spent (the per-stage totals). */
static int run_one(const stage *st, const char *name, metrics_stage metric, const stage_input *in, json_t *earlier, double *spent, sight_error *err)
{
    double dt;
    if (stage_run_one(st, name, metric, in, earlier, &dt, err) != 0) return -1;
    *spent += dt;
    return 0;
}

/* One decoded frame through the stages; its line goes out through emit. */
static int analyse(const stage_set *set, const stage_call *call, video_run *vr, const image_t *img, int64_t k, int64_t ms, sight_error *err)
{
    const file_job *f = call->file;
    json_t *earlier = json_object();
    /* A frame is never sliced (a video is analysed at the model's input size). */
    stage_input in = {.query = call->query, .params = call->params, .image = img, .earlier = earlier, .model = f->model, .cancelled = call->cancelled};
    int rc = 0;
    if (f->is_yolo) rc = run_one(set->yolo, "yolo", STAGE_YOLO, &in, earlier, &vr->yolo_s, err);
    if (rc == 0 && f->is_ocr) rc = run_one(set->ocr, "ocr", STAGE_OCR, &in, earlier, &vr->ocr_s, err);
    if (rc == 0 && vr->bt) rc = track_json_update(vr->bt, json_object_get(earlier, "yolo"), ms, vr->class_names, &vr->track_s, err);
    if (rc != 0) {
        json_decref(earlier);
        return -1;
    }
    if (rc == 0 && vr->sheet && video_sheet_wants(vr->sheet, ms)) {
        /* Grounding as for an image: detection runs on the kept frames even
         * when the client did not ask for it (not shown in the frame line). */
        json_t *g = json_copy(earlier);
        if (g && !json_object_get(g, "yolo") && set->yolo && set->llm && set->llm->wants_grounding)
            rc = run_one(set->yolo, "yolo", STAGE_YOLO, &in, g, &vr->yolo_s, err);
        if (rc == 0 && (!g || video_sheet_add(vr->sheet, img, ms, g) != 0)) {
            sight_error_set(err, "out_of_memory", "out of memory");
            rc = -1;
        }
        json_decref(g);
        if (rc != 0) {
            json_decref(earlier);
            return -1;
        }
    }
    vr->frames++;
    json_t *ev = json_pack("{s:s,s:I,s:I,s:o}", "status", "frame", "frame", (json_int_t)k, "time_ms", (json_int_t)ms, "result", earlier);
    if (call->emit) call->emit(call->emit_ctx, ev);
    else json_decref(ev);
    return 0;
}

static void limits_for(const stage_set *set, const stage_call *call, video_limits *lim)
{
    const file_job *f = call->file;
    int64_t cap = set->max_frames > 0 ? set->max_frames : DEFAULT_MAX_FRAMES;
    *lim = (video_limits){.fps = f->video.fps_given ? f->video.fps : VIDEO_DEFAULT_FPS,
                          .max_frames = f->video.max_frames > 0 && f->video.max_frames < cap ? f->video.max_frames : cap,
                          .max_seconds = set->max_video_seconds > 0 ? set->max_video_seconds : DEFAULT_MAX_SECONDS,
                          .max_pixels = (uint64_t)set->max_pixels,
                          .cancelled = call->cancelled};
    /* Detection alone works from a frame scaled to its input (boxes still
     * come back in the frame's own pixels); OCR wants every pixel. */
    if (f->is_yolo && !f->is_ocr && set->yolo && set->yolo->min_width > 0 && set->yolo->min_height > 0) {
        lim->fit_w = set->yolo->min_width;
        lim->fit_h = set->yolo->min_height;
    }
}

/* The part of the video that frames will come from: its duration, or less
 * when max_frames stops it earlier (0 when unknown). */
static int64_t analysed_span(const video_info *vi, const video_limits *lim)
{
    int64_t span = vi->duration_ms;
    double rate = lim->fps > 0 ? lim->fps : vi->fps;
    if (lim->fps > 0 && vi->fps > 0 && vi->fps < rate) rate = vi->fps;
    if (lim->max_frames > 0 && rate > 0) {
        int64_t cap = (int64_t)((double)lim->max_frames * 1000.0 / rate);
        if (span <= 0 || cap < span) span = cap;
    }
    return span;
}

/* A cell is at most half the side the llm stage sends (so the 2x2 sheet goes
 * unscaled); the local analyser reads no pixels (min_width 1): 512. */
static int sheet_cell_side(const stage *llm) { return llm && llm->min_width >= 64 ? llm->min_width / 2 : 512; }

/* is_llm on a video: the llm stage runs once, on the contact sheet, here on
 * the CPU worker that ran the video rather than on the pipeline's llm threads:
 * the video job holds its worker to the end anyway, and handing over would
 * mean keeping its whole state (tracks, timing) alive across queues. */
static int ask_llm(const stage_set *set, const stage_call *call, const video_sheet *sheet, json_t *result, json_t *timing, sight_error *err)
{
    if (call->file->llm_refused) {
        /* As for an image: the other stages ran; only the provider call is refused. */
        sight_error_set(err, "llm_quota_exceeded", "%s", "this API key's LLM-token quota is spent for this period");
        return -1;
    }
    image_t img;
    json_t *ground = NULL;
    char *context = NULL;
    if (video_sheet_compose(sheet, json_object_get(result, "tracks"), &img, &ground, &context) != 0) {
        sight_error_set(err, "corrupt_video", "%s", "no frame of the video could be kept for is_llm (none decoded, or out of memory)");
        return -1;
    }
    stage_input in = {.query = call->query, .params = call->params, .image = &img, .earlier = ground, .model = call->file->model, .cancelled = call->cancelled, .emit = call->emit, .emit_ctx = call->emit_ctx, .context = context};
    json_t *out = json_object();
    double spent = 0;
    int rc = run_one(set->llm, "llm", STAGE_LLM, &in, out, &spent, err);
    if (rc == 0) {
        json_object_set(result, "llm", json_object_get(out, "llm"));
        json_object_set_new(timing, "llm", json_real(spent * 1000.0));
    }
    json_decref(out);
    json_decref(ground);
    free(context);
    image_free(&img);
    return rc;
}

json_t *video_stages_run(const stage_set *set, const stage_call *call, sight_error *err)
{
    const file_job *f = call->file;
    if (f->is_llm && !set->llm) {
        sight_error_set(err, "llm_unavailable", "%s", "llm was requested but this server has no such stage configured");
        return NULL;
    }
    double t0 = clock_s();
    video_limits lim;
    limits_for(set, call, &lim);
    video_reader *v = video_open(f->data, f->len, &lim, err);
    if (!v) return NULL;
    video_run vr = {.class_names = json_object()};
    if (f->is_llm && !(vr.sheet = video_sheet_new(analysed_span(video_reader_info(v), &lim), sheet_cell_side(set->llm)))) {
        sight_error_set(err, "out_of_memory", "out of memory");
        video_close(v);
        json_decref(vr.class_names);
        return NULL;
    }
    if (f->video.track && f->is_yolo && !(vr.bt = bytetrack_new(NULL))) {
        sight_error_set(err, "out_of_memory", "out of memory");
        video_close(v);
        json_decref(vr.class_names);
        return NULL;
    }
    image_t img;
    int64_t k, ms;
    int rc;
    int w = 0, h = 0;
    while ((rc = video_next(v, &img, &k, &ms, err)) == 1) {
        w = img.orig_width;
        h = img.orig_height;
        rc = analyse(set, call, &vr, &img, k, ms, err);
        image_free(&img);
        if (rc != 0) break;
    }
    json_t *result = NULL;
    if (rc == 0) {
        const video_info *vi = video_reader_info(v);
        double dec = video_decode_seconds(v);
        metrics_stage_seconds(STAGE_DECODE, dec);
        json_t *video = json_pack("{s:I,s:I,s:I,s:f,s:i,s:i,s:s}", "frames", (json_int_t)vr.frames, "decoded_frames", (json_int_t)video_decoded_frames(v),
                                  "duration_ms", (json_int_t)vi->duration_ms, "fps", round(vi->fps * 1000) / 1000, "width", vi->width > 0 ? vi->width : w,
                                  "height", vi->height > 0 ? vi->height : h, "codec", vi->codec ? vi->codec : "unknown");
        json_t *timing = json_pack("{s:f}", "decode", dec * 1000.0);
        if (f->is_yolo) json_object_set_new(timing, "yolo", json_real(vr.yolo_s * 1000.0));
        if (f->is_ocr) json_object_set_new(timing, "ocr", json_real(vr.ocr_s * 1000.0));
        if (vr.bt) json_object_set_new(timing, "track", json_real(vr.track_s * 1000.0));
        result = json_pack("{s:o}", "video", video);
        if (vr.bt) json_object_set_new(result, "tracks", track_json_list(vr.bt, vr.class_names));
        if (vr.sheet && ask_llm(set, call, vr.sheet, result, timing, err) != 0) {
            json_decref(result);
            json_decref(timing);
            result = NULL;
        } else {
            json_object_set_new(timing, "total", json_real((clock_s() - t0) * 1000.0));
            json_object_set_new(result, "timing_ms", timing);
        }
    }
    video_close(v);
    video_sheet_free(vr.sheet);
    bytetrack_free(vr.bt);
    json_decref(vr.class_names);
    return result;
}
