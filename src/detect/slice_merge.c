#include "detect/slice_merge.h"

#include <math.h>
#include <stdlib.h>

/* Start of tile i of n along a side of length len (SAHI: a fixed step, the
 * last tile pushed back so it ends at the edge). */
static int tile_start(int i, int n, int len, int tile, int step)
{
    if (i == n - 1) return len - tile;
    return i * step;
}

static int tiles_along(int len, int tile, int step)
{
    if (len <= tile) return 1;
    return (len - tile + step - 1) / step + 1;
}

size_t slice_grid(int W, int H, int tile_w, int tile_h, float overlap, slice_rect *out, size_t max)
{
    if (W <= 0 || H <= 0 || tile_w <= 0 || tile_h <= 0) return 0;
    if (tile_w > W) tile_w = W;
    if (tile_h > H) tile_h = H;
    int step_x = (int)lround(tile_w * (1.0 - overlap)), step_y = (int)lround(tile_h * (1.0 - overlap));
    if (step_x < 1) step_x = 1;
    if (step_y < 1) step_y = 1;
    int nx = tiles_along(W, tile_w, step_x), ny = tiles_along(H, tile_h, step_y);
    size_t need = (size_t)nx * (size_t)ny;
    if (need > max) return need;
    size_t k = 0;
    for (int j = 0; j < ny; j++)
        for (int i = 0; i < nx; i++)
            out[k++] = (slice_rect){tile_start(i, nx, W, tile_w, step_x), tile_start(j, ny, H, tile_h, step_y), tile_w, tile_h};
    return need;
}

static double area(const slice_box *a)
{
    double w = a->x2 - a->x1, h = a->y2 - a->y1;
    return w > 0 && h > 0 ? w * h : 0;
}

static double inter(const slice_box *a, const slice_box *b)
{
    double w = fmin(a->x2, b->x2) - fmax(a->x1, b->x1), h = fmin(a->y2, b->y2) - fmax(a->y1, b->y1);
    return w > 0 && h > 0 ? w * h : 0;
}

double slice_iou(const slice_box *a, const slice_box *b)
{
    double i = inter(a, b), u = area(a) + area(b) - i;
    return u > 0 ? i / u : 0;
}

double slice_ios(const slice_box *a, const slice_box *b)
{
    double s = fmin(area(a), area(b));
    return s > 0 ? inter(a, b) / s : 0;
}

typedef struct {
    double score;
    int i;
} ranked;

/* Score descending, then input order (qsort is not stable). */
static int by_score(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

long slice_merge(const slice_box *in, size_t n, bool nmm, double thr, int max_det, slice_box *out, int *group, int *rep)
{
    if (n == 0) return 0;
    ranked *rk = malloc(n * sizeof *rk);
    int *order = malloc(n * sizeof *order);
    int *owner = malloc(n * sizeof *owner); /* box -> the candidate (index into cand) it joined */
    slice_box *cand = malloc(n * sizeof *cand);
    int *cand_of = malloc(n * sizeof *cand_of); /* candidate -> its representative box */
    if (!rk || !order || !owner || !cand || !cand_of) {
        free(rk), free(order), free(owner), free(cand), free(cand_of);
        return -1;
    }
    for (size_t i = 0; i < n; i++) rk[i] = (ranked){in[i].score, (int)i};
    qsort(rk, n, sizeof *rk, by_score);
    for (size_t i = 0; i < n; i++) order[i] = rk[i].i;
    free(rk);
    for (size_t i = 0; i < n; i++) owner[i] = -1;
    /* Candidates in score order: with nmm, each box not yet taken and the
     * later boxes it takes (IOS against the box itself, as greedy_nmm's
     * matrix does, not against the growing union); with nms, every box. */
    size_t nc = 0;
    for (size_t a = 0; a < n; a++) {
        int ia = order[a];
        if (owner[ia] >= 0) continue;
        owner[ia] = (int)nc;
        cand_of[nc] = ia;
        slice_box u = in[ia];
        for (size_t b = a + 1; nmm && b < n; b++) {
            int ib = order[b];
            if (owner[ib] >= 0 || in[ib].cls != in[ia].cls || slice_ios(&in[ia], &in[ib]) <= thr) continue;
            owner[ib] = (int)nc;
            u.x1 = fmin(u.x1, in[ib].x1), u.y1 = fmin(u.y1, in[ib].y1);
            u.x2 = fmax(u.x2, in[ib].x2), u.y2 = fmax(u.y2, in[ib].y2);
        }
        cand[nc++] = u;
    }
    /* Class-wise NMS over the candidates (already in score order). */
    int *result_of = order; /* reused: candidate -> result index or -1 */
    long k = 0;
    for (size_t c = 0; c < nc; c++) {
        result_of[c] = -1;
        if (max_det > 0 && k >= max_det) continue;
        bool drop = false;
        for (long r = 0; r < k && !drop; r++)
            drop = out[r].cls == cand[c].cls && slice_iou(&out[r], &cand[c]) > thr;
        if (drop) continue;
        out[k] = cand[c];
        rep[k] = cand_of[c];
        result_of[c] = (int)k++;
    }
    for (size_t i = 0; i < n; i++) group[i] = result_of[owner[i]];
    free(order), free(owner), free(cand), free(cand_of);
    return k;
}
