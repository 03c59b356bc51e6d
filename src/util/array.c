#include "util/array.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *array_resize(void *p, size_t n, size_t elem)
{
    if (elem && n > SIZE_MAX / elem) return NULL;
    size_t bytes = n * elem;
    return realloc(p, bytes ? bytes : 1); /* never 0: realloc(p, 0) may free p */
}

void *array_push(void **p, size_t *len, size_t *cap, size_t elem)
{
    if (*len == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        void *np = ncap > *cap ? array_resize(*p, ncap, elem) : NULL;
        if (!np) return NULL;
        *p = np;
        *cap = ncap;
    }
    char *slot = (char *)*p + *len * elem;
    memset(slot, 0, elem);
    (*len)++;
    return slot;
}
