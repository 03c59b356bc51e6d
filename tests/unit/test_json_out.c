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

    char *err = json_error_body("no_files", "say \"hi\"\n", &len);
    CHECK_STR(err, "{\"detail\":{\"code\":\"no_files\",\"message\":\"say \\\"hi\\\"\\n\"}}\n");
    free(err);
    return check_report("json_out");
}
