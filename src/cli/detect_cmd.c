#include "cli/detect_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/run_files.h"
#include "config/config.h"
#include "image/decode.h"
#include "pipeline/stages.h"

static const char *const OPTION_FLAGS[] = {"confidence", "iou", "max-detections", "classes", "mask-format", NULL};

static void usage(FILE *out)
{
    fprintf(out, "usage: sightd detect FILE... [--confidence C] [--iou I] [--max-detections N] [--classes A,B]\n"
                 "                     [--mask-format polygon|rle] [--dump-raw DIR] [--slice[=JSON]] [--max-tiles N]\n"
                 "                     [--fps F] [--max-frames N] [--track] [--max-video-seconds S]\n"
                 "                     [--model PATH] [--labels FILE] [--model-layout L] [--ort-threads N] ...\n"
                 "Prints one NDJSON line per image or video, shaped like the stream's done/error lines;\n"
                 "a video's frame lines come first (--fps: frames analysed per second, default 5, 0 = all;\n"
                 "--track: ByteTrack ids on the detections).\n"
                 "--dump-raw DIR also writes each image's raw model outputs there (.npy, for reference checks).\n"
                 "--slice runs sliced detection (tiles of the model's input, 20%% overlap, merged) on images over twice\n"
                 "the input; --slice='{\"size\":640,\"overlap\":0.2,\"full\":true,\"merge\":\"nmm\"}' always slices.\n");
}

/* Splits argv into images, per-request options and server options. */
static int split_args(int argc, char **argv, sight_config *cfg, json_t *params, char ***images, int *nimages,
                      const char **dump_dir, const char **slice, video_meta *video)
{
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    *images = calloc((size_t)argc + 1, sizeof **images);
    if (!rest || !*images) {
        free(rest);
        return -1;
    }
    int nrest = 0;
    *nimages = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(rest);
            return 1;
        }
        if (strncmp(a, "--", 2)) {
            (*images)[(*nimages)++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--slice") || !strncmp(a, "--slice=", 8)) {
            *slice = a[7] ? a + 8 : "true";
            continue;
        }
        if (!strcmp(a, "--dump-raw") && i + 1 < argc) {
            *dump_dir = argv[++i];
            continue;
        }
        if (!strcmp(a, "--track")) {
            video->track = true;
            continue;
        }
        if (!strcmp(a, "--fps") && i + 1 < argc) {
            /* The metadata key's own checks (0..240). */
            char *end;
            double x = strtod(argv[++i], &end);
            json_t *v = json_real(x);
            char msg[128];
            int vr = *end ? -1 : video_meta_key(video, "fps", v, msg, sizeof msg);
            json_decref(v);
            if (vr < 0) {
                fprintf(stderr, "sightd detect: --fps must be a number from 0 (every frame) to 240\n");
                free(rest);
                return -1;
            }
            continue;
        }
        int opt = -1;
        for (int k = 0; OPTION_FLAGS[k]; k++)
            if (!strcmp(a + 2, OPTION_FLAGS[k])) opt = k;
        if (opt >= 0 && i + 1 < argc) {
            /* Same keys as the HTTP form fields (max-detections -> max_detections). */
            char key[32];
            snprintf(key, sizeof key, "%s", OPTION_FLAGS[opt]);
            for (char *p = key; *p; p++)
                if (*p == '-') *p = '_';
            json_object_set_new(params, key, json_string(argv[++i]));
            continue;
        }
        rest[nrest++] = argv[i];
        if (!strchr(a, '=') && i + 1 < argc && strcmp(a, "--create-first-key")) rest[nrest++] = argv[++i];
    }
    int rc = config_parse(cfg, nrest, rest, 0, "detect");
    free(rest);
    return rc < 0 ? -1 : rc;
}

int detect_command(int argc, char **argv)
{
    sight_config cfg;
    config_defaults(&cfg);
    json_t *params = json_object();
    char **images = NULL;
    int nimages = 0;
    const char *dump_dir = NULL, *slice_arg = NULL;
    video_meta video = {0};
    int rc = split_args(argc, argv, &cfg, params, &images, &nimages, &dump_dir, &slice_arg, &video);
    slice_opts slice = {0};
    char smsg[160];
    json_t *sv = slice_arg ? json_string(slice_arg) : NULL;
    if (rc == 0 && sv && slice_opts_parse(sv, &slice, smsg, sizeof smsg)) {
        fprintf(stderr, "sightd detect: --slice: %s\n", smsg);
        rc = -1;
    }
    json_decref(sv);
    if (rc != 0 || nimages == 0) {
        if (rc == 0) usage(stderr);
        free(images);
        json_decref(params);
        return rc > 0 ? 0 : 2;
    }
    detector *det = cli_open_detector(&cfg, "detect");
    if (!det) {
        free(images);
        json_decref(params);
        return 1;
    }
    if (dump_dir && detector_set_raw_dump(det, dump_dir)) {
        fprintf(stderr, "sightd detect: out of memory\n");
        detector_close(det);
        free(images);
        json_decref(params);
        return 1;
    }
    sight_error err;
    const stage *st = detector_stage(det);
    if (st->validate(st->self, params, &err)) {
        fprintf(stderr, "sightd detect: %s\n", err.message);
        detector_close(det);
        free(images);
        json_decref(params);
        return 2;
    }
    image_set_icc_to_srgb(cfg.icc_to_srgb); /* as sightd serve: --icc-to-srgb, SIGHT_ICC_TO_SRGB */
    stage_set set = {.yolo = st, .llm = NULL, .max_pixels = cfg.max_pixels, .max_pixels_heif = cfg.max_pixels_heif, .max_tiles = cfg.max_tiles, .max_video_seconds = cfg.max_video_seconds, .max_frames = cfg.max_frames};
    int failures = cli_run_files(&set, params, images, nimages, true, false, slice_arg ? &slice : NULL, &video);
    detector_close(det);
    free(images);
    json_decref(params);
    return failures ? 1 : 0;
}
