#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "util/json_out.h"

int main(void)
{
    /* Valid UTF-8 is kept as is. */
    json_t *s = json_string_lossy("caf\xC3\xA9.jpg", 9);
    CHECK_STR(json_string_value(s), "caf\xC3\xA9.jpg");
    json_decref(s);
    /* Broken sequences, overlongs, surrogates and NULs become U+FFFD. */
    s = json_string_lossy("a\xFF"
                          "b\xC0\xAF"
                          "c\xED\xA0\x80"
                          "d\0e",
                          12);
    CHECK(s != NULL);
    CHECK_STR(json_string_value(s), "a\xEF\xBF\xBD"
                                    "b\xEF\xBF\xBD\xEF\xBF\xBD"
                                    "c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                                    "d\xEF\xBF\xBD"
                                    "e");
    json_decref(s);
    /* Truncated multi-byte sequence at the end. */
    s = json_string_lossy("x\xE2\x82", 3);
    CHECK_STR(json_string_value(s), "x\xEF\xBF\xBD\xEF\xBF\xBD");
    json_decref(s);

    size_t len;
    char *line = json_line(json_pack("{s:s,s:i}", "status", "done", "index", 3), &len);
    CHECK_STR(line, "{\"status\":\"done\",\"index\":3}\n");
    CHECK_EQ_INT(len, strlen(line));
    free(line);

    /* U+2028, U+2029 and the C1 controls (U+0085 among them) are escaped, so
     * that readers splitting on Unicode line breaks see one line; U+00A0 and
     * U+2027, next to them, are left alone. */
    line = json_line(json_pack("{s:s}", "filename",
                               "a\xE2\x80\xA8"
                               "b\xE2\x80\xA9"
                               "c\xC2\x85"
                               "d\xC2\x80\xC2\x9F\xC2\xA0\xE2\x80\xA7"),
                     &len);
    CHECK_STR(line, "{\"filename\":\"a\\u2028b\\u2029c\\u0085d\\u0080\\u009f\xC2\xA0\xE2\x80\xA7\"}\n");
    CHECK_EQ_INT(len, strlen(line));
    free(line);
    /* The same for every writer: json_dumps_safe, and an error body's message. */
    json_t *o = json_pack("[s]", "x\xE2\x80\xA8y");
    char *d = json_dumps_safe(o, JSON_COMPACT);
    CHECK_STR(d, "[\"x\\u2028y\"]");
    free(d);
    json_decref(o);
    char *err = json_error_body("c", "m\xC2\x85", &len);
    CHECK_STR(err, "{\"detail\":{\"code\":\"c\",\"message\":\"m\\u0085\"}}\n");
    free(err);
    /* A lone lead byte at the end is not a match (and stays as it was). */
    size_t n;
    char *e = json_escape_separators("\xE2\x80", 2, &n);
    CHECK_EQ_INT(n, 2);
    free(e);

    err = json_error_body("no_files", "say \"hi\"\n", &len);
    CHECK_STR(err, "{\"detail\":{\"code\":\"no_files\",\"message\":\"say \\\"hi\\\"\\n\"}}\n");
    free(err);

    /* json_line_estimate: exact where there is no real (escapes, separators,
     * controls, integers to their extremes, nesting, empty containers). */
    json_t *samples[] = {
        json_pack("{s:s,s:I,s:I,s:I,s:b,s:b,s:n}", "s", "plain", "zero", (json_int_t)0, "min", (json_int_t)INT64_MIN,
                  "max", (json_int_t)INT64_MAX, "t", 1, "f", 0, "nil"),
        json_pack("{s:s,s:s%,s:s}", "esc", "q\" b\\ \b\f\n\r\t /", "ctl", "\x01\x1f\0x", (size_t)4, "sep",
                  "\xE2\x80\xA8 \xE2\x80\xA9 \xC2\x85 caf\xC3\xA9 \xE2\x82\xAC"),
        json_pack("{s:[],s:{},s:[[i,i],{s:[s]}]}", "a", "o", "n", 10, -7, "k\"ey", "v"),
        json_pack("[]"),
    };
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        CHECK(samples[i] != NULL);
        size_t est = json_line_estimate(samples[i]), real;
        char *line = json_line(samples[i], &real);
        CHECK(line != NULL);
        CHECK_EQ_INT(est, real);
        free(line);
    }
    /* A real counts as JSON_REAL_ESTIMATE bytes. */
    json_t *r = json_pack("[f]", 0.5);
    CHECK_EQ_INT(json_line_estimate(r), 2 + JSON_REAL_ESTIMATE + 1);
    json_decref(r);
    CHECK_EQ_INT(json_line_estimate(NULL), 0);
    return check_report("json_out");
}
