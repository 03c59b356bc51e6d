#include "util/array.h"

#include <stdint.h>
#include <stdlib.h>

void *array_resize(void *p, size_t n, size_t elem)
{
    if (elem && n > SIZE_MAX / elem) return NULL;
    size_t bytes = n * elem;
    return realloc(p, bytes ? bytes : 1); /* never 0: realloc(p, 0) may free p */
}
