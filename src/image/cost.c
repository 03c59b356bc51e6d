/* Header walkers and the decode budget. See cost.h. */
#include "image/cost.h"

#include <stdio.h>
#include <string.h>

#include "image/sniff.h"
#include "util/error.h"

static uint32_t be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[1] << 8 | p[0];
}

/* ------------------------------------------------------------------ JPEG */

static bool jpeg_is_sof(uint8_t m)
{
    /* C0-CF less DHT (C4), JPG (C8) and DAC (CC). */
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

typedef struct {
    uint64_t mcus;    /* MCUs of an interleaved scan */
    unsigned hv[256]; /* per component id: blocks per MCU (h x v); 0 = absent */
    unsigned hv_max;  /* the largest of them */
    bool sof;
} jpeg_frame;

static void jpeg_read_sof(const uint8_t *s, size_t n, jpeg_frame *fr, image_cost *c)
{
    if (n < 6)
        return;
    fr->sof = true;
    c->height = be16(s + 1);
    c->width = be16(s + 3);
    /* libjpeg refuses more than 10 components and precisions it was not
     * built for from the header, as corrupt or unsupported: left to it. */
    c->bits = s[0] <= 16 ? s[0] : 0;
    c->samples = s[5] <= 10 ? s[5] : 0;
    unsigned hmax = 1, vmax = 1;
    for (unsigned k = 0; k < s[5] && 6 + 3 * k + 3 <= n; k++) {
        unsigned h = s[7 + 3 * k] >> 4, v = s[7 + 3 * k] & 15;
        h = h ? h : 1;
        v = v ? v : 1;
        hmax = h > hmax ? h : hmax;
        vmax = v > vmax ? v : vmax;
        fr->hv[s[6 + 3 * k]] = h * v;
        fr->hv_max = h * v > fr->hv_max ? h * v : fr->hv_max;
    }
    fr->mcus = ((c->width + 8 * hmax - 1) / (8 * hmax)) * ((c->height + 8 * vmax - 1) / (8 * vmax));
    for (unsigned k = 0; k < s[5] && 6 + 3 * k + 3 <= n; k++)
        c->frame_blocks += fr->mcus * fr->hv[s[6 + 3 * k]];
}

/* Skips entropy-coded data from i: to the next marker that is not a
 * stuffed 0x00, a restart marker or a fill byte. */
static size_t jpeg_skip_entropy(const uint8_t *b, size_t n, size_t i)
{
    while (i + 1 < n) {
        const uint8_t *p = memchr(b + i, 0xFF, n - i - 1);
        if (!p)
            return n;
        i = (size_t)(p - b);
        uint8_t x = b[i + 1];
        if (x == 0xFF)
            i += 1;
        else if (x == 0x00 || (x >= 0xD0 && x <= 0xD7))
            i += 2;
        else
            return i;
    }
    return n;
}

/* Markers only, as libjpeg reads them: the frame, then every scan up to EOI
 * and the blocks it walks (each scan visits every block of its components,
 * whatever its size in bytes). */
static bool read_jpeg(const uint8_t *b, size_t n, image_cost *c)
{
    if (n < 4 || b[0] != 0xFF || b[1] != 0xD8)
        return false;
    jpeg_frame fr;
    memset(&fr, 0, sizeof fr);
    size_t i = 2;
    while (i + 1 < n) {
        if (b[i] != 0xFF) { /* junk between segments: libjpeg skips it (a warning) */
            const uint8_t *p = memchr(b + i, 0xFF, n - i);
            if (!p)
                break;
            i = (size_t)(p - b);
            continue;
        }
        uint8_t m = b[i + 1];
        if (m == 0xFF) {
            i++;
            continue;
        }
        i += 2;
        if (m == 0xD9) /* EOI: libjpeg reads no further */
            break;
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8))
            continue; /* no length */
        if (i + 2 > n)
            break;
        size_t len = be16(b + i);
        if (len < 2)
            break;
        size_t avail = n - i < len ? n - i : len;
        if (jpeg_is_sof(m) && !fr.sof)
            jpeg_read_sof(b + i + 2, avail - 2, &fr, c);
        if (m == 0xDA) {
            c->scans++;
            const uint8_t *s = b + i + 2;
            unsigned ns = avail > 2 ? s[0] : 0;
            for (unsigned k = 0; k < ns && 1 + 2 * k + 2 <= avail - 2; k++) {
                unsigned hv = fr.hv[s[1 + 2 * k]];
                uint64_t add = fr.mcus * (hv ? hv : fr.hv_max); /* < 2^34 */
                c->blocks = c->blocks > UINT64_MAX - add ? UINT64_MAX : c->blocks + add;
            }
            i = jpeg_skip_entropy(b, n, i + avail);
            continue;
        }
        i += avail;
    }
    return fr.sof || c->scans > 0;
}

/* ------------------------------------------------------------------ TIFF */

typedef struct {
    const uint8_t *b;
    size_t n;
    bool le, big; /* little-endian; BigTIFF (8-byte counts and offsets) */
} tiff_in;

/* An unsigned of size bytes at off, 0 when outside the file. */
static uint64_t tiff_uint(const tiff_in *t, uint64_t off, unsigned size)
{
    if (off > t->n || size > t->n - off)
        return 0;
    uint64_t v = 0;
    for (unsigned k = 0; k < size; k++)
        v |= (uint64_t)t->b[off + k] << (8 * (t->le ? k : size - 1 - k));
    return v;
}

static unsigned tiff_type_size(unsigned type)
{
    switch (type) {
    case 1:
    case 2:
    case 6:
    case 7: return 1;
    case 3:
    case 8: return 2;
    case 4:
    case 9:
    case 11:
    case 13: return 4;
    case 5:
    case 10:
    case 12:
    case 16:
    case 17:
    case 18: return 8;
    default: return 0;
    }
}

typedef struct {
    unsigned tag, type, size;
    uint64_t count, at; /* where value 0 is */
} tiff_entry;

static tiff_entry tiff_read_entry(const tiff_in *t, uint64_t off)
{
    tiff_entry e;
    e.tag = (unsigned)tiff_uint(t, off, 2);
    e.type = (unsigned)tiff_uint(t, off + 2, 2);
    e.size = tiff_type_size(e.type);
    e.count = tiff_uint(t, off + 4, t->big ? 8 : 4);
    uint64_t inline_at = off + (t->big ? 12 : 8), room = t->big ? 8 : 4;
    bool fits = e.size && e.count <= room / e.size;
    e.at = fits ? inline_at : tiff_uint(t, inline_at, t->big ? 8 : 4);
    return e;
}

/* Value k of an integer entry (0 when absent or outside the file). */
static uint64_t tiff_value(const tiff_in *t, const tiff_entry *e, uint64_t k)
{
    if (k >= e->count || e->size == 0 || e->size > 8 || e->type == 5 || e->type == 10 || e->type == 11 ||
        e->type == 12)
        return 0;
    return tiff_uint(t, e->at + k * e->size, e->size);
}

/* How many of an entry's values lie in the file (a count is attacker-set). */
static uint64_t tiff_values_in_file(const tiff_in *t, const tiff_entry *e)
{
    if (!e->size || e->at >= t->n)
        return 0;
    uint64_t room = (t->n - e->at) / e->size;
    return e->count < room ? e->count : room;
}

/* JPEG-compressed strips or tiles (Compression 7): each is a JPEG, which
 * libtiff lets repeat up to 100 scans. The blocks their scans walk are
 * summed into c->blocks (the JPEG scan budget applies). Strips may all point
 * at the same bytes: past 4x the file's size the walk stops and the rest is
 * estimated from the strips walked. */
static void tiff_walk_jpeg_strips(const tiff_in *t, const tiff_entry *offs, const tiff_entry *counts, image_cost *c)
{
    uint64_t n = tiff_values_in_file(t, offs), walked = 0, k = 0, blocks = 0;
    uint64_t nc = tiff_values_in_file(t, counts);
    for (; k < n && k < nc && k <= IMAGE_TIFF_MAX_STRIPS && walked <= 4 * (uint64_t)t->n; k++) {
        uint64_t at = tiff_value(t, offs, k), len = tiff_value(t, counts, k);
        if (at >= t->n)
            continue;
        len = len < t->n - at ? len : t->n - at;
        image_cost s;
        memset(&s, 0, sizeof s);
        read_jpeg(t->b + at, (size_t)len, &s);
        walked += len;
        blocks = blocks > UINT64_MAX / 2 - s.blocks ? UINT64_MAX / 2 : blocks + s.blocks;
    }
    if (k && k < n && k < nc) /* stopped early: the rest at the same rate */
        blocks = blocks / k > UINT64_MAX / n ? UINT64_MAX : blocks / k * n;
    c->blocks = blocks;
}

static void tiff_read_ifd0(const tiff_in *t, uint64_t off, uint64_t entries, image_cost *c)
{
    unsigned esize = t->big ? 20 : 12;
    uint64_t first = off + (t->big ? 8 : 2);
    c->samples = 1; /* TIFF's defaults */
    c->bits = 1;
    tiff_entry offs = {0}, counts = {0};
    uint64_t compression = 1;
    for (uint64_t k = 0; k < entries; k++) {
        tiff_entry e = tiff_read_entry(t, first + k * esize);
        uint64_t have = tiff_values_in_file(t, &e);
        switch (e.tag) {
        case 259: compression = tiff_value(t, &e, 0); break;
        case 279:
        case 325: counts = e; break; /* StripByteCounts, TileByteCounts */
        case 256: c->width = tiff_value(t, &e, 0); break;
        case 257: c->height = tiff_value(t, &e, 0); break;
        case 258: /* BitsPerSample: one per sample; the largest counts */
            c->bits = 0;
            for (uint64_t s = 0; s < have && s < 65536; s++) {
                uint64_t v = tiff_value(t, &e, s);
                c->bits = v > c->bits ? (unsigned)(v > 65535 ? 65535 : v) : c->bits;
            }
            break;
        case 277: {
            uint64_t v = tiff_value(t, &e, 0);
            c->samples = (unsigned)(v > 65535 ? 65535 : v);
            break;
        }
        case 273: /* StripOffsets, TileOffsets */
        case 324:
            c->strips = e.count;
            offs = e;
            break;
        case 322: c->tile_w = tiff_value(t, &e, 0); break;
        case 323: c->tile_h = tiff_value(t, &e, 0); break;
        case 338: /* ExtraSamples: 1 associated, 2 unassociated alpha */
            for (uint64_t s = 0; s < have && s < 64; s++)
                if (tiff_value(t, &e, s) == 1 || tiff_value(t, &e, s) == 2)
                    c->alpha = true;
            break;
        default: break;
        }
    }
    if (compression == 7)
        tiff_walk_jpeg_strips(t, &offs, &counts, c);
}

/* The first directory's geometry, and the directories in the chain: libtiff
 * walks them all to count pages, though only the first is decoded. */
static bool read_tiff(const uint8_t *b, size_t n, image_cost *c)
{
    if (n < 8)
        return false;
    tiff_in t = {b, n, b[0] == 'I', false};
    unsigned version = (unsigned)tiff_uint(&t, 2, 2);
    if (version == 43)
        t.big = true;
    else if (version != 42)
        return false;
    uint64_t off = t.big ? tiff_uint(&t, 8, 8) : tiff_uint(&t, 4, 4);
    unsigned csize = t.big ? 8 : 2, esize = t.big ? 20 : 12;
    while (off != 0 && c->pages <= IMAGE_TIFF_MAX_PAGES) {
        if (off > n || csize > n - off)
            break;
        uint64_t entries = tiff_uint(&t, off, csize);
        if (entries > (n - off - csize) / esize)
            break; /* the directory runs past the end: libtiff refuses it */
        if (c->pages == 0)
            tiff_read_ifd0(&t, off, entries, c);
        c->pages++;
        off = tiff_uint(&t, off + csize + entries * esize, t.big ? 8 : 4);
    }
    return c->pages > 0;
}

/* ------------------------------------------------------------------ PNG */

static bool read_png(const uint8_t *b, size_t n, image_cost *c)
{
    if (n < 26 || memcmp(b + 12, "IHDR", 4))
        return false;
    c->width = image_be32(b + 16);
    c->height = image_be32(b + 20);
    unsigned depth = b[24], type = b[25];
    static const unsigned samples[7] = {1, 0, 3, 3, 2, 0, 4}; /* a palette decodes to RGB(A) */
    if (type > 6 || !samples[type] || depth == 0 || depth > 16 || (depth & (depth - 1)))
        return false; /* libpng refuses it from the header */
    c->samples = samples[type];
    c->bits = type == 3 ? 8 : depth;
    return true;
}

/* ------------------------------------------------------------------ GIF */

/* Skips data sub-blocks from i; returns the offset after the terminator. */
static size_t gif_skip_blocks(const uint8_t *b, size_t n, size_t i)
{
    while (i < n) {
        size_t sz = b[i];
        i += 1 + sz;
        if (sz == 0)
            break;
    }
    return i;
}

/* Counts frames (libnsgif scans them all before decoding the first); the
 * canvas grows to hold frames that stick out of the screen. */
static bool read_gif(const uint8_t *b, size_t n, image_cost *c)
{
    if (n < 13)
        return false;
    c->width = le16(b + 6);
    c->height = le16(b + 8);
    c->samples = 4;
    c->bits = 8;
    size_t i = 13 + ((b[10] & 0x80) ? 3u << ((b[10] & 7) + 1) : 0);
    while (i < n && c->pages <= IMAGE_GIF_MAX_FRAMES) {
        if (b[i] == 0x21) {
            i = gif_skip_blocks(b, n, i + 2);
        } else if (b[i] == 0x2C && i + 10 <= n) {
            uint64_t x1 = le16(b + i + 1) + (uint64_t)le16(b + i + 5), y1 = le16(b + i + 3) + (uint64_t)le16(b + i + 7);
            c->width = x1 > c->width ? x1 : c->width;
            c->height = y1 > c->height ? y1 : c->height;
            uint8_t fl = b[i + 9];
            i += 10 + ((fl & 0x80) ? 3u << ((fl & 7) + 1) : 0) + 1; /* + LZW minimum code size */
            i = gif_skip_blocks(b, n, i);
            c->pages++;
        } else {
            break; /* trailer, or damage the decoder will report */
        }
    }
    return true;
}

/* ---------------------------------------------------------------- budget */

bool image_cost_read(image_format f, const uint8_t *buf, size_t len, image_cost *c)
{
    memset(c, 0, sizeof *c);
    switch (f) {
    case IMAGE_FMT_JPEG: return read_jpeg(buf, len, c);
    case IMAGE_FMT_TIFF: return read_tiff(buf, len, c);
    case IMAGE_FMT_PNG: return read_png(buf, len, c);
    case IMAGE_FMT_GIF: return read_gif(buf, len, c);
    default: return false; /* WebP, BMP: pixels and 4 samples at most; HEIF: decode.c */
    }
}

/* "12.3 million" */
static double millions(uint64_t v)
{
    return (double)v / 1e6;
}

image_status image_cost_check(image_format f, const image_cost *c, const image_decode_opts *opts, char *msg,
                              size_t msg_len)
{
    const char *fmt = image_format_title(f);
    uint64_t budget = opts ? opts->max_pixels : 0;
    if (c->samples > IMAGE_MAX_SAMPLES + 1 || (c->samples == IMAGE_MAX_SAMPLES + 1 && !c->alpha)) {
        err_printf(msg, msg_len, "%s has %u samples per pixel, over the limit of %d (%d with alpha)", fmt,
                   c->samples, IMAGE_MAX_SAMPLES, IMAGE_MAX_SAMPLES + 1);
        return IMAGE_TOO_COMPLEX;
    }
    if (c->bits > IMAGE_MAX_BITS) {
        err_printf(msg, msg_len, "%s has %u bits per sample, over the limit of %d", fmt, c->bits, IMAGE_MAX_BITS);
        return IMAGE_TOO_COMPLEX;
    }
    if (f == IMAGE_FMT_JPEG && c->scans > IMAGE_JPEG_MAX_SCANS) {
        err_printf(msg, msg_len, "JPEG has %llu scans, over the limit of %d", (unsigned long long)c->scans,
                   IMAGE_JPEG_MAX_SCANS);
        return IMAGE_TOO_COMPLEX;
    }
    if (f == IMAGE_FMT_TIFF && budget && c->blocks / IMAGE_JPEG_SCAN_PASSES > budget / 64) {
        err_printf(msg, msg_len,
                   "TIFF's JPEG strips walk %.1f million 8x8 blocks, over the budget of %d passes over a "
                   "--max-pixels image (%.1f million)",
                   millions(c->blocks), IMAGE_JPEG_SCAN_PASSES, millions(budget / 64 * IMAGE_JPEG_SCAN_PASSES));
        return IMAGE_TOO_COMPLEX;
    }
    if (f == IMAGE_FMT_JPEG && budget && c->blocks / IMAGE_JPEG_SCAN_PASSES > budget / 64) {
        err_printf(msg, msg_len,
                   "JPEG's %llu scans walk %.1f million 8x8 blocks, over the budget of %d passes over a "
                   "--max-pixels image (%.1f million)",
                   (unsigned long long)c->scans, millions(c->blocks), IMAGE_JPEG_SCAN_PASSES,
                   millions(budget / 64 * IMAGE_JPEG_SCAN_PASSES));
        return IMAGE_TOO_COMPLEX;
    }
    /* 128 bytes of coefficients a block = 32 4-byte pixels. */
    if (f == IMAGE_FMT_JPEG && budget && c->scans > 1 && c->frame_blocks > budget / 32) {
        err_printf(msg, msg_len,
                   "JPEG of %llu scans is decoded through %.0f MB of coefficients (%llux%llu, %u components), over "
                   "the --max-pixels budget of %.0f MB",
                   (unsigned long long)c->scans, (double)c->frame_blocks * 128 / 1e6, (unsigned long long)c->width,
                   (unsigned long long)c->height, c->samples, (double)budget * 4 / 1e6);
        return IMAGE_TOO_COMPLEX;
    }
    if (f == IMAGE_FMT_TIFF && c->pages > IMAGE_TIFF_MAX_PAGES) {
        err_printf(msg, msg_len, "TIFF has more pages than the limit of %d", IMAGE_TIFF_MAX_PAGES);
        return IMAGE_TOO_COMPLEX;
    }
    if (f == IMAGE_FMT_GIF && c->pages > IMAGE_GIF_MAX_FRAMES) {
        err_printf(msg, msg_len, "GIF has more frames than the limit of %d", IMAGE_GIF_MAX_FRAMES);
        return IMAGE_TOO_COMPLEX;
    }
    if (f == IMAGE_FMT_TIFF && c->strips > IMAGE_TIFF_MAX_STRIPS) {
        err_printf(msg, msg_len, "TIFF has %llu strips or tiles, over the limit of %d", (unsigned long long)c->strips,
                   IMAGE_TIFF_MAX_STRIPS);
        return IMAGE_TOO_COMPLEX;
    }
    uint64_t side_w = c->width > 1024 ? c->width : 1024, side_h = c->height > 1024 ? c->height : 1024;
    if (f == IMAGE_FMT_TIFF && (c->tile_w > side_w + 15 || c->tile_h > side_h + 15)) {
        err_printf(msg, msg_len, "TIFF tiles of %llux%llu are larger than its %llux%llu image",
                   (unsigned long long)c->tile_w, (unsigned long long)c->tile_h, (unsigned long long)c->width,
                   (unsigned long long)c->height);
        return IMAGE_TOO_COMPLEX;
    }
    /* The pixel budget in pixels of up to 4 decoded bytes. Plain pixels over
     * it are left to image_check_dims (image_too_large, as before). */
    uint64_t bytes = (uint64_t)(c->samples ? c->samples : 1) * ((c->bits + 7) / 8 ? (c->bits + 7) / 8 : 1);
    uint64_t units = (bytes + 3) / 4, px, cost;
    if (budget && units > 1 && !__builtin_mul_overflow(c->width, c->height, &px) && px <= budget &&
        (__builtin_mul_overflow(px, units, &cost) || cost > budget)) {
        err_printf(msg, msg_len,
                   "%s is %llux%llu with %u samples of %u bits (%.1f million 4-byte pixels), over the "
                   "--max-pixels limit of %.1f million",
                   fmt, (unsigned long long)c->width, (unsigned long long)c->height, c->samples, c->bits,
                   millions(px) * (double)units, millions(budget));
        return IMAGE_TOO_COMPLEX;
    }
    return IMAGE_OK;
}

image_status image_check_cost(image_format f, const uint8_t *buf, size_t len, const image_decode_opts *opts,
                              char *msg, size_t msg_len)
{
    image_cost c;
    if (!image_cost_read(f, buf, len, &c))
        return IMAGE_OK;
    return image_cost_check(f, &c, opts, msg, msg_len);
}

image_status image_check_heif_dims(image_format f, uint64_t w, uint64_t h, const image_decode_opts *opts, char *msg,
                                   size_t msg_len)
{
    if ((f != IMAGE_FMT_HEIF && f != IMAGE_FMT_AVIF) || !opts || !opts->max_pixels_heif ||
        w * h <= opts->max_pixels_heif) /* each side < 2^31 (libvips) */
        return IMAGE_OK;
    err_printf(msg, msg_len, "%s image is %llux%llu (%.1f megapixels), over the --max-pixels-heif limit of %.1f megapixels",
               image_format_title(f), (unsigned long long)w, (unsigned long long)h, millions(w * h),
               millions(opts->max_pixels_heif));
    return IMAGE_TOO_LARGE;
}
