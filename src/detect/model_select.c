#include "detect/model_select.h"

#include <stdio.h>
#include <string.h>

#include "detect/builtin_model.h"

static int layout_hint(const char *name)
{
    if (!strcmp(name, "yolov8")) return YOLO_LAYOUT_V8;
    if (!strcmp(name, "end2end")) return YOLO_LAYOUT_E2E;
    if (!strcmp(name, "yolov5")) return YOLO_LAYOUT_V5;
    if (!strcmp(name, "yolox")) return YOLO_LAYOUT_YOLOX;
    return -1;
}

const char *model_select_source(const sight_config *cfg)
{
    if (!cfg->model_path[0]) return "built-in";
    return strcmp(cfg->model_path, "none") ? "file" : "none";
}

detector *model_select_open(const sight_config *cfg, int *fatal, char *msg, size_t msg_len)
{
    *fatal = 0;
    const char *src = model_select_source(cfg);
    if (!strcmp(src, "none")) {
        snprintf(msg, msg_len, "detection is off (--model none): is_yolo requests get yolo_unavailable");
        return NULL;
    }
    detector_config dc = {.labels_path = cfg->labels_path[0] ? cfg->labels_path : NULL,
                          .intra_threads = cfg->ort_threads,
                          .concurrency = cfg->ort_concurrency,
                          .layout_hint = layout_hint(cfg->model_layout)};
    builtin_model bm = {0};
    if (!strcmp(src, "built-in")) {
        builtin_model_get(&bm);
        dc.model_data = bm.data;
        dc.model_size = bm.size;
        dc.model_name = bm.name;
        dc.labels_text = bm.names;
        /* The layout is known: no guessing from the output shape. */
        if (dc.layout_hint < 0) dc.layout_hint = YOLO_LAYOUT_YOLOX;
    } else {
        dc.model_path = cfg->model_path;
    }
    char err[512], desc[512];
    detector *d = detector_open(&dc, err, sizeof err);
    if (!d) {
        *fatal = 1;
        if (dc.model_path) snprintf(msg, msg_len, "cannot use detection model %s: %s", cfg->model_path, err);
        else snprintf(msg, msg_len, "cannot use the built-in detection model %s: %s", bm.name, err);
        return NULL;
    }
    detector_describe(d, desc, sizeof desc);
    if (dc.model_path) snprintf(msg, msg_len, "%s (from %s)", desc, cfg->model_path);
    else snprintf(msg, msg_len, "%s (built in; --model PATH serves another, see README \"Models\")", desc);
    return d;
}
