/* The route table (http/routes.c): which entry a URL finds, and which
 * methods an entry takes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http/routes.h"

static metrics_route metric_of(const char *url) { return route_find(url)->metric; }

int main(void)
{
    /* The prediction routes, exactly: a longer path is another route or none. */
    CHECK_EQ_INT(metric_of("/api/v1/inference/predict/stream"), METRIC_ROUTE_PREDICT_V1);
    CHECK_EQ_INT(metric_of("/api/v1/inference/predict/stream/v2"), METRIC_ROUTE_PREDICT_V2);
    CHECK_EQ_INT(metric_of("/api/v1/inference/predict/batch"), METRIC_ROUTE_BATCH_V1);
    CHECK_EQ_INT(metric_of("/api/v1/inference/predict/batch/v2"), METRIC_ROUTE_BATCH_V2);
    CHECK(route_find("/api/v1/inference/predict/stream/v3")->handler == NULL);
    CHECK(route_find("/api/v1/inference/predict/stream")->flags & ROUTE_PREDICT);
    CHECK(route_find("/api/v1/inference/predict/stream/v2")->flags & ROUTE_JSON);
    CHECK(route_find("/api/v1/inference/predict/stream")->batch_answer == NULL);
    CHECK(route_find("/api/v1/inference/predict/batch")->batch_answer != NULL);

    /* DeepStack's: the detection path exactly, a custom model by prefix, in its own dialect. */
    const route *ds = route_find("/v1/vision/detection");
    const route *custom = route_find("/v1/vision/custom/yolo11n");
    CHECK_EQ_INT(ds->metric, METRIC_ROUTE_DEEPSTACK);
    CHECK_EQ_INT(custom->metric, METRIC_ROUTE_DEEPSTACK);
    CHECK_EQ_INT(custom->match, MATCH_PREFIX);
    CHECK(ds->error_body == custom->error_body);
    CHECK(ds->error_body != route_find("/healthz")->error_body);
    CHECK(route_find("/v1/vision/detection/x")->handler == NULL);
    unsigned status = 422;
    size_t len;
    char *body = ds->error_body(&status, "invalid_options", "bad", &len);
    CHECK_EQ_INT(status, 400); /* DeepStack's clients know no 422 */
    CHECK(body && strstr(body, "\"success\":false") != NULL);
    free(body);
    status = 422;
    body = route_find("/healthz")->error_body(&status, "invalid_options", "bad", &len);
    CHECK_EQ_INT(status, 422);
    CHECK(body && strstr(body, "\"detail\"") && strstr(body, "invalid_options"));
    free(body);

    /* The jobs tree: the path itself and what is below it, not a longer name. */
    CHECK(route_find("/api/v1/jobs")->handler != NULL);
    CHECK(route_find("/api/v1/jobs/abc/events") == route_find("/api/v1/jobs"));
    CHECK(route_find("/api/v1/jobsX")->handler == NULL);
    CHECK_EQ_INT(route_find("/api/v1/jobs")->key, KEY_OWN);

    /* GET routes; the usage and models routes' key is checked first. */
    CHECK_EQ_INT(metric_of("/healthz"), METRIC_ROUTE_HEALTHZ);
    CHECK_EQ_INT(metric_of("/readyz"), METRIC_ROUTE_READYZ);
    CHECK_EQ_INT(metric_of("/metrics"), METRIC_ROUTE_METRICS);
    CHECK_EQ_INT(route_find("/api/v1/usage")->key, KEY_FIRST);
    CHECK_EQ_INT(route_find("/api/v1/models")->key, KEY_FIRST);
    CHECK_EQ_INT(route_find("/healthz")->key, KEY_NONE);
    CHECK_EQ_INT(metric_of("/"), METRIC_ROUTE_WEB);
    CHECK_EQ_INT(metric_of("/app.js"), METRIC_ROUTE_WEB);

    /* Anything else: the not-found entry (no handler), never NULL. */
    CHECK(route_find("/nope")->handler == NULL);
    CHECK(route_find("")->handler == NULL);
    CHECK_EQ_INT(metric_of("/nope"), METRIC_ROUTE_OTHER);

    /* Methods: whole tokens of the list only. */
    const route *v1 = route_find("/api/v1/inference/predict/stream");
    const route *hz = route_find("/healthz");
    CHECK(route_allows(v1, "POST"));
    CHECK(!route_allows(v1, "GET"));
    CHECK(!route_allows(v1, "POS"));
    CHECK(!route_allows(v1, "POSTX"));
    CHECK(!route_allows(v1, ""));
    CHECK(route_allows(hz, "GET"));
    CHECK(route_allows(hz, "HEAD"));
    CHECK(!route_allows(hz, "EAD"));
    CHECK(!route_allows(hz, "GE"));
    CHECK(!route_allows(hz, "POST"));
    CHECK(!route_allows(hz, "get"));
    CHECK_STR(v1->allow, "POST");
    CHECK_STR(hz->allow, "GET, HEAD");
    CHECK(route_allows(route_find("/api/v1/jobs/x"), "DELETE")); /* the handler decides */
    return check_report("routes");
}
