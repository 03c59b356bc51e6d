#include "cli/run_files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "detect/model_select.h"
#include "pipeline/fanout.h"
#include "pipeline/video_stages.h"
#include "util/file_read.h"
#include "util/json_out.h"
#include "util/log.h"

/* A video's frame line: status, index and filename first, as on the stream. */
typedef struct {
    int index;
    const char *filename;
} frame_ctx;

static void print_frame(void *ctx, json_t *event)
{
    frame_ctx *fc = ctx;
    json_t *line = json_pack("{s:s,s:i,s:o}", "status", "frame", "index", fc->index, "filename",
                             json_string_lossy(fc->filename, strlen(fc->filename)));
    const char *k;
    json_t *v;
    json_object_foreach(event, k, v)
        if (strcmp(k, "status")) json_object_set(line, k, v);
    json_decref(event);
    size_t len;
    char *text = json_line(line, &len); /* takes line */
    if (text) fwrite(text, 1, len, stdout);
    free(text);
}

/* stage_parallel_fn without a pipeline: ctx is the thread count. */
static void run_threads(void *ctx, size_t n, void (*fn)(void *arg, size_t i), void *arg)
{
    fanout_run_threads(n, fn, arg, *(const int *)ctx);
}

int cli_run_files(const stage_set *set, const json_t *params, char **images, int nimages, bool is_yolo, bool is_ocr,
                  const slice_opts *slice, const video_meta *video)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cores > 0 ? (int)cores : 1;
    atomic_bool cancelled = false;
    int failures = 0;
    for (int i = 0; i < nimages; i++) {
        sight_error err;
        file_job job = {.filename = images[i], .filename_len = strlen(images[i]), .is_yolo = is_yolo, .is_ocr = is_ocr};
        if (slice) job.slice = *slice;
        if (video) job.video = *video;
        job.data = read_whole_file(images[i], &job.len);
        frame_ctx fc = {i, images[i]};
        stage_call call = {.params = params, .file = &job, .cancelled = &cancelled, .parallel = run_threads, .parallel_ctx = &threads, .emit = print_frame, .emit_ctx = &fc};
        bool is_video = video_stages_is_video(&job);
        json_t *result = !job.data ? NULL : is_video ? video_stages_run(set, &call, &err)
                                                     : stages_run_file(set, &call, &err);
        if (!job.data) sight_error_set(&err, "unreadable_file", "cannot read %s", images[i]);
        json_t *line;
        if (result)
            line = json_pack("{s:s,s:i,s:o,s:o}", "status", "done", "index", i, "filename",
                             json_string_lossy(images[i], strlen(images[i])), "result", result);
        else {
            failures++;
            line = json_pack("{s:s,s:i,s:o,s:{s:s,s:s}}", "status", "error", "index", i, "filename",
                             json_string_lossy(images[i], strlen(images[i])), "error", "code", err.code, "message",
                             err.message);
        }
        size_t len;
        char *text = json_line(line, &len);
        if (text) fwrite(text, 1, len, stdout);
        free(text);
        fflush(stdout);
        free(job.data);
    }
    return failures;
}

detector *cli_open_detector(const sight_config *cfg, const char *command)
{
    log_set_level(cfg->log_level);
    int fatal;
    char msg[1024];
    detector *det = model_select_open(cfg, &fatal, msg, sizeof msg);
    if (!det) fprintf(stderr, "sightd %s: %s\n", command, msg);
    return det;
}
