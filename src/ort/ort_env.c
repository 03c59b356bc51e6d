#include "ort/ort_env.h"

#include <pthread.h>
#include <stdio.h>

#include "util/log.h"

static OrtEnv *g_env;
static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;
static const OrtApi *g_api;

static void env_init(void)
{
    g_api = OrtGetApiBase()->GetApi(ORT_API_VERSION);
    if (!g_api) return;
    OrtStatus *st = g_api->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "sight", &g_env);
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
