/* Shared helpers for the libFuzzer harnesses. */
#ifndef SIGHT_FUZZ_COMMON_H
#define SIGHT_FUZZ_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The input as a NUL-terminated string (embedded NULs just end it early). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* Takes the next byte (0 once the input is used up). */
static inline uint8_t fuzz_byte(const uint8_t **data, size_t *size)
{
    if (!*size) return 0;
    uint8_t b = **data;
    (*data)++;
    (*size)--;
    return b;
}

/* Two split points into n bytes, from two bytes of the input: 0 <= a <= b <= n. */
static inline void fuzz_splits(uint8_t x, uint8_t y, size_t n, size_t *a, size_t *b)
{
    size_t p = n ? (size_t)x * n / 255 : 0, q = n ? (size_t)y * n / 255 : 0;
    if (p > q) {
        size_t t = p;
        p = q;
        q = t;
    }
    *a = p;
    *b = q;
}

/* A growing byte string: what callbacks reported, to compare two runs. */
typedef struct {
    char *b;
    size_t n, cap;
} fuzz_trace;

static inline void trace_add(fuzz_trace *t, const void *d, size_t n)
{
    if (t->n + n > t->cap) {
        size_t c = t->cap ? t->cap : 256;
        while (c < t->n + n) c *= 2;
        if (!(t->b = realloc(t->b, c))) abort();
        t->cap = c;
    }
    if (n) memcpy(t->b + t->n, d, n);
    t->n += n;
}

static inline int trace_eq(const fuzz_trace *a, const fuzz_trace *b)
{
    return a->n == b->n && (a->n == 0 || !memcmp(a->b, b->b, a->n));
}
#endif
