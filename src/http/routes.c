/* The route table. Order matters only where paths overlap: the first entry
 * that matches wins, and the not-found entry is last. */
#include "http/routes.h"

#include <string.h>

#include "http/deepstack.h"
#include "http/http_internal.h"
#include "http/static_files.h"
#include "util/json_out.h"

/* Sight's error body: {"detail":{"code","message"}}. */
static char *sight_error_body(unsigned *status, const char *code, const char *message, size_t *len)
{
    (void)status;
    return json_error_body(code, message, len);
}

#define PREDICT_KEY_HINT "the api_key form field, Authorization: Bearer <key> or X-API-Key"
#define GET_KEY_HINT "Authorization: Bearer <key>, X-API-Key or ?api_key="
#define JOBS_KEY_HINT "Authorization: Bearer <key>, X-API-Key or api_key"
#define GET "GET, HEAD"
#define PRED (ROUTE_BODY | ROUTE_PREDICT)

static const route ROUTES[] = {
    {"/api/v1/inference/predict/stream", MATCH_EXACT, "POST", METRIC_ROUTE_PREDICT_V1, predict_handle, PRED, KEY_OWN,
     PREDICT_KEY_HINT, sight_error_body, NULL},
    {"/api/v1/inference/predict/stream/v2", MATCH_EXACT, "POST", METRIC_ROUTE_PREDICT_V2, predict_handle,
     PRED | ROUTE_JSON, KEY_OWN, PREDICT_KEY_HINT, sight_error_body, NULL},
    {"/api/v1/inference/predict/batch", MATCH_EXACT, "POST", METRIC_ROUTE_BATCH_V1, predict_handle, PRED, KEY_OWN,
     PREDICT_KEY_HINT, sight_error_body, predict_batch_answer},
    {"/api/v1/inference/predict/batch/v2", MATCH_EXACT, "POST", METRIC_ROUTE_BATCH_V2, predict_handle,
     PRED | ROUTE_JSON, KEY_OWN, PREDICT_KEY_HINT, sight_error_body, predict_batch_answer},
    {"/healthz", MATCH_EXACT, GET, METRIC_ROUTE_HEALTHZ, healthz_handle, 0, KEY_NONE, NULL, sight_error_body, NULL},
    {"/readyz", MATCH_EXACT, GET, METRIC_ROUTE_READYZ, readyz_handle, 0, KEY_NONE, NULL, sight_error_body, NULL},
    {"/metrics", MATCH_EXACT, GET, METRIC_ROUTE_METRICS, metrics_handle, 0, KEY_NONE, NULL, sight_error_body, NULL},
    {"/api/v1/usage", MATCH_EXACT, GET, METRIC_ROUTE_USAGE, usage_handle, 0, KEY_FIRST, GET_KEY_HINT,
     sight_error_body, NULL},
    /* DeepStack / CodeProject.AI: a batch of one image, in DeepStack's dialect. */
    {"/v1/vision/detection", MATCH_EXACT, "POST", METRIC_ROUTE_DEEPSTACK, predict_handle, PRED | ROUTE_DEEPSTACK,
     KEY_OWN, PREDICT_KEY_HINT, deepstack_error_body, deepstack_answer},
    {DEEPSTACK_CUSTOM, MATCH_PREFIX, "POST", METRIC_ROUTE_DEEPSTACK, predict_handle, PRED | ROUTE_DEEPSTACK, KEY_OWN,
     PREDICT_KEY_HINT, deepstack_error_body, deepstack_answer},
    {"/api/v1/models", MATCH_EXACT, GET, METRIC_ROUTE_MODELS, models_handle, 0, KEY_FIRST, GET_KEY_HINT,
     sight_error_body, NULL},
    /* Its methods vary below the path (jobs_routes.c answers the 405). */
    {"/api/v1/jobs", MATCH_TREE, GET, METRIC_ROUTE_OTHER, jobs_handle, ROUTE_BODY | ROUTE_ANY_METHOD, KEY_OWN,
     JOBS_KEY_HINT, sight_error_body, NULL},
    {"", MATCH_STATIC, GET, METRIC_ROUTE_WEB, static_handle, 0, KEY_NONE, NULL, sight_error_body, NULL},
    {"", MATCH_ANY, GET, METRIC_ROUTE_OTHER, NULL, 0, KEY_NONE, NULL, sight_error_body, NULL},
};

static bool matches(const route *r, const char *url)
{
    size_t n = strlen(r->path);
    switch (r->match) {
    case MATCH_EXACT: return !strcmp(url, r->path);
    case MATCH_PREFIX: return !strncmp(url, r->path, n);
    case MATCH_TREE: return !strncmp(url, r->path, n) && (url[n] == '\0' || url[n] == '/');
    case MATCH_STATIC: return static_file_find(url) != NULL;
    case MATCH_ANY: return true;
    }
    return false;
}

const route *route_find(const char *url)
{
    const route *r = ROUTES;
    while (!matches(r, url)) r++;
    return r;
}

bool route_allows(const route *r, const char *method)
{
    if (r->flags & ROUTE_ANY_METHOD) return true;
    size_t n = strlen(method);
    if (!n) return false;
    for (const char *p = r->allow; (p = strstr(p, method)); p += n)
        if ((p == r->allow || p[-1] == ' ') && (p[n] == '\0' || p[n] == ',')) return true;
    return false;
}
