#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "metrics/histogram.h"
#include "metrics/metrics.h"
#include "metrics/process.h"

/* Cumulative buckets: a value goes in the first bucket whose bound is >= it
 * (le is inclusive) and in every later one; _count is the +Inf bucket. */
static void test_histogram_buckets(void)
{
    static const double LE[] = {0.1, 0.5, 1};
    const histogram_bounds b = {LE, 3};
    static histogram h; /* all zeros: ready to use */
    histogram_observe(&h, &b, 0.05);
    histogram_observe(&h, &b, 0.1); /* on a bound: counts in le=0.1 */
    histogram_observe(&h, &b, 0.3);
    histogram_observe(&h, &b, 7);
    histogram_observe(&h, &b, -1);  /* as 0 */
    histogram_observe(&h, &b, NAN); /* as 0 */
    histogram_snapshot s;
    histogram_read(&h, &b, &s);
    CHECK_EQ_INT(s.cumulative[0], 4);
    CHECK_EQ_INT(s.cumulative[1], 5);
    CHECK_EQ_INT(s.cumulative[2], 5);
    CHECK_EQ_INT(s.cumulative[3], 6);
    CHECK_EQ_INT(s.count, 6);
    CHECK(fabs(s.sum - 7.45) < 1e-9);

    buf out;
    buf_init(&out, 4096);
    CHECK_EQ_INT(histogram_render(&out, &h, &b, "x_seconds", "k=\"v\""), 0);
    const char *t = buf_str(&out);
    CHECK(strstr(t, "x_seconds_bucket{k=\"v\",le=\"0.1\"} 4\n") != NULL);
    CHECK(strstr(t, "x_seconds_bucket{k=\"v\",le=\"0.5\"} 5\n") != NULL);
    CHECK(strstr(t, "x_seconds_bucket{k=\"v\",le=\"1\"} 5\n") != NULL);
    CHECK(strstr(t, "x_seconds_bucket{k=\"v\",le=\"+Inf\"} 6\n") != NULL);
    CHECK(strstr(t, "x_seconds_sum{k=\"v\"} 7.45\n") != NULL);
    CHECK(strstr(t, "x_seconds_count{k=\"v\"} 6\n") != NULL);
    buf_reset(&out);
    /* Without labels: no empty braces before le, none at all on _sum and _count. */
    static histogram empty;
    CHECK_EQ_INT(histogram_render(&out, &empty, &b, "y", ""), 0);
    CHECK(strstr(buf_str(&out), "y_bucket{le=\"0.1\"} 0\n") != NULL);
    CHECK(strstr(buf_str(&out), "y_sum 0\ny_count 0\n") != NULL);
    buf_free(&out);
}

static void test_process(void)
{
    process_stats ps;
    CHECK_EQ_INT(process_stats_read(&ps), 0);
    CHECK(ps.rss_bytes > 0 && ps.vm_bytes >= ps.rss_bytes);
    CHECK(ps.open_fds >= 3); /* stdin, stdout, stderr */
    CHECK(ps.cpu_seconds >= 0);
    time_t now = time(NULL);
    CHECK(ps.start_time > (double)now - 600 && ps.start_time <= (double)now + 2);
}

int main(void)
{
    test_histogram_buckets();
    test_process();
    metrics_request(METRIC_ROUTE_PREDICT_V1, 200, 0.02);
    metrics_request(METRIC_ROUTE_PREDICT_V1, 200, 0.3);
    metrics_request(METRIC_ROUTE_PREDICT_V1, 401, 0.001);
    metrics_file(FILE_DONE);
    metrics_file(FILE_CANCELLED);
    metrics_stage_seconds(STAGE_DECODE, 0.003);
    metrics_stage_seconds(STAGE_DECODE, 0.2);
    metrics_inflight_add(2);
    metrics_inflight_add(-1);
    metrics_workers(POOL_CPU, 4);
    metrics_job_begin(POOL_CPU, 0.002);
    metrics_llm_tokens(812, 4);
    metrics_llm_tokens(-5, 1); /* a nonsense count adds nothing */
    metrics_fetch(FETCH_OK, 0.04);
    metrics_connections_add(1);
    metrics_set_models((metrics_model[]){{"yolo\"x", "yolox", "detect"}}, 1);
    CHECK_EQ_INT(metrics_request_count(METRIC_ROUTE_PREDICT_V1, 200), 2);
    CHECK_EQ_INT(metrics_file_count(FILE_CANCELLED), 1);
    CHECK_EQ_INT(metrics_inflight(), 1);
    size_t len;
    char *t = metrics_render(&len);
    CHECK(t != NULL);
    CHECK_EQ_INT(strlen(t), len);
    CHECK(strstr(t, "sight_http_requests_total{route=\"predict_v1\",status=\"200\"} 2\n") != NULL);
    CHECK(strstr(t, "sight_http_requests_total{route=\"predict_v1\",status=\"401\"} 1\n") != NULL);
    CHECK(strstr(t, "sight_http_requests_total{route=\"predict_v2\"") == NULL); /* rows that are zero are left out */
    CHECK(strstr(t, "sight_request_duration_seconds_bucket{route=\"predict_v1\",le=\"0.025\"} 2\n") != NULL);
    CHECK(strstr(t, "sight_request_duration_seconds_count{route=\"predict_v1\"} 3\n") != NULL);
    CHECK(strstr(t, "sight_files_total{outcome=\"cancelled\"} 1\n") != NULL);
    /* Cumulative buckets: 3 ms is in le=0.005 and above; 200 ms from le=0.25. */
    CHECK(strstr(t, "sight_stage_duration_seconds_bucket{stage=\"decode\",le=\"0.005\"} 1\n") != NULL);
    CHECK(strstr(t, "sight_stage_duration_seconds_bucket{stage=\"decode\",le=\"0.1\"} 1\n") != NULL);
    CHECK(strstr(t, "sight_stage_duration_seconds_bucket{stage=\"decode\",le=\"0.25\"} 2\n") != NULL);
    CHECK(strstr(t, "sight_stage_duration_seconds_bucket{stage=\"decode\",le=\"+Inf\"} 2\n") != NULL);
    CHECK(strstr(t, "sight_stage_duration_seconds_count{stage=\"decode\"} 2\n") != NULL);
    CHECK(strstr(t, "sight_requests_in_flight 1\n") != NULL);
    CHECK(strstr(t, "sight_workers{pool=\"cpu\"} 4\n") != NULL);
    CHECK(strstr(t, "sight_workers_busy{pool=\"cpu\"} 1\n") != NULL);
    CHECK(strstr(t, "sight_queue_wait_seconds_bucket{pool=\"cpu\",le=\"0.0025\"} 1\n") != NULL);
    CHECK(strstr(t, "sight_queue_wait_seconds_bucket{pool=\"cpu\",le=\"0.001\"} 0\n") != NULL);
    CHECK(strstr(t, "sight_llm_tokens_total{direction=\"prompt\"} 812\n") != NULL);
    CHECK(strstr(t, "sight_llm_tokens_total{direction=\"completion\"} 5\n") != NULL);
    CHECK(strstr(t, "sight_fetch_duration_seconds_count{outcome=\"ok\"} 1\n") != NULL);
    CHECK(strstr(t, "sight_connections_open 1\n") != NULL);
    CHECK(strstr(t, "sight_model_info{name=\"yolo\\\"x\",layout=\"yolox\",task=\"detect\"} 1\n") != NULL);
    CHECK(strstr(t, "sight_build_info{version=\"" SIGHT_VERSION "\"} 1\n") != NULL);
    CHECK(strstr(t, "# TYPE process_resident_memory_bytes gauge\n") != NULL);
    CHECK(strstr(t, "# TYPE process_cpu_seconds_total counter\n") != NULL);
    free(t);
    return check_report("metrics");
}
