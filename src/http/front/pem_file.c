#include "http/front/pem_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/array.h"

char *pem_file_read(const char *path, const char *flag, const char *marker)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        log_error("cannot read %s %s: %s", flag, path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4097) {
            char *n = cap < (1u << 20) ? array_resize(text, cap = cap ? cap * 2 : 8192, 1) : NULL;
            if (!n) break;
            text = n;
        }
        size_t r = fread(text + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) break;
    }
    bool err = ferror(f) || !feof(f);
    fclose(f);
    if (text) text[len] = 0;
    if (err || !text || !strstr(text, marker)) {
        log_error("%s %s: %s", flag, path, err || !text ? "cannot be read whole (over 1 MiB?)" : "not a PEM file of the right kind");
        free(text);
        return NULL;
    }
    return text;
}
