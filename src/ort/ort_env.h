/* The one ONNX Runtime environment of the process, shared by the detector and
 * OCR: ORT allows a single OrtEnv per process, made on first use. */
#ifndef SIGHT_ORT_ENV_H
#define SIGHT_ORT_ENV_H

#include <stddef.h>

#include <onnxruntime_c_api.h>

/* Returns the environment (NULL when ORT could not start) and sets *api. */
OrtEnv *ort_env_get(const OrtApi **api);

/* Turns an OrtStatus into "what: message" in err; returns -1 when there was an error, 0 for NULL. */
int ort_status_fail(const OrtApi *api, OrtStatus *st, char *err, size_t len, const char *what);

#endif
