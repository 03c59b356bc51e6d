#include "ocr/lines.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int idx, row;
    float cy, h, left;
} item;

static int by_cy(const void *a, const void *b)
{
    const item *p = a, *q = b;
    if (p->cy != q->cy) return p->cy < q->cy ? -1 : 1;
    if (p->left != q->left) return p->left < q->left ? -1 : 1;
    return p->idx - q->idx;
}

static int by_row_left(const void *a, const void *b)
{
    const item *p = a, *q = b;
    if (p->row != q->row) return p->row - q->row;
    if (p->left != q->left) return p->left < q->left ? -1 : 1;
    return p->idx - q->idx;
}

int ocr_reading_order(const ocr_pt (*boxes)[4], int n, int *order, int *row)
{
    if (n <= 0) return 0;
    item *it = malloc((size_t)n * sizeof *it);
    if (!it) return -1;
    for (int i = 0; i < n; i++) {
        float top = boxes[i][0].y, bot = boxes[i][0].y, left = boxes[i][0].x;
        for (int k = 1; k < 4; k++) {
            top = fminf(top, boxes[i][k].y), bot = fmaxf(bot, boxes[i][k].y);
            left = fminf(left, boxes[i][k].x);
        }
        /* Height of the line itself (not of its rotated bounding box). */
        float h = 0.5f * (ocr_dist(boxes[i][0], boxes[i][3]) + ocr_dist(boxes[i][1], boxes[i][2]));
        it[i] = (item){.idx = i, .cy = 0.5f * (top + bot), .h = h > 0 ? h : bot - top, .left = left};
    }
    qsort(it, (size_t)n, sizeof *it, by_cy);
    int r = 0;
    float row_cy = it[0].cy, row_h = it[0].h;
    it[0].row = 0;
    for (int i = 1; i < n; i++) {
        if (fabsf(it[i].cy - row_cy) < 0.5f * fminf(it[i].h, row_h)) {
            it[i].row = r;
        } else {
            it[i].row = ++r;
            row_cy = it[i].cy, row_h = it[i].h;
        }
    }
    qsort(it, (size_t)n, sizeof *it, by_row_left);
    for (int i = 0; i < n; i++) order[i] = it[i].idx, row[i] = it[i].row;
    free(it);
    return 0;
}

char *ocr_join_lines(const char *const *texts, const int *row, int n)
{
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(texts[i]) + 1;
    char *out = malloc(len);
    if (!out) return NULL;
    size_t o = 0;
    int last_row = -1;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(texts[i]);
        if (!k) continue;
        if (o) out[o++] = row[i] == last_row ? ' ' : '\n';
        memcpy(out + o, texts[i], k);
        o += k;
        last_row = row[i];
    }
    out[o] = 0;
    return out;
}
