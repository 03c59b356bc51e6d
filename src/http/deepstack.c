/* The DeepStack / CodeProject.AI detection answer (POST /v1/vision/detection).
 * The request runs as a batch of one file through the usual path (predict.c);
 * its routes (routes.c) name this file's answer and error body, which turn
 * its result event into what Frigate, Blue Iris and Home Assistant read, and
 * every error into DeepStack's {"success":false,...} shape. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http/deepstack.h"
#include "http/http_internal.h"
#include "util/clock.h"
#include "util/json_out.h"

char *deepstack_error_body(unsigned *status, const char *code, const char *message, size_t *len)
{
    (void)code;
    /* DeepStack's clients know 400 for a bad request, not 422. */
    if (*status == 422) *status = 400;
    return json_line(json_pack("{s:b,s:s,s:i}", "success", 0, "error", message, "code", (int)*status), len);
}

/* Orders detections by confidence, highest first: Frigate stops reading at
 * the first one below its threshold. */
static int by_confidence(const void *a, const void *b)
{
    double x = json_real_value(json_object_get(*(json_t *const *)a, "confidence"));
    double y = json_real_value(json_object_get(*(json_t *const *)b, "confidence"));
    return (x < y) - (x > y);
}

/* A file error's status, by its code: the server's failings; any other
 * code is what is wrong with the image, the client's (400). */
static const struct {
    const char *code;
    unsigned status;
} error_statuses[] = {
    {"shutting_down", 503},
    {"yolo_unavailable", 503},
    {"out_of_memory", 500},
    {"detector_failed", 500},
};

static unsigned error_status(const char *code)
{
    for (size_t i = 0; i < sizeof error_statuses / sizeof *error_statuses; i++)
        if (!strcmp(code, error_statuses[i].code)) return error_statuses[i].status;
    return 400;
}

static long px(const json_t *box, const char *k) { return lround(json_number_value(json_object_get(box, k))); }

front_result deepstack_answer(front_conn *c, http_req *hr, json_t *files, json_t *complete)
{
    (void)complete;
    const json_t *ev = json_array_get(files, 0);
    const char *st = json_string_value(json_object_get(ev, "status"));
    if (!st || strcmp(st, "done")) {
        const json_t *e = json_object_get(ev, "error");
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        return reply_error(c, hr, code ? error_status(code) : 500, code ? code : "failed", "%s",
                           msg ? msg : "the image was not processed");
    }
    const json_t *yolo = json_object_get(json_object_get(ev, "result"), "yolo");
    const json_t *dets = json_object_get(yolo, "detections");
    size_t n = json_array_size(dets);
    json_t **sorted = malloc((n ? n : 1) * sizeof *sorted);
    json_t *preds = json_array();
    if (!sorted || !preds) {
        free(sorted);
        json_decref(preds);
        return reply_error(c, hr, 500, "out_of_memory", "out of memory");
    }
    for (size_t i = 0; i < n; i++) sorted[i] = json_array_get(dets, i);
    qsort(sorted, n, sizeof *sorted, by_confidence);
    for (size_t i = 0; i < n; i++) {
        const json_t *b = json_object_get(sorted[i], "box");
        json_array_append_new(preds, json_pack("{s:O,s:O,s:I,s:I,s:I,s:I}", "label", json_object_get(sorted[i], "class"), "confidence", json_object_get(sorted[i], "confidence"), "x_min", (json_int_t)px(b, "x1"), "y_min", (json_int_t)px(b, "y1"), "x_max", (json_int_t)px(b, "x2"), "y_max", (json_int_t)px(b, "y2")));
    }
    free(sorted);
    double inf = json_number_value(json_object_get(json_object_get(yolo, "speed_ms"), "inference"));
    size_t len;
    char *body = json_line(json_pack("{s:b,s:o,s:i,s:I,s:I}", "success", 1, "predictions", preds, "count", (int)n,
                                     "inferenceMs", (json_int_t)lround(inf), "processMs",
                                     (json_int_t)lround(clock_ms() - hr->t_start)),
                           &len);
    return body ? reply_body(c, hr, 200, "application/json", body, len) : FRONT_CLOSE;
}
