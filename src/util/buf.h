/* A growable byte buffer with a mandatory cap (in the spirit of curl's dynbuf).
 * The cap is given to the constructor and can never be passed: the limits it
 * enforces are security boundaries (request bodies, provider answers, fetched
 * images), so there is one implementation of them, tested once. The data is
 * always NUL-terminated once anything was added, so text needs no extra step. */
#ifndef SIGHT_UTIL_BUF_H
#define SIGHT_UTIL_BUF_H
#include <stddef.h>

typedef struct {
    char *data; /* NULL until the first byte; then NUL-terminated */
    size_t len;
    size_t cap; /* allocated bytes, the NUL included */
    size_t max; /* len never exceeds it */
} buf;

enum { BUF_OK = 0,
       BUF_NOMEM = -1,
       BUF_TOO_BIG = -2 };

void buf_init(buf *b, size_t max);
/* Frees the memory; the buffer can be used again with the same cap. */
void buf_free(buf *b);
/* Empties the buffer and keeps its memory. */
void buf_reset(buf *b);
/* Appends n bytes; BUF_TOO_BIG (nothing added) when len would pass the cap. */
int buf_add(buf *b, const void *p, size_t n);
int buf_addc(buf *b, char c);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for at least n more bytes without growing later, or for all the
 * cap still allows when that is less; buf_room says how much there is. */
int buf_reserve(buf *b, size_t n);
size_t buf_room(const buf *b);
/* After writing n bytes at data + len (within buf_room): counts them. */
void buf_commit(buf *b, size_t n);
/* Drops the first n bytes (a parser's consumed input). */
void buf_consume(buf *b, size_t n);
/* The text, "" when nothing was added; valid until the next change. */
const char *buf_str(const buf *b);
/* Hands the data over (malloc'd, NUL-terminated, never NULL but on out of
 * memory) and empties the buffer; the caller frees it. */
char *buf_take(buf *b, size_t *len);
#endif
