#ifndef SIGHT_CLI_RUN_FILES_H
#define SIGHT_CLI_RUN_FILES_H
#include <jansson.h>
#include <stdbool.h>

#include "config/config.h"
#include "detect/detector.h"
#include "pipeline/stages.h"

/* Runs the stages of set on each image or video file, as the server does on
 * an upload (is_yolo / is_ocr for every file, params as the request's
 * options, video (may be NULL) as each file's video metadata), and prints one
 * NDJSON line per file, shaped like the stream's done and error lines, after
 * a video's frame lines. slice (NULL: none) slices detection, its tiles on
 * one thread per core. Returns how many files failed. */
int cli_run_files(const stage_set *set, const json_t *params, char **images, int nimages, bool is_yolo, bool is_ocr,
                  const slice_opts *slice, const video_meta *video);
/* Sets the log level and opens the configured detection model; when it cannot,
 * says why on stderr ("sightd <command>: ...") and returns NULL. */
detector *cli_open_detector(const sight_config *cfg, const char *command);
#endif
