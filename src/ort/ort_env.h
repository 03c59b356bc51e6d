/* The one ONNX Runtime environment of the process, shared by the detector and
 * OCR: ORT allows a single OrtEnv per process, made on first use. */
#ifndef SIGHT_ORT_ENV_H
#define SIGHT_ORT_ENV_H

#include <stddef.h>
#include <stdint.h>

#include <onnxruntime_c_api.h>

#include "util/gate.h"

/* Returns the environment (NULL when ORT could not start) and sets *api. */
OrtEnv *ort_env_get(const OrtApi **api);

/* Turns an OrtStatus into "what: message" in err; returns -1 when there was an error, 0 for NULL. */
int ort_status_fail(const OrtApi *api, OrtStatus *st, char *err, size_t len, const char *what);

/* Session options as every model here runs: intra_threads threads per Run,
 * one inter-op thread, every graph optimisation, and no spinning (idle
 * spinning threads take the cores that concurrent Runs and the decode workers
 * need; measured to cost throughput, see make bench). NULL with err set on failure. */
OrtSessionOptions *ort_session_options(const OrtApi *api, int intra_threads, char *err, size_t len);

/* Runs sess once on a float tensor of the given 4-d shape, holding a slot of
 * runs (at most its count of Runs at once). *out gets the output (the caller
 * releases it); *run_ms (optional) the time of the Run itself, without the
 * wait for a slot. Returns -1 with err set on failure. */
int ort_run_float(const OrtApi *api, OrtSession *sess, OrtMemoryInfo *mem, gate *runs, const char *in_name,
                  const char *out_name, float *input, const int64_t shape[4], OrtValue **out, double *run_ms,
                  char *err, size_t len);

/* The same with n_out outputs (outs[0..n_out), all released by the caller). */
int ort_run_float_n(const OrtApi *api, OrtSession *sess, OrtMemoryInfo *mem, gate *runs, const char *in_name,
                    const char *const *out_names, size_t n_out, float *input, const int64_t shape[4], OrtValue **outs,
                    double *run_ms, char *err, size_t len);

/* Shape (at most max_rank dimensions), rank and data of a float32 output. */
int ort_float_output(const OrtApi *api, OrtValue *v, size_t max_rank, int64_t *shape, size_t *nd, const float **data,
                     char *err, size_t len);

#endif
