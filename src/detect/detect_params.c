/* The detector's per-request options (confidence, iou, max_detections,
 * classes, mask_format), read from the request's fields. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/detector.h"

static void param_err(sight_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void param_err(sight_error *err, const char *fmt, ...)
{
    snprintf(err->code, sizeof err->code, "invalid_option");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/* A number given as JSON number or as text (form fields). */
static int get_number(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (!json_is_string(v)) return -1;
    const char *s = json_string_value(v);
    char *end;
    double x = strtod(s, &end);
    if (end == s || *end || !isfinite(x)) return -1;
    *out = x;
    return 0;
}

static int find_class(const detector *d, const char *name)
{
    for (int i = 0; i < detector_name_count(d); i++)
        if (!strcmp(detector_class_name(d, i), name)) return i;
    return -1;
}

/* One entry of `classes`: a class id or a class name. */
static int add_class(const detector *d, bool *allowed, int n, const json_t *item, const char *text, sight_error *err)
{
    int id = -1;
    if (json_is_integer(item)) id = (int)json_integer_value(item);
    else if (text) {
        char *end;
        long v = strtol(text, &end, 10);
        if (*text && !*end) id = (int)v;
        else if ((id = find_class(d, text)) < 0) {
            param_err(err, "classes: '%.60s' is not a class of model %s", text, detector_model_name(d));
            return -1;
        }
    } else {
        param_err(err, "classes must list class names or ids");
        return -1;
    }
    if (id < 0 || id >= n) {
        param_err(err, "classes: id %d is out of range (model %s has %d classes)", id, detector_model_name(d), n);
        return -1;
    }
    allowed[id] = true;
    return 0;
}

/* classes: a JSON array, or text "person,car" / "0, 2" / '["person", 2]'. */
static int parse_classes(const detector *d, const json_t *v, detect_params *out, sight_error *err)
{
    int n = detector_class_count(d);
    if (n <= 0) {
        param_err(err, "classes: model %s does not say how many classes it has", detector_model_name(d));
        return -1;
    }
    out->allowed = calloc((size_t)n, sizeof(bool));
    if (!out->allowed) {
        param_err(err, "out of memory");
        return -1;
    }
    json_t *arr = NULL;
    int rc = 0;
    if (json_is_string(v) && json_string_value(v)[0] == '[') {
        arr = json_loads(json_string_value(v), 0, NULL);
        if (!json_is_array(arr)) {
            json_decref(arr);
            param_err(err, "classes is not a valid JSON array");
            return -1;
        }
        v = arr;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        if (json_array_size(v) == 0) rc = -1, param_err(err, "classes is empty");
        json_array_foreach(v, i, item) {
            if (rc) break;
            rc = add_class(d, out->allowed, n, item, json_is_string(item) ? json_string_value(item) : NULL, err);
        }
    } else if (json_is_string(v)) {
        char *copy = strdup(json_string_value(v));
        if (!copy) {
            param_err(err, "out of memory");
            return -1;
        }
        int count = 0;
        char *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ') tok++;
            char *e = tok + strlen(tok);
            while (e > tok && e[-1] == ' ') *--e = 0;
            if (!*tok) continue;
            rc = add_class(d, out->allowed, n, NULL, tok, err);
            count++;
        }
        free(copy);
        if (rc == 0 && count == 0) rc = -1, param_err(err, "classes is empty");
    } else if (json_is_integer(v)) {
        rc = add_class(d, out->allowed, n, v, NULL, err);
    } else {
        rc = -1;
        param_err(err, "classes must be a list of class names or ids");
    }
    json_decref(arr);
    return rc;
}

int detector_parse_params(const detector *d, const json_t *params, detect_params *out, sight_error *err)
{
    *out = (detect_params){.confidence = 0.25f, .iou = 0.7f, .max_detections = 300, .allowed = NULL};
    if (!params) return 0;
    const json_t *v;
    double x;
    if ((v = json_object_get(params, "confidence"))) {
        if (get_number(v, &x) || x < 0 || x > 1) {
            param_err(err, "confidence must be a number from 0 to 1");
            return -1;
        }
        out->confidence = (float)x;
    }
    if ((v = json_object_get(params, "iou"))) {
        if (get_number(v, &x) || x < 0 || x > 1) {
            param_err(err, "iou must be a number from 0 to 1");
            return -1;
        }
        out->iou = (float)x;
    }
    if ((v = json_object_get(params, "max_detections"))) {
        if (get_number(v, &x) || x < 1 || x > 10000 || x != floor(x)) {
            param_err(err, "max_detections must be a whole number from 1 to 10000");
            return -1;
        }
        out->max_detections = (int)x;
    }
    if ((v = json_object_get(params, "mask_format"))) {
        const char *f = json_is_string(v) ? json_string_value(v) : "";
        if (strcmp(f, "rle") && strcmp(f, "polygon")) {
            param_err(err, "mask_format must be polygon or rle");
            return -1;
        }
        out->mask_rle = !strcmp(f, "rle");
    }
    if ((v = json_object_get(params, "classes")) && !json_is_null(v)) {
        if (parse_classes(d, v, out, err)) {
            detect_params_free(out);
            return -1;
        }
    }
    return 0;
}

void detect_params_free(detect_params *p)
{
    free(p->allowed);
    p->allowed = NULL;
}
