#include "util/buf.h"

#include "util/block_reuse.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_FIRST 256

void buf_init(buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    /* Leaves room for the NUL without overflowing. */
    b->max = max < SIZE_MAX - 1 ? max : SIZE_MAX - 2;
}

void buf_free(buf *b)
{
    block_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_reset(buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

/* Grows so that need bytes (the NUL excluded) fit; need <= max. */
static int grow(buf *b, size_t need)
{
    if (need + 1 <= b->cap) return BUF_OK;
    size_t cap = b->cap ? b->cap : BUF_FIRST;
    while (cap < need + 1) cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    if (cap > b->max + 1) cap = b->max + 1;
    /* Growing large (an upload): a pooled block whose pages are mapped
     * already, when there is one (block_reuse.h). */
    size_t got = 0;
    char *d = cap >= BLOCK_REUSE_MIN ? block_take(cap, &got) : NULL;
    if (d) {
        if (b->data) memcpy(d, b->data, b->len + 1);
        else d[0] = 0;
        free(b->data);
        b->data = d;
        b->cap = got < b->max + 1 ? got : b->max + 1;
        return BUF_OK;
    }
    d = realloc(b->data, cap);
    if (!d) return BUF_NOMEM;
    if (!b->data) d[0] = 0;
    b->data = d;
    b->cap = cap;
    return BUF_OK;
}

int buf_add(buf *b, const void *p, size_t n)
{
    if (n > b->max - b->len) return BUF_TOO_BIG;
    int rc = grow(b, b->len + n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return BUF_OK;
}

int buf_addc(buf *b, char c) { return buf_add(b, &c, 1); }

int buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return BUF_NOMEM;
    if ((size_t)n > b->max - b->len) return BUF_TOO_BIG;
    int rc = grow(b, b->len + (size_t)n);
    if (rc) return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return BUF_OK;
}

int buf_reserve(buf *b, size_t n)
{
    size_t left = b->max - b->len;
    return grow(b, b->len + (n < left ? n : left));
}

size_t buf_room(const buf *b)
{
    if (!b->cap) return 0;
    size_t room = b->cap - 1 - b->len, left = b->max - b->len;
    return room < left ? room : left;
}

void buf_commit(buf *b, size_t n)
{
    b->len += n;
    b->data[b->len] = 0;
}

void buf_consume(buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = 0;
}

const char *buf_str(const buf *b) { return b->data ? b->data : ""; }

char *buf_take(buf *b, size_t *len)
{
    char *d = b->data ? b->data : calloc(1, 1);
    if (len) *len = d ? b->len : 0;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}
