/* json_string_lossy on raw bytes: the result must always serialise and parse
 * back to the same string; json_line must always produce one line. */
#include <jansson.h>

#include "fuzz_common.h"
#include "util/json_out.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *s = json_string_lossy((const char *)data, size);
    if (!s) abort();
    char *text = json_dumps(s, JSON_ENCODE_ANY);
    if (!text) abort();
    json_error_t err;
    json_t *back = json_loads(text, JSON_DECODE_ANY, &err);
    if (!back || !json_equal(s, back)) abort();
    /* Every valid UTF-8 byte sequence of the input must survive unchanged. */
    if (json_string_length(s) < size) abort();
    json_decref(back);
    free(text);

    size_t n = 0;
    char *line = json_line(json_pack("{s:O}", "filename", s), &n);
    if (!line || n == 0 || line[n - 1] != '\n' || memchr(line, '\n', n - 1)) abort();
    /* Nor any other line break a reader may split on: U+2028, U+2029, C1 controls. */
    for (size_t i = 0; i + 1 < n; i++) {
        const unsigned char *u = (const unsigned char *)line + i;
        if (u[0] == 0xC2 && u[1] >= 0x80 && u[1] <= 0x9F) abort();
        if (i + 2 < n && u[0] == 0xE2 && u[1] == 0x80 && (u[2] == 0xA8 || u[2] == 0xA9)) abort();
    }
    json_t *obj = json_loadb(line, n, 0, &err);
    if (!obj || !json_equal(json_object_get(obj, "filename"), s)) abort();
    json_decref(obj);
    free(line);
    json_decref(s);
    return 0;
}
