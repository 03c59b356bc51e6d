#include "detect/center_crop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect/letterbox.h"

int center_crop_input(const uint8_t *src, int src_w, int src_h, float *dst, int dst_w, int dst_h,
                      const letterbox_colour *colour)
{
    letterbox_map map;
    if (!src || src_w <= 0 || src_h <= 0) {
        letterbox(NULL, 0, 0, dst, dst_w, dst_h, LETTERBOX_ULTRALYTICS, &map);
        return 0;
    }
    /* The largest centred window with the input's aspect ratio: the rows or
     * columns a resize of the shorter side to the input would crop away. */
    const double r = fmax((double)dst_w / src_w, (double)dst_h / src_h);
    int cw = (int)nearbyint(dst_w / r), ch = (int)nearbyint(dst_h / r);
    if (cw > src_w) cw = src_w;
    if (ch > src_h) ch = src_h;
    if (cw < 1) cw = 1;
    if (ch < 1) ch = 1;
    const int x0 = (src_w - cw) / 2, y0 = (src_h - ch) / 2;
    if (cw == src_w) { /* rows only: the window is contiguous */
        letterbox_with_colour(src + (size_t)y0 * src_w * 3, cw, ch, dst, dst_w, dst_h, LETTERBOX_ULTRALYTICS, colour, &map);
        return 0;
    }
    uint8_t *crop = malloc((size_t)cw * ch * 3);
    if (!crop) return -1;
    for (int y = 0; y < ch; y++)
        memcpy(crop + (size_t)y * cw * 3, src + ((size_t)(y0 + y) * src_w + x0) * 3, (size_t)cw * 3);
    letterbox_with_colour(crop, cw, ch, dst, dst_w, dst_h, LETTERBOX_ULTRALYTICS, colour, &map);
    free(crop);
    return 0;
}
