#include <stdio.h>
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

    /* json_held_estimate: what jansson allocates, with malloc's headers
     * (glibc, 64-bit), for each kind of value. */
    json_t *h = json_string("abcd");
    CHECK_EQ_INT(json_held_estimate(h), 48 + 32); /* json_t block, text block */
    json_decref(h);
    h = json_pack("[i,f,b,n]", 1, 0.5, 1);
    CHECK_EQ_INT(json_held_estimate(h), 48 + 80 + 32 + 32); /* the singletons are free */
    json_decref(h);
    /* An event as the pipeline makes one: object, 4 members, 3 strings, 1 integer. */
    h = json_pack("{s:s,s:s,s:i,s:s}", "status", "llm_delta", "delta", "abcd", "index", 0, "filename", "a.png");
    CHECK_EQ_INT(json_held_estimate(h), 224 + 4 * 80 + 3 * 80 + 32);
    json_decref(h);
    /* Past 8 members the buckets double; past 8 items the table does. */
    h = json_object();
    json_t *arr = json_array();
    for (int i = 0; i < 9; i++) {
        char k[4];
        snprintf(k, sizeof k, "k%d", i);
        json_object_set_new(h, k, json_null());
        json_array_append_new(arr, json_null());
    }
    CHECK_EQ_INT(json_held_estimate(h), 224 + 8 * 16 + 9 * 80);
    CHECK_EQ_INT(json_held_estimate(arr), 48 + 144);
    json_decref(h);
    json_decref(arr);
    CHECK_EQ_INT(json_held_estimate(NULL), 0);
    return check_report("json_out");
}
