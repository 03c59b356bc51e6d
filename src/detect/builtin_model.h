/* The detection model built into sightd: YOLOX-Nano (Apache-2.0, see
 * share/models/README.md), embedded at build time with its COCO class names,
 * so the binary detects with no file beside it. */
#ifndef SIGHT_DETECT_BUILTIN_MODEL_H
#define SIGHT_DETECT_BUILTIN_MODEL_H

#include <stddef.h>

#define BUILTIN_MODEL_NAME "yolox-nano"

typedef struct {
    const char *name; /* BUILTIN_MODEL_NAME */
    const void *data; /* the ONNX file */
    size_t size;
    const char *names; /* class names, one per line, NUL-terminated */
} builtin_model;

void builtin_model_get(builtin_model *out);

#endif
