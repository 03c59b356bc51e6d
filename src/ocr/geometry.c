#include "ocr/geometry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

float ocr_dist(ocr_pt a, ocr_pt b) { return hypotf(a.x - b.x, a.y - b.y); }

static int pt_cmp(const void *a, const void *b)
{
    const ocr_pt *p = a, *q = b;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    if (p->y != q->y) return p->y < q->y ? -1 : 1;
    return 0;
}

static double cross(ocr_pt o, ocr_pt a, ocr_pt b)
{
    return ((double)a.x - o.x) * ((double)b.y - o.y) - ((double)a.y - o.y) * ((double)b.x - o.x);
}

int ocr_convex_hull(const ocr_pt *pts, int n, ocr_pt *hull)
{
    if (n <= 0) return 0;
    ocr_pt *s = malloc((size_t)n * sizeof *s);
    if (!s) return 0;
    memcpy(s, pts, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, pt_cmp);
    /* Duplicates would make zero-length hull edges. */
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || s[i].x != s[m - 1].x || s[i].y != s[m - 1].y) s[m++] = s[i];
    if (m <= 2) {
        memcpy(hull, s, (size_t)m * sizeof *s);
        free(s);
        return m;
    }
    /* hull needs up to m+1 slots while building; the caller's buffer has n >= m,
     * so build into a local one. */
    ocr_pt *h = malloc((size_t)(2 * m) * sizeof *h);
    if (!h) {
        free(s);
        return 0;
    }
    int k = 0;
    for (int i = 0; i < m; i++) {
        while (k >= 2 && cross(h[k - 2], h[k - 1], s[i]) <= 0) k--;
        h[k++] = s[i];
    }
    for (int i = m - 2, t = k + 1; i >= 0; i--) {
        while (k >= t && cross(h[k - 2], h[k - 1], s[i]) <= 0) k--;
        h[k++] = s[i];
    }
    k--; /* the last point repeats the first */
    memcpy(hull, h, (size_t)k * sizeof *h);
    free(h);
    free(s);
    return k;
}

/* p = sorted(box, key=x): a stable insertion sort on x only. */
static void sorted_by_x(const ocr_pt box[4], ocr_pt p[4])
{
    memcpy(p, box, 4 * sizeof *p);
    for (int i = 1; i < 4; i++)
        for (int j = i; j > 0 && p[j].x < p[j - 1].x; j--) {
            ocr_pt t = p[j];
            p[j] = p[j - 1], p[j - 1] = t;
        }
}

void ocr_order_mini_box(ocr_pt box[4])
{
    ocr_pt p[4];
    sorted_by_x(box, p);
    int i1, i4, i2, i3;
    if (p[1].y > p[0].y) i1 = 0, i4 = 1;
    else i1 = 1, i4 = 0;
    if (p[3].y > p[2].y) i2 = 2, i3 = 3;
    else i2 = 3, i3 = 2;
    box[0] = p[i1], box[1] = p[i2], box[2] = p[i3], box[3] = p[i4];
}

void ocr_order_clockwise(ocr_pt box[4])
{
    ocr_pt p[4];
    sorted_by_x(box, p);
    ocr_pt l0 = p[0], l1 = p[1], r0 = p[2], r1 = p[3];
    if (l1.y < l0.y) {
        ocr_pt t = l0;
        l0 = l1;
        l1 = t;
    }
    if (r1.y < r0.y) {
        ocr_pt t = r0;
        r0 = r1;
        r1 = t;
    }
    box[0] = l0, box[1] = r0, box[2] = r1, box[3] = l1;
}

float ocr_min_area_rect(const ocr_pt *pts, int n, ocr_pt *hull, ocr_pt box[4])
{
    memset(box, 0, 4 * sizeof *box);
    int k = ocr_convex_hull(pts, n, hull);
    if (k == 0) return 0;
    if (k == 1) {
        for (int i = 0; i < 4; i++) box[i] = hull[0];
        return 0;
    }
    double best = INFINITY;
    double bux = 1, buy = 0, bmin_u = 0, bmax_u = 0, bmin_v = 0, bmax_v = 0;
    /* The minimum rectangle has a side on a hull edge: try each edge direction. */
    for (int i = 0; i < k; i++) {
        ocr_pt a = hull[i], b = hull[(i + 1) % k];
        double ex = (double)b.x - a.x, ey = (double)b.y - a.y, len = hypot(ex, ey);
        if (len <= 0) continue;
        double ux = ex / len, uy = ey / len;
        double mnu = INFINITY, mxu = -INFINITY, mnv = INFINITY, mxv = -INFINITY;
        for (int j = 0; j < k; j++) {
            double u = hull[j].x * ux + hull[j].y * uy, v = -hull[j].x * uy + hull[j].y * ux;
            if (u < mnu) mnu = u;
            if (u > mxu) mxu = u;
            if (v < mnv) mnv = v;
            if (v > mxv) mxv = v;
        }
        double area = (mxu - mnu) * (mxv - mnv);
        if (area < best - 1e-9) {
            best = area;
            bux = ux, buy = uy, bmin_u = mnu, bmax_u = mxu, bmin_v = mnv, bmax_v = mxv;
        }
    }
    /* Back from (u, v) to (x, y): x = u*ux - v*uy, y = u*uy + v*ux. */
    double us[4] = {bmin_u, bmax_u, bmax_u, bmin_u}, vs[4] = {bmin_v, bmin_v, bmax_v, bmax_v};
    for (int i = 0; i < 4; i++)
        box[i] = (ocr_pt){(float)(us[i] * bux - vs[i] * buy), (float)(us[i] * buy + vs[i] * bux)};
    ocr_order_mini_box(box);
    double w = bmax_u - bmin_u, h = bmax_v - bmin_v;
    return (float)(w < h ? w : h);
}

void ocr_unclip_rect(const ocr_pt in[4], float ratio, ocr_pt out[4])
{
    double w = ocr_dist(in[0], in[1]), h = ocr_dist(in[1], in[2]);
    double area = w * h, perim = 2 * (w + h);
    double d = perim > 0 ? area * ratio / perim : 0;
    double cx = 0, cy = 0;
    for (int i = 0; i < 4; i++) cx += in[i].x / 4.0, cy += in[i].y / 4.0;
    /* Unit vectors along two adjacent sides (any direction for a degenerate side). */
    double ux = in[1].x - in[0].x, uy = in[1].y - in[0].y, vx = in[3].x - in[0].x, vy = in[3].y - in[0].y;
    double lu = hypot(ux, uy), lv = hypot(vx, vy);
    if (lu > 0) ux /= lu, uy /= lu;
    else if (lv > 0) ux = vy / lv, uy = -vx / lv;
    else ux = 1, uy = 0;
    if (lv > 0) vx /= lv, vy /= lv;
    else vx = -uy, vy = ux;
    for (int i = 0; i < 4; i++) {
        double px = in[i].x - cx, py = in[i].y - cy;
        double su = px * ux + py * uy >= 0 ? 1 : -1, sv = px * vx + py * vy >= 0 ? 1 : -1;
        out[i] = (ocr_pt){(float)(in[i].x + d * (su * ux + sv * vx)), (float)(in[i].y + d * (su * uy + sv * vy))};
    }
}

int ocr_quad_contains(const ocr_pt q[4], float x, float y)
{
    int pos = 0, neg = 0;
    for (int i = 0; i < 4; i++) {
        ocr_pt a = q[i], b = q[(i + 1) % 4];
        double c = ((double)b.x - a.x) * ((double)y - a.y) - ((double)b.y - a.y) * ((double)x - a.x);
        if (c > 1e-6) pos++;
        else if (c < -1e-6) neg++;
    }
    return !(pos && neg);
}

/* Solves the 8x8 system for the homography taking src[i] to dst[i]
 * (OpenCV getPerspectiveTransform), by Gaussian elimination with pivoting. */
static int homography(const ocr_pt src[4], const ocr_pt dst[4], double m[9])
{
    double a[8][9];
    for (int i = 0; i < 4; i++) {
        double x = src[i].x, y = src[i].y, u = dst[i].x, v = dst[i].y;
        double r0[9] = {x, y, 1, 0, 0, 0, -x * u, -y * u, u};
        double r1[9] = {0, 0, 0, x, y, 1, -x * v, -y * v, v};
        memcpy(a[i], r0, sizeof r0);
        memcpy(a[i + 4], r1, sizeof r1);
    }
    for (int c = 0; c < 8; c++) {
        int p = c;
        for (int r = c + 1; r < 8; r++)
            if (fabs(a[r][c]) > fabs(a[p][c])) p = r;
        if (fabs(a[p][c]) < 1e-12) return -1;
        if (p != c)
            for (int j = 0; j < 9; j++) {
                double t = a[c][j];
                a[c][j] = a[p][j], a[p][j] = t;
            }
        for (int r = 0; r < 8; r++) {
            if (r == c) continue;
            double f = a[r][c] / a[c][c];
            for (int j = c; j < 9; j++) a[r][j] -= f * a[c][j];
        }
    }
    for (int i = 0; i < 8; i++) m[i] = a[i][8] / a[i][i];
    m[8] = 1;
    return 0;
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi
                                                                              : v; }

uint8_t *ocr_crop_quad(const uint8_t *rgb, int w, int h, const ocr_pt q[4], size_t max_pixels, int *out_w,
                       int *out_h)
{
    float fw = fmaxf(ocr_dist(q[0], q[1]), ocr_dist(q[2], q[3]));
    float fh = fmaxf(ocr_dist(q[0], q[3]), ocr_dist(q[1], q[2]));
    if (!(fw >= 1 && fh >= 1) || (double)fw * fh > (double)max_pixels) return NULL;
    int cw = (int)fw, ch = (int)fh;
    /* Map crop pixels back into the image: homography from the crop's corners to q. */
    ocr_pt rect[4] = {{0, 0}, {(float)cw, 0}, {(float)cw, (float)ch}, {0, (float)ch}};
    double m[9];
    if (homography(rect, q, m)) return NULL;
    uint8_t *crop = malloc((size_t)cw * ch * 3);
    if (!crop) return NULL;
    for (int v = 0; v < ch; v++)
        for (int u = 0; u < cw; u++) {
            double z = m[6] * u + m[7] * v + m[8];
            double x = (m[0] * u + m[1] * v + m[2]) / z, y = (m[3] * u + m[4] * v + m[5]) / z;
            if (!isfinite(x) || !isfinite(y)) x = y = 0;
            x = fmin(fmax(x, -1.0), (double)w), y = fmin(fmax(y, -1.0), (double)h);
            int x0 = (int)floor(x), y0 = (int)floor(y);
            double fx = x - x0, fy = y - y0;
            /* BORDER_REPLICATE: outside samples take the nearest edge pixel. */
            int xa = clampi(x0, 0, w - 1), xb = clampi(x0 + 1, 0, w - 1);
            int ya = clampi(y0, 0, h - 1), yb = clampi(y0 + 1, 0, h - 1);
            const uint8_t *p00 = rgb + ((size_t)ya * w + xa) * 3, *p01 = rgb + ((size_t)ya * w + xb) * 3;
            const uint8_t *p10 = rgb + ((size_t)yb * w + xa) * 3, *p11 = rgb + ((size_t)yb * w + xb) * 3;
            uint8_t *o = crop + ((size_t)v * cw + u) * 3;
            for (int c = 0; c < 3; c++) {
                double top = p00[c] + (p01[c] - p00[c]) * fx, bot = p10[c] + (p11[c] - p10[c]) * fx;
                double val = top + (bot - top) * fy;
                o[c] = (uint8_t)clampi((int)lrint(val), 0, 255);
            }
        }
    if ((double)ch / cw >= 1.5) {
        /* np.rot90: out[i][j] = in[j][cw-1-i], out is ch wide and cw tall. */
        uint8_t *r = malloc((size_t)cw * ch * 3);
        if (!r) {
            free(crop);
            return NULL;
        }
        for (int i = 0; i < cw; i++)
            for (int j = 0; j < ch; j++) memcpy(r + ((size_t)i * ch + j) * 3, crop + ((size_t)j * cw + (cw - 1 - i)) * 3, 3);
        free(crop);
        crop = r;
        int t = cw;
        cw = ch, ch = t;
    }
    *out_w = cw, *out_h = ch;
    return crop;
}
