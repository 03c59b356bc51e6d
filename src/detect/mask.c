#include "detect/mask.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/array.h"

/* Bilinear source position as torch's interpolate (align_corners=False):
 * half-pixel centres, clamped at the low edge and at the last cell. */
static void src_pos(double s, int n, int *i0, int *i1, float *l)
{
    if (s < 0) s = 0;
    int a = (int)s;
    if (a > n - 1) a = n - 1;
    *i0 = a;
    *i1 = a + 1 < n ? a + 1 : n - 1;
    *l = (float)(s - a);
    if (*l < 0) *l = 0;
    if (*l > 1) *l = 1;
}

/* The full-size pixel range [*a, *b) that can see the proto cells [c0, c1]:
 * bilinear sampling reaches one cell further each way. */
static void window(int c0, int c1, double cell, double pad, double gain, double ipo, int n, int *a, int *b)
{
    double lo = ((c0 - 0.5) * cell - pad) / gain / ipo, hi = ((c1 + 1.5) * cell - pad) / gain / ipo;
    *a = lo <= 0 ? 0 : lo >= n ? n
                               : (int)floor(lo);
    *b = hi <= 0 ? 0 : hi >= n ? n
                               : (int)ceil(hi);
}

int mask_build(const float *coeffs, size_t stride, const float *protos, int P, int mh, int mw, const mask_geom *g,
               const float box_in[4], yolo_mask *m)
{
    memset(m, 0, sizeof *m);
    /* crop_mask at prototype resolution keeps cells x1 <= c < x2 of the box
     * scaled to the prototypes; everything else is logit 0 before upsampling. */
    const double sxp = (double)mw / g->in_w, syp = (double)mh / g->in_h;
    const double bx1 = box_in[0] * sxp, by1 = box_in[1] * syp, bx2 = box_in[2] * sxp, by2 = box_in[3] * syp;
    if (!(bx2 > bx1 && by2 > by1)) return 0; /* also NaN */
    const int cx0 = bx1 <= 0 ? 0 : bx1 >= mw ? mw
                                             : (int)ceil(bx1),
              cx1 = bx2 <= 0 ? -1 : bx2 > mw ? mw - 1
                                             : (int)ceil(bx2) - 1;
    const int cy0 = by1 <= 0 ? 0 : by1 >= mh ? mh
                                             : (int)ceil(by1),
              cy1 = by2 <= 0 ? -1 : by2 > mh ? mh - 1
                                             : (int)ceil(by2) - 1;
    if (cx1 < cx0 || cy1 < cy0) return 0;
    int X0, X1, Y0, Y1;
    window(cx0, cx1, 1 / sxp, g->pad_left, g->gain, g->img_per_orig_x, g->orig_w, &X0, &X1);
    window(cy0, cy1, 1 / syp, g->pad_top, g->gain, g->img_per_orig_y, g->orig_h, &Y0, &Y1);
    if (!(X1 > X0 && Y1 > Y0)) return 0;
    const int w = X1 - X0, h = Y1 - Y0;
    int *cx = malloc((size_t)w * 2 * sizeof *cx), *cy = malloc((size_t)h * 2 * sizeof *cy);
    float *lx = malloc((size_t)w * sizeof *lx), *ly = malloc((size_t)h * sizeof *ly);
    m->bits = malloc((size_t)w * h);
    float *L = NULL;
    int rc = -1;
    if (!cx || !cy || !lx || !ly || !m->bits) goto out;
    int px0 = mw, px1 = 0, py0 = mh, py1 = 0;
    for (int i = 0; i < w; i++) {
        double u = (X0 + i + 0.5) * g->img_per_orig_x * g->gain + g->pad_left;
        src_pos(u * sxp - 0.5, mw, &cx[2 * i], &cx[2 * i + 1], &lx[i]);
        if (cx[2 * i] < px0) px0 = cx[2 * i];
        if (cx[2 * i + 1] > px1) px1 = cx[2 * i + 1];
    }
    for (int j = 0; j < h; j++) {
        double v = (Y0 + j + 0.5) * g->img_per_orig_y * g->gain + g->pad_top;
        src_pos(v * syp - 0.5, mh, &cy[2 * j], &cy[2 * j + 1], &ly[j]);
        if (cy[2 * j] < py0) py0 = cy[2 * j];
        if (cy[2 * j + 1] > py1) py1 = cy[2 * j + 1];
    }
    /* Logits only over the cells the window samples, and of those only the
     * ones inside the crop (the rest stay 0). */
    const int rw = px1 - px0 + 1, rh = py1 - py0 + 1;
    L = calloc((size_t)rw * rh, sizeof *L);
    if (!L) goto out;
    const int kx0 = cx0 > px0 ? cx0 : px0, kx1 = cx1 < px1 ? cx1 : px1;
    const int ky0 = cy0 > py0 ? cy0 : py0, ky1 = cy1 < py1 ? cy1 : py1;
    for (int p = 0; p < P && kx1 >= kx0; p++) {
        const float c = coeffs[(size_t)p * stride];
        const float *pl = protos + (size_t)p * mh * mw;
        for (int r = ky0; r <= ky1; r++) {
            const float *src = pl + (size_t)r * mw;
            float *dst = L + (size_t)(r - py0) * rw - px0;
            for (int k = kx0; k <= kx1; k++) dst[k] += c * src[k];
        }
    }
    long area = 0;
    for (int j = 0; j < h; j++) {
        const float *r0 = L + (size_t)(cy[2 * j] - py0) * rw, *r1 = L + (size_t)(cy[2 * j + 1] - py0) * rw;
        const float b = ly[j], a = 1 - b;
        uint8_t *row = m->bits + (size_t)j * w;
        for (int i = 0; i < w; i++) {
            const int c0 = cx[2 * i] - px0, c1 = cx[2 * i + 1] - px0;
            const float t = lx[i], s = 1 - t;
            const float val = a * (s * r0[c0] + t * r0[c1]) + b * (s * r1[c0] + t * r1[c1]);
            row[i] = val > 0;
            area += row[i];
        }
    }
    m->x0 = X0, m->y0 = Y0, m->w = w, m->h = h, m->area = area;
    rc = 0;
out:
    free(cx);
    free(cy);
    free(lx);
    free(ly);
    free(L);
    if (rc) mask_free(m);
    return rc;
}

void mask_free(yolo_mask *m)
{
    free(m->bits);
    m->bits = NULL;
    m->area = 0;
}

/* ---- outline ---- */

static const int DX[8] = {-1, -1, 0, 1, 1, 1, 0, -1}; /* W, NW, N, NE, E, SE, S, SW: clockwise, y down */
static const int DY[8] = {0, -1, -1, -1, 0, 1, 1, 1};

static int dir_of(int dx, int dy)
{
    for (int d = 0; d < 8; d++)
        if (DX[d] == dx && DY[d] == dy) return d;
    return 0;
}

/* Labels the largest 8-connected part: returns its first pixel in raster
 * order (top row, leftmost), and sets lab[i] = 1 on it (other parts 0). */
static long largest_part(const yolo_mask *m, uint8_t *lab, int *queue)
{
    const int w = m->w, h = m->h;
    int *comp = calloc((size_t)w * h, sizeof *comp); /* part number + 1 */
    if (!comp) return -2;
    long best = -1, best_n = 0;
    int id = 0, best_id = 0;
    for (long s = 0; s < (long)w * h; s++) {
        if (!m->bits[s] || comp[s]) continue;
        id++;
        long qh = 0, qt = 0, n = 0;
        queue[qt++] = (int)s, comp[s] = id;
        while (qh < qt) {
            int p = queue[qh++];
            n++;
            int x = p % w, y = p / w;
            for (int d = 0; d < 8; d++) {
                int nx = x + DX[d], ny = y + DY[d];
                if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
                int q = ny * w + nx;
                if (m->bits[q] && !comp[q]) comp[q] = id, queue[qt++] = q;
            }
        }
        if (n > best_n) best_n = n, best = s, best_id = id;
    }
    for (long i = 0; i < (long)w * h; i++) lab[i] = comp[i] == best_id && best_id;
    free(comp);
    return best;
}

/* Douglas-Peucker on the open run pts[lo..hi], marking kept points. */
static void dp(const float *pts, int lo, int hi, double eps, uint8_t *keep, int *stack)
{
    int sp = 0;
    stack[sp++] = lo, stack[sp++] = hi;
    while (sp) {
        int b = stack[--sp], a = stack[--sp];
        if (b - a < 2) continue;
        double ax = pts[2 * a], ay = pts[2 * a + 1], bx = pts[2 * b], by = pts[2 * b + 1];
        double vx = bx - ax, vy = by - ay, len = sqrt(vx * vx + vy * vy);
        double dmax = -1;
        int imax = a;
        for (int i = a + 1; i < b; i++) {
            double px = pts[2 * i] - ax, py = pts[2 * i + 1] - ay;
            double dd = len > 0 ? fabs(vx * py - vy * px) / len : sqrt(px * px + py * py);
            if (dd > dmax) dmax = dd, imax = i;
        }
        if (dmax > eps) {
            keep[imax] = 1;
            stack[sp++] = a, stack[sp++] = imax;
            stack[sp++] = imax, stack[sp++] = b;
        }
    }
}

int mask_outline(const yolo_mask *m, int max_pts, float **out, int *nout)
{
    *out = NULL, *nout = 0;
    if (!m->bits || m->area == 0) return 0;
    const int w = m->w, h = m->h;
    uint8_t *lab = malloc((size_t)w * h);
    int *queue = malloc((size_t)w * h * sizeof *queue);
    float *pts = NULL;
    uint8_t *keep = NULL;
    int *stack = NULL;
    int rc = -1;
    if (!lab || !queue) goto out;
    long s = largest_part(m, lab, queue);
    if (s < 0) goto out;
    /* Moore-neighbour tracing from the part's first raster pixel, whose west
     * neighbour is outside it; stops when the first move would repeat. */
    const long cap = 4 * m->area + 8;
    pts = malloc((size_t)cap * 2 * sizeof *pts);
    if (!pts) goto out;
    int x = (int)(s % w), y = (int)(s / w), bdir = 0, first = -1, n = 0;
    const int sx = x, sy = y;
    pts[n * 2] = (float)(x + m->x0), pts[n * 2 + 1] = (float)(y + m->y0), n++;
    while (n < cap) {
        int d = -1;
        for (int k = 1; k <= 8; k++) {
            int dd = (bdir + k) % 8, nx = x + DX[dd], ny = y + DY[dd];
            if (nx >= 0 && ny >= 0 && nx < w && ny < h && lab[ny * w + nx]) {
                d = dd;
                break;
            }
        }
        if (d < 0) break; /* a single pixel */
        if (x == sx && y == sy) {
            if (first == d) break;
            if (first < 0) first = d;
        }
        const int bx = x + DX[(d + 7) % 8], by = y + DY[(d + 7) % 8];
        x += DX[d], y += DY[d];
        bdir = dir_of(bx - x, by - y);
        if (x == sx && y == sy) continue; /* the start is already the first point */
        pts[n * 2] = (float)(x + m->x0), pts[n * 2 + 1] = (float)(y + m->y0), n++;
    }
    if (n > max_pts && max_pts >= 3) {
        keep = malloc((size_t)n + 1);
        stack = malloc(((size_t)n + 2) * 4 * sizeof *stack);
        float *ring = malloc(((size_t)n + 1) * 2 * sizeof *ring);
        if (!keep || !stack || !ring) {
            free(ring);
            goto out;
        }
        memcpy(ring, pts, (size_t)n * 2 * sizeof *ring);
        ring[2 * n] = ring[0], ring[2 * n + 1] = ring[1]; /* closed: back to the start */
        int k = n;
        for (double eps = 0.5; k > max_pts; eps *= 1.5) {
            memset(keep, 0, (size_t)n + 1);
            keep[0] = keep[n] = 1;
            dp(ring, 0, n, eps, keep, stack);
            k = 0;
            for (int i = 0; i < n; i++) k += keep[i];
        }
        int j = 0;
        for (int i = 0; i < n; i++)
            if (keep[i]) pts[2 * j] = ring[2 * i], pts[2 * j + 1] = ring[2 * i + 1], j++;
        n = j;
        free(ring);
    }
    *out = pts, *nout = n;
    pts = NULL;
    rc = 0;
out:
    free(lab);
    free(queue);
    free(pts);
    free(keep);
    free(stack);
    return rc;
}

/* ---- RLE ---- */

typedef struct {
    uint32_t *c;
    size_t n, cap;
    int cur;      /* value of the open run */
    uint64_t len; /* its length so far */
} rle_buf;

static int rle_add(rle_buf *r, int v, uint64_t len)
{
    if (v != r->cur) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 64;
            uint32_t *c = array_resize(r->c, cap, sizeof *c);
            if (!c) return -1;
            r->c = c, r->cap = cap;
        }
        r->c[r->n++] = (uint32_t)r->len;
        r->cur = v, r->len = 0;
    }
    r->len += len;
    return 0;
}

int mask_rle(const yolo_mask *m, int W, int H, uint32_t **counts, size_t *n)
{
    rle_buf r = {0};
    *counts = NULL, *n = 0;
    for (int X = 0; X < W; X++) {
        const int i = X - m->x0;
        if (!m->bits || i < 0 || i >= m->w) {
            if (rle_add(&r, 0, (uint64_t)H)) goto fail;
            continue;
        }
        if (m->y0 > 0 && rle_add(&r, 0, (uint64_t)m->y0)) goto fail;
        for (int j = 0; j < m->h; j++)
            if (rle_add(&r, m->bits[(size_t)j * m->w + i], 1)) goto fail;
        if (H - m->y0 - m->h > 0 && rle_add(&r, 0, (uint64_t)(H - m->y0 - m->h))) goto fail;
    }
    if (rle_add(&r, !r.cur, 0)) goto fail; /* closes the last run */
    *counts = r.c, *n = r.n;
    return 0;
fail:
    free(r.c);
    return -1;
}
