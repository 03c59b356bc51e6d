#include "cli/ocr_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/run_files.h"
#include "config/config.h"
#include "image/decode.h"
#include "ocr/ocr.h"
#include "pipeline/stages.h"
#include "util/log.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: sightd ocr IMAGE... [--ocr-dir DIR] [--ort-threads N] [--max-pixels N] [--log-level L]\n"
                 "Prints one NDJSON line per image, shaped like the stream's done/error lines.\n");
}

int ocr_command(int argc, char **argv)
{
    sight_config cfg;
    config_defaults(&cfg);
    char **rest = calloc((size_t)argc + 1, sizeof *rest), **images = calloc((size_t)argc + 1, sizeof *images);
    int nrest = 0, nimages = 0;
    if (!rest || !images) {
        free(rest);
        free(images);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(rest);
            free(images);
            return 0;
        }
        if (strncmp(a, "--", 2)) {
            images[nimages++] = argv[i];
            continue;
        }
        rest[nrest++] = argv[i];
        if (!strchr(a, '=') && i + 1 < argc && strcmp(a, "--create-first-key")) rest[nrest++] = argv[++i];
    }
    int rc = config_parse(&cfg, nrest, rest, 0, "ocr");
    free(rest);
    if (rc != 0 || nimages == 0) {
        if (rc == 0) usage(stderr);
        free(images);
        return rc > 0 ? 0 : 2;
    }
    log_set_level(cfg.log_level);
    char msg[1024];
    if (!ocr_models_present(cfg.ocr_dir, msg, sizeof msg)) {
        fprintf(stderr, "sightd ocr: no OCR models in %s (missing %s); run scripts/bootstrap or pass --ocr-dir\n",
                cfg.ocr_dir, msg);
        free(images);
        return 1;
    }
    ocr_engine *eng = ocr_open(cfg.ocr_dir, cfg.ort_threads, msg, sizeof msg);
    if (!eng) {
        fprintf(stderr, "sightd ocr: %s\n", msg);
        free(images);
        return 1;
    }
    image_set_icc_to_srgb(cfg.icc_to_srgb); /* as sightd serve */
    stage_set set = {.ocr = ocr_stage(eng), .max_pixels = cfg.max_pixels, .max_pixels_heif = cfg.max_pixels_heif};
    int failures = cli_run_files(&set, NULL, images, nimages, false, true, NULL, NULL);
    ocr_close(eng);
    free(images);
    return failures ? 1 : 0;
}
