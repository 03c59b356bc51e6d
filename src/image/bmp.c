/* BMP reader, see bmp.h. Every offset is checked against len before it is
 * read; sizes are computed in 64 bits so no header value can overflow them. */
#include "image/bmp.h"

#include <stdio.h>
#include <string.h>

enum { BI_RGB = 0,
       BI_RLE8 = 1,
       BI_RLE4 = 2,
       BI_BITFIELDS = 3,
       BI_JPEG = 4,
       BI_PNG = 5,
       BI_ALPHABITFIELDS = 6 };

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int bmp_parse_header(const uint8_t *buf, size_t len, bmp_header *h, char *msg, size_t msg_len)
{
    memset(h, 0, sizeof *h);
    if (len < 14 + 12 || buf[0] != 'B' || buf[1] != 'M') {
        snprintf(msg, msg_len, "truncated BMP header");
        return -1;
    }
    h->data_offset = le32(buf + 10);
    uint32_t dib = le32(buf + 14);
    h->dib_size = (int)dib;
    if (dib == 12) { /* OS/2 BITMAPCOREHEADER: 16-bit sizes, 3-byte palette entries */
        h->width = le16(buf + 18);
        h->height = le16(buf + 20);
        h->bpp = (int)le16(buf + 24);
        h->compression = BI_RGB;
    } else if (dib == 40 || dib == 52 || dib == 56 || dib == 108 || dib == 124) {
        if (len < 14 + (size_t)dib) {
            snprintf(msg, msg_len, "truncated BMP header");
            return -1;
        }
        int32_t w = (int32_t)le32(buf + 18), hh = (int32_t)le32(buf + 22);
        if (w <= 0 || hh == 0 || hh == INT32_MIN) {
            snprintf(msg, msg_len, "BMP header says %dx%d", (int)w, (int)hh);
            return -1;
        }
        h->width = (uint32_t)w;
        h->top_down = hh < 0;
        h->height = (uint32_t)(hh < 0 ? -hh : hh);
        h->bpp = (int)le16(buf + 28);
        h->compression = le32(buf + 30);
        h->palette_n = le32(buf + 46);
    } else {
        snprintf(msg, msg_len, "unknown BMP header size %u", (unsigned)dib);
        return -1;
    }
    if (h->compression == BI_RLE8 || h->compression == BI_RLE4 || h->compression == BI_JPEG ||
        h->compression == BI_PNG) {
        snprintf(msg, msg_len, "compressed BMP (method %u) is not supported", (unsigned)h->compression);
        return -2;
    }
    if (h->compression != BI_RGB && h->compression != BI_BITFIELDS &&
        h->compression != BI_ALPHABITFIELDS) {
        snprintf(msg, msg_len, "unknown BMP compression %u", (unsigned)h->compression);
        return -1;
    }
    int b = h->bpp;
    if (b != 1 && b != 4 && b != 8 && b != 16 && b != 24 && b != 32) {
        snprintf(msg, msg_len, "BMP with %d bits per pixel", b);
        return -1;
    }
    if (h->compression != BI_RGB && b != 16 && b != 32) {
        snprintf(msg, msg_len, "BMP bit fields with %d bits per pixel", b);
        return -1;
    }
    if (b == 16) {
        h->mask[0] = 0x7C00;
        h->mask[1] = 0x03E0;
        h->mask[2] = 0x001F;
    } else if (b == 32) {
        h->mask[0] = 0x00FF0000;
        h->mask[1] = 0x0000FF00;
        h->mask[2] = 0x000000FF;
    }
    if (h->compression != BI_RGB) {
        /* Masks sit inside the larger headers, or right after a 40-byte one. */
        size_t at = 14 + 40;
        if (len < at + 12) {
            snprintf(msg, msg_len, "truncated BMP header");
            return -1;
        }
        for (int i = 0; i < 3; i++)
            h->mask[i] = le32(buf + at + 4 * (size_t)i);
        if (!h->mask[0] || !h->mask[1] || !h->mask[2]) {
            snprintf(msg, msg_len, "BMP bit field mask is zero");
            return -1;
        }
    }
    if (b <= 8) {
        uint32_t max = 1u << b;
        if (h->palette_n == 0 || h->palette_n > max)
            h->palette_n = max;
    }
    return 0;
}

/* Scales the bits under mask to 0..255. */
static uint8_t field(uint32_t v, uint32_t mask)
{
    int shift = 0, bits = 0;
    while (!(mask & 1)) {
        mask >>= 1;
        shift++;
    }
    while (mask & 1) {
        mask >>= 1;
        bits++;
    }
    uint64_t max = ((uint64_t)1 << bits) - 1u; /* bits <= 32 */
    uint64_t x = ((uint64_t)v >> shift) & max;
    if (bits >= 8) return (uint8_t)(x >> (bits - 8));
    return (uint8_t)((x * 255u + max / 2) / max);
}

int bmp_read(const uint8_t *buf, size_t len, const bmp_header *h, uint8_t *out, char *msg,
             size_t msg_len)
{
    uint64_t w = h->width, hh = h->height;
    uint64_t stride = ((w * (uint64_t)h->bpp + 31) / 32) * 4;
    if ((uint64_t)h->data_offset + stride * hh > len || h->data_offset < 14 + 12) {
        snprintf(msg, msg_len, "truncated BMP data");
        return -1;
    }
    const uint8_t *pal = NULL;
    int pal_entry = h->dib_size == 12 ? 3 : 4;
    if (h->bpp <= 8) {
        uint64_t pal_at = 14 + (uint64_t)h->dib_size +
            (h->compression == BI_BITFIELDS && h->dib_size == 40 ? 12 : 0);
        if (pal_at + (uint64_t)h->palette_n * pal_entry > h->data_offset) {
            snprintf(msg, msg_len, "truncated BMP palette");
            return -1;
        }
        pal = buf + pal_at;
    }
    for (uint64_t y = 0; y < hh; y++) {
        const uint8_t *row = buf + h->data_offset + stride * (h->top_down ? y : hh - 1 - y);
        uint8_t *d = out + y * w * 3;
        for (uint64_t x = 0; x < w; x++, d += 3) {
            switch (h->bpp) {
            case 1:
            case 4:
            case 8: {
                unsigned per = 8u / (unsigned)h->bpp;
                unsigned byte = row[x / per];
                unsigned sh = 8u - (unsigned)h->bpp * (unsigned)(x % per + 1);
                unsigned i = (byte >> sh) & ((1u << h->bpp) - 1u);
                if (i >= h->palette_n) i = 0; /* out-of-range index: first colour, as browsers do */
                const uint8_t *p = pal + (size_t)i * pal_entry;
                d[0] = p[2];
                d[1] = p[1];
                d[2] = p[0];
                break;
            }
            case 16: {
                uint32_t v = le16(row + x * 2);
                d[0] = field(v, h->mask[0]);
                d[1] = field(v, h->mask[1]);
                d[2] = field(v, h->mask[2]);
                break;
            }
            case 24:
                d[0] = row[x * 3 + 2];
                d[1] = row[x * 3 + 1];
                d[2] = row[x * 3];
                break;
            default: {
                uint32_t v = le32(row + x * 4);
                d[0] = field(v, h->mask[0]);
                d[1] = field(v, h->mask[1]);
                d[2] = field(v, h->mask[2]);
            }
            }
        }
    }
    return 0;
}
