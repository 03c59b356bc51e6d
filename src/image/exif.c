/* EXIF orientation reader. See exif.h.
 *
 * Offsets inside the data are attacker-controlled, so every check below is
 * written as "needed <= len - off" after establishing off <= len, which cannot
 * overflow (the naive "off + needed <= len" can wrap). */
#include "image/exif.h"

#include <string.h>

#define TAG_ORIENTATION 0x0112
#define TIFF_SHORT 3
#define TIFF_LONG 4

static unsigned rd16(const uint8_t *p, int big)
{
    return big ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0];
}

static uint32_t rd32(const uint8_t *p, int big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Is there room for n bytes at off? */
static int fits(size_t len, size_t off, size_t n)
{
    return off <= len && n <= len - off;
}

int exif_orientation_tiff(const uint8_t *tiff, size_t len)
{
    if (!tiff)
        return 1;
    /* Tolerate the APP1 prefix: some PNG/WebP writers copy the JPEG form. */
    if (len >= 6 && memcmp(tiff, "Exif\0\0", 6) == 0) {
        tiff += 6;
        len -= 6;
    }
    if (len < 8)
        return 1;

    int big;
    if (tiff[0] == 'I' && tiff[1] == 'I')
        big = 0;
    else if (tiff[0] == 'M' && tiff[1] == 'M')
        big = 1;
    else
        return 1;
    if (rd16(tiff + 2, big) != 42)
        return 1;

    size_t ifd = rd32(tiff + 4, big);
    if (!fits(len, ifd, 2))
        return 1;
    unsigned count = rd16(tiff + ifd, big);
    size_t entry = ifd + 2;
    /* At most 65535 entries of 12 bytes; stop at the first that does not fit. */
    for (unsigned i = 0; i < count && fits(len, entry, 12); i++, entry += 12) {
        const uint8_t *e = tiff + entry;
        if (rd16(e, big) != TAG_ORIENTATION)
            continue;
        unsigned type = rd16(e + 2, big);
        uint32_t n = rd32(e + 4, big);
        if (n < 1)
            return 1;
        /* The value fits in the 4-byte field, left-justified, in the file's
         * byte order, so a SHORT is the first two bytes either way. */
        uint32_t v;
        if (type == TIFF_SHORT)
            v = rd16(e + 8, big);
        else if (type == TIFF_LONG)
            v = rd32(e + 8, big);
        else
            return 1;
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

int exif_orientation_jpeg(const uint8_t *buf, size_t len)
{
    if (!buf || len < 4 || buf[0] != 0xFF || buf[1] != 0xD8)
        return 1;
    size_t off = 2;
    for (;;) {
        /* A marker is 0xFF (possibly repeated as fill) then a code. */
        if (off >= len || buf[off] != 0xFF)
            return 1;
        while (off < len && buf[off] == 0xFF)
            off++;
        if (off >= len)
            return 1;
        unsigned m = buf[off++];
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7))
            continue; /* stand-alone markers have no length */
        if (m == 0xD9 || m == 0xDA || m == 0x00)
            return 1; /* EOI, SOS (entropy data follows; EXIF must come before) or junk */
        if (!fits(len, off, 2))
            return 1;
        size_t seglen = (size_t)buf[off] << 8 | buf[off + 1];
        if (seglen < 2)
            return 1;
        if (m == 0xE1) {
            size_t plen = seglen - 2, avail = len - off - 2;
            if (plen > avail)
                plen = avail; /* truncated: parse what is there, reads stay in bounds */
            const uint8_t *p = buf + off + 2;
            /* APP1 is also used for XMP; only "Exif\0" + pad byte is ours. */
            if (plen >= 6 && memcmp(p, "Exif\0", 5) == 0)
                return exif_orientation_tiff(p + 6, plen - 6);
        }
        if (!fits(len, off, seglen))
            return 1;
        off += seglen;
    }
}

int exif_orientation_png(const uint8_t *buf, size_t len)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (!buf || len < 8 || memcmp(buf, sig, 8) != 0)
        return 1;
    size_t off = 8;
    /* Chunks: 4-byte big-endian length, 4-byte type, data, 4-byte CRC. eXIf may
     * come after IDAT (libpng's png_read_info would not see it then), so walk
     * every chunk header; the walk only touches headers, never the data. */
    while (fits(len, off, 8)) {
        uint32_t clen = rd32(buf + off, 1);
        const uint8_t *type = buf + off + 4;
        if (clen > 0x7FFFFFFFu)
            return 1;
        size_t data = off + 8;
        if (memcmp(type, "eXIf", 4) == 0) {
            size_t avail = len - data;
            return exif_orientation_tiff(buf + data, clen < avail ? clen : avail);
        }
        if (memcmp(type, "IEND", 4) == 0)
            return 1;
        if (!fits(len, data, (size_t)clen + 4))
            return 1;
        off = data + clen + 4;
    }
    return 1;
}

int exif_orientation_webp(const uint8_t *buf, size_t len)
{
    if (!buf || len < 12 || memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WEBP", 4) != 0)
        return 1;
    size_t off = 12;
    /* RIFF chunks: FourCC, 4-byte little-endian size, data padded to even. */
    while (fits(len, off, 8)) {
        uint32_t clen = rd32(buf + off + 4, 0);
        size_t data = off + 8;
        if (memcmp(buf + off, "EXIF", 4) == 0) {
            size_t avail = len - data;
            return exif_orientation_tiff(buf + data, clen < avail ? clen : avail);
        }
        size_t padded = (size_t)clen + (clen & 1);
        if (!fits(len, data, padded))
            return 1;
        off = data + padded;
    }
    return 1;
}

int exif_orientation(const uint8_t *buf, size_t len)
{
    if (!buf)
        return 1;
    if (len >= 2 && buf[0] == 0xFF && buf[1] == 0xD8)
        return exif_orientation_jpeg(buf, len);
    if (len >= 8 && buf[0] == 0x89 && memcmp(buf + 1, "PNG", 3) == 0)
        return exif_orientation_png(buf, len);
    if (len >= 12 && memcmp(buf, "RIFF", 4) == 0)
        return exif_orientation_webp(buf, len);
    return 1;
}
