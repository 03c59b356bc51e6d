#include "detect/slice_mask.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int x0, y0, x1, y1; /* bounds of the pixels set, exclusive ends */
    yolo_mask *m;       /* painting when set, else only bounding */
} walk_ctx;

/* Calls back each column run of ones of a part, in image pixels. */
static int walk(const slice_mask_part *p, walk_ctx *c)
{
    const json_t *size = json_object_get(p->rle, "size"), *counts = json_object_get(p->rle, "counts");
    const json_int_t h = json_integer_value(json_array_get(size, 0)), w = json_integer_value(json_array_get(size, 1));
    if (h <= 0 || w <= 0 || !json_is_array(counts)) return -1;
    const int64_t total = (int64_t)h * w;
    int64_t pos = 0;
    size_t i;
    json_t *v;
    json_array_foreach(counts, i, v) {
        json_int_t len = json_integer_value(v);
        if (len < 0 || len > total - pos) return -1;
        for (int64_t q = pos, left = (i & 1) ? len : 0; left > 0;) {
            const int x = (int)(q / h), y = (int)(q % h);
            const int take = (int)(left < h - y ? left : h - y);
            const int X = p->tx + x, Y0 = p->ty + y, Y1 = Y0 + take;
            if (c->m) {
                for (int Y = Y0; Y < Y1; Y++) c->m->bits[(size_t)(Y - c->m->y0) * c->m->w + (X - c->m->x0)] = 1;
            } else {
                if (X < c->x0) c->x0 = X;
                if (X + 1 > c->x1) c->x1 = X + 1;
                if (Y0 < c->y0) c->y0 = Y0;
                if (Y1 > c->y1) c->y1 = Y1;
            }
            q += take, left -= take;
        }
        pos += len;
    }
    return 0;
}

int slice_mask_union(const slice_mask_part *parts, size_t n, yolo_mask *m)
{
    memset(m, 0, sizeof *m);
    walk_ctx c = {INT32_MAX, INT32_MAX, INT32_MIN, INT32_MIN, NULL};
    for (size_t i = 0; i < n; i++)
        if (walk(&parts[i], &c)) return -1;
    if (c.x1 <= c.x0 || c.y1 <= c.y0) return 0;
    m->x0 = c.x0, m->y0 = c.y0, m->w = c.x1 - c.x0, m->h = c.y1 - c.y0;
    if (!(m->bits = calloc((size_t)m->w * m->h, 1))) return -1;
    c.m = m;
    for (size_t i = 0; i < n; i++) walk(&parts[i], &c);
    for (size_t i = 0; i < (size_t)m->w * m->h; i++) m->area += m->bits[i];
    return 0;
}
