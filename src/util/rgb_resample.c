/* Area-average resampling of RGB pixels: the LLM stage's image and a video's
 * contact sheet, where small detail should stay legible rather than alias. */
#include "util/rgb_resample.h"

#include <stdlib.h>

uint8_t *rgb_resample(const uint8_t *src, int w, int h, int tw, int th)
{
    uint8_t *dst = malloc((size_t)tw * th * 3);
    if (!dst) return NULL;
    double sx = (double)w / tw, sy = (double)h / th;
    for (int y = 0; y < th; y++) {
        /* Source rows this target row covers; at least one (upscaling picks the nearest). */
        int y0 = (int)(y * sy), y1 = (int)((y + 1) * sy + 0.999999);
        if (y1 > h) y1 = h;
        if (y1 <= y0) y1 = y0 + 1;
        for (int x = 0; x < tw; x++) {
            int x0 = (int)(x * sx), x1 = (int)((x + 1) * sx + 0.999999);
            if (x1 > w) x1 = w;
            if (x1 <= x0) x1 = x0 + 1;
            unsigned long sum[3] = {0, 0, 0};
            for (int yy = y0; yy < y1; yy++) {
                const uint8_t *p = src + ((size_t)yy * w + x0) * 3;
                for (int xx = x0; xx < x1; xx++, p += 3) {
                    sum[0] += p[0];
                    sum[1] += p[1];
                    sum[2] += p[2];
                }
            }
            unsigned long n = (unsigned long)(y1 - y0) * (unsigned long)(x1 - x0);
            uint8_t *d = dst + ((size_t)y * tw + x) * 3;
            for (int c = 0; c < 3; c++) d[c] = (uint8_t)((sum[c] + n / 2) / n);
        }
    }
    return dst;
}
