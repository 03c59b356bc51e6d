/* Incremental multipart/form-data parser (RFC 7578 / RFC 2046).
 *
 * Written here rather than using the HTTP engine's post processor, which drops
 * unquoted parameter values (.NET's MultipartFormDataContent sends
 * `name=api_key` without quotes, as RFC 7578 allows), ignores backslash
 * escapes and filename*, and announces values ambiguously.
 *
 * Bytes go in as they arrive, in pieces of any size; callbacks report each
 * part's start (name, filename, content type), its data, and its end. The
 * parser keeps at most one delimiter's worth of bytes between calls, so a
 * file never has to be held twice. */
#ifndef SIGHT_HTTP_MULTIPART_H
#define SIGHT_HTTP_MULTIPART_H

#include <stddef.h>

typedef struct {
    /* Return 0 to go on; anything else stops the parser (mp_feed returns -1). */
    int (*part_begin)(void *ctx, const char *name, const char *filename, const char *content_type);
    int (*part_data)(void *ctx, const char *data, size_t len);
    int (*part_end)(void *ctx);
} mp_callbacks;

typedef struct mp_parser mp_parser;

/* Extracts the boundary parameter from a Content-Type value (quoted or not).
 * Returns 0, or -1 when there is none or it is not 1..70 characters. */
int mp_boundary(const char *content_type, char *out, size_t out_len);

mp_parser *mp_new(const char *boundary, const mp_callbacks *cb, void *ctx);
void mp_free(mp_parser *p);

/* Parses the next piece of the body. Returns 0, or -1 on malformed input or
 * when a callback stopped it; mp_error() says why. */
int mp_feed(mp_parser *p, const char *data, size_t len);

/* 0 when the closing delimiter has been seen (the body was complete). */
int mp_done(const mp_parser *p);
const char *mp_error(const mp_parser *p);
/* The error's code: malformed_multipart, or ambiguous_part (a part with two
 * Content-Disposition or Content-Type headers, or a parameter twice) or
 * invalid_filename (a NUL byte in a name or filename). */
const char *mp_error_code(const mp_parser *p);

#endif
