#include "video/video_meta.h"

#include <math.h>
#include <string.h>

#include "util/error.h"

/* Stream names are short printable ASCII: they key server-side state. */
static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > VIDEO_STREAM_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e) return false;
    return true;
}

int video_meta_key(video_meta *m, const char *key, const json_t *v, char *msg, size_t msg_len)
{
    if (!strcmp(key, "fps")) {
        double x = json_number_value(v);
        if (!json_is_number(v) || !isfinite(x) || x < 0 || x > 240) {
            err_printf(msg, msg_len, "fps must be a number from 0 (every frame) to 240");
            return -1;
        }
        m->fps = x;
        m->fps_given = true;
        return 1;
    }
    if (!strcmp(key, "max_frames")) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000) {
            err_printf(msg, msg_len, "max_frames must be an integer from 1 to 1000000");
            return -1;
        }
        m->max_frames = json_integer_value(v);
        return 1;
    }
    if (!strcmp(key, "track")) {
        if (!json_is_boolean(v)) {
            err_printf(msg, msg_len, "track must be true or false");
            return -1;
        }
        m->track = json_is_true(v);
        return 1;
    }
    if (!strcmp(key, "track_stream")) {
        if (!json_is_string(v) || !name_ok(json_string_value(v), json_string_length(v))) {
            err_printf(msg, msg_len, "track_stream must be a name of 1 to %d printable ASCII characters", VIDEO_STREAM_NAME_MAX);
            return -1;
        }
        memcpy(m->track_stream, json_string_value(v), json_string_length(v) + 1);
        m->track = true;
        return 1;
    }
    return 0;
}
