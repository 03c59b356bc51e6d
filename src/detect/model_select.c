#include "detect/model_select.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int layout_hint(const char *name)
{
    if (!strcmp(name, "yolov8")) return YOLO_LAYOUT_V8;
    if (!strcmp(name, "end2end")) return YOLO_LAYOUT_E2E;
    if (!strcmp(name, "yolov5")) return YOLO_LAYOUT_V5;
    if (!strcmp(name, "yolox")) return YOLO_LAYOUT_YOLOX;
    return -1;
}

detector *model_select_open(const sight_config *cfg, int *fatal, char *msg, size_t msg_len)
{
    char path[2048];
    bool explicit_model = cfg->model_path[0] != 0;
    if (explicit_model) snprintf(path, sizeof path, "%s", cfg->model_path);
    else snprintf(path, sizeof path, "%s/%s", cfg->models_dir, SIGHT_DEFAULT_MODEL);
    *fatal = 0;
    if (!explicit_model && access(path, F_OK) != 0) {
        snprintf(msg, msg_len,
                 "no detection model: %s not found, so is_yolo requests get yolo_unavailable. "
                 "Put a YOLO ONNX export there, or pass --model PATH (see README, \"Models\")",
                 path);
        return NULL;
    }
    detector_config dc = {.model_path = path, .labels_path = cfg->labels_path[0] ? cfg->labels_path : NULL, .intra_threads = cfg->ort_threads, .concurrency = cfg->ort_concurrency, .layout_hint = layout_hint(cfg->model_layout)};
    char err[512];
    detector *d = detector_open(&dc, err, sizeof err);
    if (!d) {
        *fatal = 1;
        snprintf(msg, msg_len, "cannot use detection model %s: %s", path, err);
        return NULL;
    }
    detector_describe(d, msg, msg_len);
    return d;
}
