#include "ocr/resize.h"

#include <math.h>
#include <stdlib.h>

void ocr_resize_rgb(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh)
{
    const double sx = (double)sw / dw, sy = (double)sh / dh;
    for (int y = 0; y < dh; y++) {
        double fy = (y + 0.5) * sy - 0.5;
        int y0 = (int)floor(fy);
        float wy = (float)(fy - y0);
        if (y0 < 0) y0 = 0, wy = 0;
        if (y0 >= sh - 1) y0 = sh - 1, wy = 0;
        const int y1 = y0 + 1 < sh ? y0 + 1 : y0;
        const uint8_t *r0 = src + (size_t)y0 * sw * 3, *r1 = src + (size_t)y1 * sw * 3;
        uint8_t *o = dst + (size_t)y * dw * 3;
        for (int x = 0; x < dw; x++, o += 3) {
            double fx = (x + 0.5) * sx - 0.5;
            int x0 = (int)floor(fx);
            float wx = (float)(fx - x0);
            if (x0 < 0) x0 = 0, wx = 0;
            if (x0 >= sw - 1) x0 = sw - 1, wx = 0;
            const int x1 = x0 + 1 < sw ? x0 + 1 : x0;
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
