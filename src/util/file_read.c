#include "util/file_read.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/buf.h"

void *read_whole_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    /* A file the user named on the command line: no limit but memory. */
    buf b;
    buf_init(&b, SIZE_MAX);
    int rc = BUF_OK;
    for (size_t r = 1; r > 0 && rc == BUF_OK;) {
        if ((rc = buf_reserve(&b, 1 << 16)) != BUF_OK) break;
        r = fread(b.data + b.len, 1, buf_room(&b), f);
        buf_commit(&b, r);
    }
    fclose(f);
    if (rc != BUF_OK) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b, len);
}
