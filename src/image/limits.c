/* Pixel budget and shrink-on-load choice. See limits.h. */
#include "image/limits.h"

#include <limits.h>
#include <stdio.h>

/* "12.3 megapixels" or, for small budgets where that would print 0.0, "4096 pixels". */
static void fmt_pixels(char *dst, size_t n, uint64_t px, const char *unit_suffix)
{
    if (px >= 100000)
        snprintf(dst, n, "%.1f megapixel%s", (double)px / 1e6, unit_suffix);
    else
        snprintf(dst, n, "%llu pixel%s", (unsigned long long)px, unit_suffix);
}

image_status image_check_dims(uint64_t w, uint64_t h, const image_decode_opts *opts, const char *fmt, char *msg,
                              size_t msg_len)
{
    char dummy[1];
    if (!msg || msg_len == 0)
        msg = dummy, msg_len = sizeof dummy;
    if (w == 0 || h == 0) {
        snprintf(msg, msg_len, "%s header says %llux%llu", fmt, (unsigned long long)w, (unsigned long long)h);
        return IMAGE_CORRUPT;
    }
    uint64_t px = w * h; /* each side < 2^32, so no overflow */
    if (opts && opts->max_pixels > 0 && px > opts->max_pixels) {
        char have[48], limit[48];
        fmt_pixels(have, sizeof have, px, "s");
        fmt_pixels(limit, sizeof limit, opts->max_pixels, "");
        snprintf(msg, msg_len, "image is %llux%llu (%s), over the %s limit", (unsigned long long)w,
                 (unsigned long long)h, have, limit);
        return IMAGE_TOO_LARGE;
    }
    if (w > INT_MAX || h > INT_MAX || px > SIZE_MAX / 3) {
        snprintf(msg, msg_len, "image is %llux%llu, too large to decode", (unsigned long long)w,
                 (unsigned long long)h);
        return IMAGE_TOO_LARGE;
    }
    return IMAGE_OK;
}

bool image_covers(const image_decode_opts *o, uint64_t w, uint64_t h, bool swap)
{
    uint64_t ow = swap ? h : w, oh = swap ? w : h;
    bool wide = ow >= (uint64_t)o->min_width, tall = oh >= (uint64_t)o->min_height;
    return o->fit ? (wide || tall) : (wide && tall);
}

int image_jpeg_shrink(uint64_t w, uint64_t h, const image_decode_opts *opts, bool swap)
{
    if (!opts || opts->min_width <= 0 || opts->min_height <= 0)
        return 1;
    if (opts->shrink_from > 0 && (w > h ? w : h) < (uint64_t)opts->shrink_from)
        return 1;
    static const int shrinks[] = {8, 4, 2};
    for (size_t i = 0; i < sizeof shrinks / sizeof shrinks[0]; i++) {
        uint64_t s = (uint64_t)shrinks[i];
        /* A side shorter than the factor: libvips 8.14 makes a header of
         * height 0 and fails an assertion (abort) building it. */
        if (w >= s && h >= s && image_covers(opts, (w + s - 1) / s, (h + s - 1) / s, swap))
            return shrinks[i];
    }
    return 1;
}
