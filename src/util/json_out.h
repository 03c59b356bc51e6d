/* Small helpers for the JSON this server writes. */
#ifndef SIGHT_UTIL_JSON_OUT_H
#define SIGHT_UTIL_JSON_OUT_H

#include <jansson.h>
#include <stddef.h>

/* A JSON string from arbitrary bytes: invalid UTF-8 sequences and NULs become
 * U+FFFD, so a client-supplied filename can never break the output. */
json_t *json_string_lossy(const char *s, size_t len);

/* The same replacement into a new NUL-terminated string (caller frees);
 * *out_len (if not NULL) gets its length. NULL when out of memory. */
char *utf8_lossy_dup(const char *s, size_t len, size_t *out_len);

/* json_dumps, then U+2028, U+2029 and the C1 controls (U+0080..U+009F)
 * written as \uXXXX escapes. JSON allows them raw, but readers that split
 * lines on Unicode separators (Python's str.splitlines, JavaScript before
 * ES2019) would cut a line in two; jansson escapes them only with
 * JSON_ENSURE_ASCII, which would escape every non-ASCII character. Every JSON
 * text this server writes goes through here. NULL when out of memory. */
char *json_dumps_safe(const json_t *json, size_t flags);

/* The same escaping on text jansson wrote (valid UTF-8 JSON): a new string
 * (caller frees; *len_out its length), or NULL when out of memory. */
char *json_escape_separators(const char *text, size_t len, size_t *len_out);

/* Serialises compactly and appends "\n": one NDJSON line. Takes ownership of
 * obj (decref'd). Returns malloc'd text and its length, or NULL. */
char *json_line(json_t *obj, size_t *len_out);

/* The bytes of memory obj takes, estimated without allocating: jansson's
 * structures and what malloc adds to each block (glibc, 64-bit: exact there
 * for the types this server makes). A value shared with another holder
 * counts in full. For bounding what a queue of objects holds. */
size_t json_held_estimate(const json_t *obj);

/* {"detail":{"code":code,"message":message}} as malloc'd text. */
char *json_error_body(const char *code, const char *message, size_t *len_out);

#endif
