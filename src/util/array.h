/* Growing arrays of structs or pointers: the element count times the element
 * size is checked for overflow here, once, instead of at every call site. */
#ifndef SIGHT_UTIL_ARRAY_H
#define SIGHT_UTIL_ARRAY_H
#include <stddef.h>
/* p resized to n elements of elem bytes; NULL (p untouched) on overflow or out of memory. */
void *array_resize(void *p, size_t n, size_t elem);
/* Appends one zeroed element to *p (len and cap in elements; the capacity
 * doubles, from 16) and returns it; NULL (nothing changed) when out of memory. */
void *array_push(void **p, size_t *len, size_t *cap, size_t elem);
#endif
