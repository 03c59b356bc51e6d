#include "pipeline/track_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "track/track_streams.h"
#include "util/clock.h"

int track_json_update(bytetrack *bt, json_t *yolo, int64_t ms, json_t *names, double *spent, sight_error *err)
{
    json_t *dets = json_object_get(yolo, "detections");
    size_t n = json_array_size(dets);
    track_det *td = calloc(n + 1, sizeof *td);
    int64_t *ids = calloc(n + 1, sizeof *ids);
    if (!td || !ids) {
        free(td);
        free(ids);
        sight_error_set(err, "out_of_memory", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *d = json_array_get(dets, i), *b = json_object_get(d, "box");
        td[i] = (track_det){(float)json_number_value(json_object_get(b, "x1")), (float)json_number_value(json_object_get(b, "y1")),
                            (float)json_number_value(json_object_get(b, "x2")), (float)json_number_value(json_object_get(b, "y2")),
                            (float)json_number_value(json_object_get(d, "confidence")), (int)json_integer_value(json_object_get(d, "class_id"))};
    }
    double t = clock_s();
    int rc = bytetrack_update(bt, td, (int)n, ms, ids);
    if (spent) *spent += clock_s() - t;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *d = json_array_get(dets, i);
        json_object_set_new(d, "track_id", ids[i] ? json_integer(ids[i]) : json_null());
        char key[24];
        snprintf(key, sizeof key, "%d", td[i].cls);
        if (names && ids[i] && !json_object_get(names, key)) json_object_set(names, key, json_object_get(d, "class"));
    }
    free(td);
    free(ids);
    if (rc != 0) sight_error_set(err, "out_of_memory", "out of memory tracking objects");
    return rc;
}

json_t *track_json_list(const bytetrack *bt, const json_t *names)
{
    json_t *a = json_array();
    for (size_t i = 0; i < bytetrack_count(bt); i++) {
        const track_summary *s = bytetrack_summary(bt, i);
        char key[24];
        snprintf(key, sizeof key, "%d", s->cls);
        json_t *name = json_object_get(names, key);
        json_array_append_new(a, json_pack("{s:I,s:O,s:i,s:I,s:I,s:I,s:f}", "track_id", (json_int_t)s->track_id, "class", name ? name : json_null(), "class_id", s->cls, "first_ms", (json_int_t)s->first_ms, "last_ms", (json_int_t)s->last_ms, "frames", (json_int_t)s->frames, "best_confidence", round(s->best_confidence * 1e6) / 1e6));
    }
    return a;
}

int track_json_image(const file_job *f, json_t *yolo, sight_error *err)
{
    if (!f->video.track_stream[0]) {
        /* One frame: every confident box starts a confirmed track. */
        bytetrack *bt = bytetrack_new(NULL);
        if (!bt) {
            sight_error_set(err, "out_of_memory", "out of memory");
            return -1;
        }
        int rc = track_json_update(bt, yolo, 0, NULL, NULL, err);
        bytetrack_free(bt);
        return rc;
    }
    track_stream *h;
    int64_t ms;
    bytetrack *bt = track_stream_acquire(f->key_id, f->video.track_stream, &ms, &h);
    if (!bt) {
        sight_error_set(err, "track_streams_busy", "no tracker for stream '%s': out of memory, or all of this key's %d streams are in use", f->video.track_stream,
                        TRACK_STREAMS_PER_KEY);
        return -1;
    }
    int rc = track_json_update(bt, yolo, ms, NULL, NULL, err);
    track_stream_release(h);
    return rc;
}
