#include "ort/ort_env.h"

#include <pthread.h>
#include <stdio.h>

#include "util/clock.h"
#include "util/log.h"

static OrtEnv *g_env;
static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;
static const OrtApi *g_api;

/* ONNX Runtime's own messages go through our log, so that they share its
 * format (--log-format json: one object a line) instead of ORT's. */
static void ort_log(void *param, OrtLoggingLevel severity, const char *category, const char *logid,
                    const char *code_location, const char *message)
{
    (void)param;
    (void)category;
    (void)logid;
    (void)code_location;
    log_msg(severity >= ORT_LOGGING_LEVEL_ERROR ? LOG_ERROR : LOG_WARN, "ONNX Runtime: %s", message);
}

static void env_init(void)
{
    g_api = OrtGetApiBase()->GetApi(ORT_API_VERSION);
    if (!g_api) return;
    OrtStatus *st = g_api->CreateEnvWithCustomLogger(ort_log, NULL, ORT_LOGGING_LEVEL_ERROR, "sight", &g_env);
    if (st) {
        log_error("ONNX Runtime: %s", g_api->GetErrorMessage(st));
        g_api->ReleaseStatus(st);
        g_env = NULL;
    }
}

OrtEnv *ort_env_get(const OrtApi **api)
{
    pthread_once(&g_env_once, env_init);
    *api = g_api;
    return g_env;
}

int ort_status_fail(const OrtApi *api, OrtStatus *st, char *err, size_t len, const char *what)
{
    if (!st) return 0;
    snprintf(err, len, "%s: %s", what, api->GetErrorMessage(st));
    api->ReleaseStatus(st);
    return -1;
}

OrtSessionOptions *ort_session_options(const OrtApi *api, int intra_threads, char *err, size_t len)
{
    OrtSessionOptions *so = NULL;
    if (ort_status_fail(api, api->CreateSessionOptions(&so), err, len, "session options")) return NULL;
    if (ort_status_fail(api, api->SetIntraOpNumThreads(so, intra_threads), err, len, "intra-op threads") ||
        ort_status_fail(api, api->SetInterOpNumThreads(so, 1), err, len, "inter-op threads") ||
        ort_status_fail(api, api->SetSessionGraphOptimizationLevel(so, ORT_ENABLE_ALL), err, len, "graph optimisation") ||
        ort_status_fail(api, api->AddSessionConfigEntry(so, "session.intra_op.allow_spinning", "0"), err, len, "spinning")) {
        api->ReleaseSessionOptions(so);
        return NULL;
    }
    return so;
}

int ort_run_float(const OrtApi *api, OrtSession *sess, OrtMemoryInfo *mem, gate *runs, const char *in_name,
                  const char *out_name, float *input, const int64_t shape[4], OrtValue **out, double *run_ms,
                  char *err, size_t len)
{
    return ort_run_float_n(api, sess, mem, runs, in_name, &out_name, 1, input, shape, out, run_ms, err, len);
}

int ort_run_float_n(const OrtApi *api, OrtSession *sess, OrtMemoryInfo *mem, gate *runs, const char *in_name,
                    const char *const *out_names, size_t n_out, float *input, const int64_t shape[4], OrtValue **outs,
                    double *run_ms, char *err, size_t len)
{
    OrtValue *in = NULL;
    for (size_t i = 0; i < n_out; i++) outs[i] = NULL;
    size_t bytes = (size_t)shape[0] * shape[1] * shape[2] * shape[3] * sizeof(float);
    if (ort_status_fail(api, api->CreateTensorWithDataAsOrtValue(mem, input, bytes, shape, 4, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in),
                        err, len, "input tensor"))
        return -1;
    gate_enter(runs, NULL);
    const char *in_names[] = {in_name};
    double t = clock_ms();
    OrtStatus *st = api->Run(sess, NULL, in_names, (const OrtValue *const *)&in, 1, out_names, n_out, outs);
    if (run_ms) *run_ms = clock_ms() - t;
    gate_leave(runs);
    api->ReleaseValue(in);
    return ort_status_fail(api, st, err, len, "inference");
}

int ort_float_output(const OrtApi *api, OrtValue *v, size_t max_rank, int64_t *shape, size_t *nd, const float **data,
                     char *err, size_t len)
{
    OrtTensorTypeAndShapeInfo *info = NULL;
    ONNXTensorElementDataType et = 0;
    int rc = ort_status_fail(api, api->GetTensorTypeAndShape(v, &info), err, len, "output shape");
    if (rc == 0) rc = ort_status_fail(api, api->GetDimensionsCount(info, nd), err, len, "output rank");
    if (rc == 0 && *nd > max_rank) {
        snprintf(err, len, "output rank %zu is unexpected", *nd);
        rc = -1;
    }
    if (rc == 0) rc = ort_status_fail(api, api->GetDimensions(info, shape, *nd), err, len, "output shape");
    if (rc == 0) rc = ort_status_fail(api, api->GetTensorElementType(info, &et), err, len, "output type");
    if (info) api->ReleaseTensorTypeAndShapeInfo(info);
    if (rc == 0 && et != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
        snprintf(err, len, "output is not float32");
        rc = -1;
    }
    if (rc == 0) rc = ort_status_fail(api, api->GetTensorMutableData(v, (void **)data), err, len, "output data");
    return rc;
}
