#include <stdlib.h>

#include "check.h"
#include "metrics/metrics.h"

int main(void)
{
    metrics_request(METRIC_ROUTE_PREDICT_V1, 200);
    metrics_request(METRIC_ROUTE_PREDICT_V1, 200);
    metrics_request(METRIC_ROUTE_PREDICT_V1, 401);
    metrics_file(FILE_DONE);
    metrics_file(FILE_CANCELLED);
    metrics_stage_seconds(STAGE_DECODE, 0.003);
    metrics_stage_seconds(STAGE_DECODE, 0.2);
    metrics_inflight_add(2);
    metrics_inflight_add(-1);
    CHECK_EQ_INT(metrics_request_count(METRIC_ROUTE_PREDICT_V1, 200), 2);
    CHECK_EQ_INT(metrics_file_count(FILE_CANCELLED), 1);
    CHECK_EQ_INT(metrics_inflight(), 1);
    size_t len;
    char *t = metrics_render(&len);
    CHECK(t != NULL);
    CHECK_EQ_INT(strlen(t), len);
    CHECK(strstr(t, "sight_http_requests_total{route=\"predict_v1\",status=\"200\"} 2\n") != NULL);
    CHECK(strstr(t, "sight_http_requests_total{route=\"predict_v1\",status=\"401\"} 1\n") != NULL);
    CHECK(strstr(t, "sight_files_total{outcome=\"cancelled\"} 1\n") != NULL);
    /* Cumulative buckets: 3 ms is in le=0.005 and above; 200 ms from le=0.25. */
    CHECK(strstr(t, "sight_stage_duration_seconds_bucket{stage=\"decode\",le=\"0.005\"} 1\n") != NULL);
    CHECK(strstr(t, "sight_stage_duration_seconds_bucket{stage=\"decode\",le=\"0.1\"} 1\n") != NULL);
    CHECK(strstr(t, "sight_stage_duration_seconds_bucket{stage=\"decode\",le=\"0.25\"} 2\n") != NULL);
    CHECK(strstr(t, "sight_stage_duration_seconds_bucket{stage=\"decode\",le=\"+Inf\"} 2\n") != NULL);
    CHECK(strstr(t, "sight_stage_duration_seconds_count{stage=\"decode\"} 2\n") != NULL);
    CHECK(strstr(t, "sight_requests_in_flight 1\n") != NULL);
    free(t);
    return check_report("metrics");
}
