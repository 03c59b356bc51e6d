#include "pipeline/slice_opts.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *slice_merge_name(slice_merge_kind k) { return k == SLICE_MERGE_NMS ? "nms" : "nmm"; }

static int parse_object(const json_t *o, slice_opts *out, char *msg, size_t len)
{
    *out = (slice_opts){.mode = SLICE_ON, .size = 0, .overlap = 0.2f, .full = true, .merge = SLICE_MERGE_NMM};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        if (!strcmp(k, "size")) {
            double x = json_number_value(v);
            if (!json_is_integer(v) || x < SLICE_MIN_SIZE || x > SLICE_MAX_SIZE) {
                snprintf(msg, len, "slice.size must be a whole number of pixels from %d to %d", SLICE_MIN_SIZE, SLICE_MAX_SIZE);
                return -1;
            }
            out->size = (int)x;
        } else if (!strcmp(k, "overlap")) {
            double x = json_number_value(v);
            if (!json_is_number(v) || !(x >= 0 && x <= 0.9)) {
                snprintf(msg, len, "slice.overlap must be a number from 0 to 0.9");
                return -1;
            }
            out->overlap = (float)x;
        } else if (!strcmp(k, "full")) {
            if (!json_is_boolean(v)) {
                snprintf(msg, len, "slice.full must be true or false");
                return -1;
            }
            out->full = json_is_true(v);
        } else if (!strcmp(k, "merge")) {
            const char *s = json_is_string(v) ? json_string_value(v) : "";
            if (strcmp(s, "nmm") && strcmp(s, "nms")) {
                snprintf(msg, len, "slice.merge must be \"nmm\" or \"nms\"");
                return -1;
            }
            out->merge = !strcmp(s, "nms") ? SLICE_MERGE_NMS : SLICE_MERGE_NMM;
        } else {
            snprintf(msg, len, "slice has unknown key '%.64s' (expected size, overlap, full, merge)", k);
            return -1;
        }
    }
    return 0;
}

int slice_opts_parse(const json_t *v, slice_opts *out, char *msg, size_t len)
{
    *out = (slice_opts){.mode = SLICE_OFF, .overlap = 0.2f, .full = true};
    if (!v || json_is_null(v) || json_is_false(v)) return 0;
    if (json_is_true(v)) {
        out->mode = SLICE_AUTO;
        return 0;
    }
    if (json_is_object(v)) return parse_object(v, out, msg, len);
    if (json_is_string(v)) {
        /* A form field: the same values, as text. */
        const char *s = json_string_value(v);
        if (!strcmp(s, "true") || !strcmp(s, "1")) return slice_opts_parse(json_true(), out, msg, len);
        if (!strcmp(s, "false") || !strcmp(s, "0") || !*s) return 0;
        if (*s == '{') {
            json_t *o = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
            int rc = json_is_object(o) ? parse_object(o, out, msg, len) : -1;
            if (!json_is_object(o)) snprintf(msg, len, "slice is not a valid JSON object");
            json_decref(o);
            return rc;
        }
    }
    snprintf(msg, len, "slice must be true, false or an object {size, overlap, full, merge}");
    return -1;
}
