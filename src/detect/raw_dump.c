#include "detect/raw_dump.h"

#include <stdio.h>
#include <string.h>

/* NPY format 1.0: magic, version, header length (little endian), a Python
 * dict literal padded with spaces to a multiple of 64 bytes, then the data. */
static int write_npy(const char *path, const float *data, const int64_t *shape, size_t nd)
{
    char hdr[256];
    size_t n = 1;
    int o = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (size_t i = 0; i < nd; i++) {
        o += snprintf(hdr + o, sizeof hdr - (size_t)o, "%lld,%s", (long long)shape[i], i + 1 < nd ? " " : "");
        n *= (size_t)shape[i];
    }
    o += snprintf(hdr + o, sizeof hdr - (size_t)o, "), }");
    size_t total = 10 + (size_t)o + 1;
    size_t pad = (64 - total % 64) % 64;
    if ((size_t)o + pad + 1 >= sizeof hdr) return -1;
    memset(hdr + o, ' ', pad);
    hdr[o + pad] = '\n';
    const unsigned hl = (unsigned)((size_t)o + pad + 1);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    const unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    int rc = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, hl, f) == hl && fwrite(data, sizeof *data, n, f) == n ? 0 : -1;
    if (fclose(f)) rc = -1;
    return rc;
}

int raw_dump_write(const char *dir, unsigned seq, const float *const *data, const int64_t (*shapes)[8],
                   const size_t *ndims, int n_out, const letterbox_map *map, int in_w, int in_h, int img_w, int img_h)
{
    char path[4096];
    for (int i = 0; i < n_out; i++) {
        snprintf(path, sizeof path, "%s/%u-output%d.npy", dir, seq, i);
        if (write_npy(path, data[i], shapes[i], ndims[i])) return -1;
    }
    snprintf(path, sizeof path, "%s/%u-meta.json", dir, seq);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\"gain\": %.9g, \"pad_left\": %d, \"pad_top\": %d, \"in_w\": %d, \"in_h\": %d, \"img_w\": %d, \"img_h\": %d}\n",
            (double)map->gain, map->pad_left, map->pad_top, in_w, in_h, img_w, img_h);
    return fclose(f) ? -1 : 0;
}
