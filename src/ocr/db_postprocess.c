#include "ocr/db_postprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/array.h"

void ocr_db_defaults(ocr_db_params *p)
{
    *p = (ocr_db_params){.thresh = 0.3f, .box_thresh = 0.6f, .unclip_ratio = 1.5f, .min_size = 3, .max_candidates = 1000};
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi
                                                                              : v; }

/* box_score_fast: mean probability over the pixels of the box's bounding
 * rectangle that lie inside the box. */
static float box_score(const float *prob, int w, int h, const ocr_pt b[4])
{
    float mnx = b[0].x, mxx = b[0].x, mny = b[0].y, mxy = b[0].y;
    for (int i = 1; i < 4; i++) {
        mnx = fminf(mnx, b[i].x), mxx = fmaxf(mxx, b[i].x);
        mny = fminf(mny, b[i].y), mxy = fmaxf(mxy, b[i].y);
    }
    int x0 = clampi((int)floorf(mnx), 0, w - 1), x1 = clampi((int)ceilf(mxx), 0, w - 1);
    int y0 = clampi((int)floorf(mny), 0, h - 1), y1 = clampi((int)ceilf(mxy), 0, h - 1);
    double sum = 0;
    long cnt = 0;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            if (ocr_quad_contains(b, (float)x, (float)y)) sum += prob[(size_t)y * w + x], cnt++;
    return cnt ? (float)(sum / cnt) : 0.0f;
}

int ocr_db_boxes(const float *prob, int mw, int mh, int img_w, int img_h, const ocr_db_params *p,
                 ocr_det_box **out, int *n)
{
    *out = NULL;
    *n = 0;
    if (mw <= 0 || mh <= 0) return 0;
    const size_t npx = (size_t)mw * mh;
    uint8_t *seen = calloc(npx, 1);
    int *stack = malloc(npx * sizeof *stack);
    int *rmin = malloc((size_t)mh * sizeof *rmin), *rmax = malloc((size_t)mh * sizeof *rmax);
    ocr_pt *pts = malloc((size_t)2 * mh * sizeof *pts), *hull = malloc((size_t)2 * mh * sizeof *hull);
    int cap = 16, cnt = 0, rc = 0;
    ocr_det_box *boxes = malloc((size_t)cap * sizeof *boxes);
    if (!seen || !stack || !rmin || !rmax || !pts || !hull || !boxes) {
        rc = -1;
        goto done;
    }
    for (int y = 0; y < mh; y++) rmin[y] = INT32_MAX, rmax[y] = -1;

    int candidates = 0;
    for (size_t start = 0; start < npx && candidates < p->max_candidates; start++) {
        if (seen[start] || !(prob[start] > p->thresh)) continue;
        candidates++;
        /* Flood fill one region. */
        int sp = 0;
        stack[sp++] = (int)start;
        seen[start] = 1;
        int ymin = mh, ymax = -1;
        double psum = 0;
        long pcount = 0;
        while (sp) {
            int i = stack[--sp], x = i % mw, y = i / mw;
            psum += prob[i], pcount++;
            if (x < rmin[y]) rmin[y] = x;
            if (x > rmax[y]) rmax[y] = x;
            if (y < ymin) ymin = y;
            if (y > ymax) ymax = y;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int xx = x + dx, yy = y + dy;
                    if (xx < 0 || yy < 0 || xx >= mw || yy >= mh) continue;
                    size_t j = (size_t)yy * mw + xx;
                    if (!seen[j] && prob[j] > p->thresh) seen[j] = 1, stack[sp++] = (int)j;
                }
        }
        /* The hull only needs the two ends of each row of the region. */
        int k = 0;
        for (int y = ymin; y <= ymax; y++) {
            if (rmax[y] < 0) continue;
            pts[k++] = (ocr_pt){(float)rmin[y], (float)y};
            if (rmax[y] != rmin[y]) pts[k++] = (ocr_pt){(float)rmax[y], (float)y};
            rmin[y] = INT32_MAX, rmax[y] = -1;
        }
        ocr_pt box[4], big[4];
        float sside = ocr_min_area_rect(pts, k, hull, box);
        if (sside < p->min_size) continue;
        /* PaddleOCR's score_mode "slow": the mean over the region itself, not
         * over its rectangle ("fast"). On a photographed page the lines bend,
         * the rectangle takes in the gaps between lines and a real line
         * scored 0.55 in fast mode (skimage_page.png), under box_thresh. */
        float score = p->score_fast ? box_score(prob, mw, mh, box) : (float)(psum / pcount);
        if (score < p->box_thresh) continue;
        ocr_unclip_rect(box, p->unclip_ratio, big);
        ocr_order_mini_box(big);
        float bw = ocr_dist(big[0], big[1]), bh = ocr_dist(big[1], big[2]);
        if (fminf(bw, bh) < p->min_size + 2) continue;
        /* To image pixels, rounded and clipped, then PaddleOCR's
         * filter_tag_det_res: clockwise order, clip inside, drop slivers. */
        for (int i = 0; i < 4; i++) {
            big[i].x = (float)clampi((int)lrintf(big[i].x / mw * img_w), 0, img_w);
            big[i].y = (float)clampi((int)lrintf(big[i].y / mh * img_h), 0, img_h);
        }
        ocr_order_clockwise(big);
        for (int i = 0; i < 4; i++) {
            big[i].x = fminf(fmaxf(big[i].x, 0), (float)(img_w - 1));
            big[i].y = fminf(fmaxf(big[i].y, 0), (float)(img_h - 1));
        }
        if ((int)ocr_dist(big[0], big[1]) <= 3 || (int)ocr_dist(big[0], big[3]) <= 3) continue;
        if (cnt == cap) {
            ocr_det_box *nb = array_resize(boxes, (size_t)(cap *= 2), sizeof *nb);
            if (!nb) {
                rc = -1;
                goto done;
            }
            boxes = nb;
        }
        memcpy(boxes[cnt].box, big, sizeof big);
        boxes[cnt].score = score;
        cnt++;
    }
done:
    free(seen), free(stack), free(rmin), free(rmax), free(pts), free(hull);
    if (rc) {
        free(boxes);
        return -1;
    }
    *out = boxes;
    *n = cnt;
    return 0;
}
