#include "ocr/resize.h"

#include <math.h>
#include <stdlib.h>

/* Where output pixel i samples a source of n pixels at the given scale (pixel
 * centres aligned, as cv2.INTER_LINEAR): the two neighbours and the weight of
 * the second, clamped at the edges. */
static inline void source_pos(int i, double scale, int n, int *i0, int *i1, float *w)
{
    double f = (i + 0.5) * scale - 0.5;
    int a = (int)floor(f);
    float wa = (float)(f - a);
    if (a < 0) a = 0, wa = 0;
    if (a >= n - 1) a = n - 1, wa = 0;
    *i0 = a;
    *i1 = a + 1 < n ? a + 1 : a;
    *w = wa;
}

void ocr_resize_rgb(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh)
{
    const double sx = (double)sw / dw, sy = (double)sh / dh;
    for (int y = 0; y < dh; y++) {
        int y0, y1;
        float wy;
        source_pos(y, sy, sh, &y0, &y1, &wy);
        const uint8_t *r0 = src + (size_t)y0 * sw * 3, *r1 = src + (size_t)y1 * sw * 3;
        uint8_t *o = dst + (size_t)y * dw * 3;
        for (int x = 0; x < dw; x++, o += 3) {
            int x0, x1;
            float wx;
            source_pos(x, sx, sw, &x0, &x1, &wx);
            for (int c = 0; c < 3; c++) {
                float a = r0[x0 * 3 + c] + (r0[x1 * 3 + c] - r0[x0 * 3 + c]) * wx;
                float b = r1[x0 * 3 + c] + (r1[x1 * 3 + c] - r1[x0 * 3 + c]) * wx;
                float v = a + (b - a) * wy + 0.5f;
                o[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255
                                                     : v);
            }
        }
    }
}
