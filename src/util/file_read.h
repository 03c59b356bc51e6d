#ifndef SIGHT_UTIL_FILE_READ_H
#define SIGHT_UTIL_FILE_READ_H
#include <stddef.h>
/* Reads a whole file into a malloc'd buffer; NULL when it cannot be read. */
void *read_whole_file(const char *path, size_t *len);
#endif
