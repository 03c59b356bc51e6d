/* Unit tests for src/image/cost.c: the header walkers count what decoding
 * would cost (JPEG scans and blocks, TIFF samples, bits, pages, strips and
 * tiles, GIF frames) and the budget refuses bombs with IMAGE_TOO_COMPLEX
 * while real files pass. The bombs are written here byte by byte; the real
 * files by libjpeg. Every input is an exact-size heap copy, so ASan flags a
 * read past the end, and every prefix of each input is walked too. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "check.h"
#include "image/cost.h"
#include "image/decode.h"

typedef struct {
    uint8_t *data;
    size_t len, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data)
            exit(2);
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put8(bytes *b, unsigned v)
{
    uint8_t x = (uint8_t)v;
    put(b, &x, 1);
}

static void put16be(bytes *b, unsigned v)
{
    put8(b, v >> 8);
    put8(b, v);
}

static void put16le(bytes *b, unsigned v)
{
    put8(b, v);
    put8(b, v >> 8);
}

static void put32le(bytes *b, uint32_t v)
{
    put16le(b, v & 0xFFFF);
    put16le(b, v >> 16);
}

/* ------------------------------------------------------------ JPEG bombs */

typedef struct {
    bytes *out;
    unsigned acc, n;
} bitw;

static void bits_put(bitw *w, unsigned v, unsigned nbits)
{
    for (int i = (int)nbits - 1; i >= 0; i--) {
        w->acc = (w->acc << 1) | ((v >> i) & 1);
        if (++w->n == 8) {
            put8(w->out, w->acc);
            if (w->acc == 0xFF)
                put8(w->out, 0);
            w->acc = w->n = 0;
        }
    }
}

static void bits_done(bitw *w)
{
    if (w->n)
        bits_put(w, (1u << (8 - w->n)) - 1, 8 - w->n);
}

static void segment(bytes *b, unsigned marker, const uint8_t *body, size_t n)
{
    put8(b, 0xFF);
    put8(b, marker);
    put16be(b, (unsigned)n + 2);
    put(b, body, n);
}

/* A progressive JPEG of one flat colour: a DC scan (per 4 components), then
 * `scans - dc` AC scans (first at Al=13, then refinements: all valid), each
 * an end-of-band run over every block. Like tests/integration/decode_bombs.py. */
static bytes jpeg_bomb(unsigned w, unsigned h, unsigned comps, unsigned scans, bool junk_between)
{
    bytes b = {0};
    put8(&b, 0xFF);
    put8(&b, 0xD8);
    uint8_t dqt[65] = {0};
    memset(dqt + 1, 1, 64);
    segment(&b, 0xDB, dqt, sizeof dqt);
    uint8_t sof[6 + 3 * 16] = {8, (uint8_t)(h >> 8), (uint8_t)h, (uint8_t)(w >> 8), (uint8_t)w, (uint8_t)comps};
    for (unsigned c = 0; c < comps; c++) {
        sof[6 + 3 * c] = (uint8_t)(c + 1);
        sof[7 + 3 * c] = 0x11;
    }
    segment(&b, 0xC2, sof, 6 + 3 * comps);
    uint8_t dht_dc[18] = {0x00, 0, 1};
    segment(&b, 0xC4, dht_dc, sizeof dht_dc);
    uint8_t dht_ac[17 + 15] = {0x10, 0, 0, 0, 15};
    for (unsigned r = 0; r < 15; r++)
        dht_ac[17 + r] = (uint8_t)(r << 4);
    segment(&b, 0xC4, dht_ac, sizeof dht_ac);
    uint64_t blocks = (uint64_t)((w + 7) / 8) * ((h + 7) / 8);
    unsigned written = 0;
    for (unsigned first = 0; first < comps; first += 4) {
        unsigned n = comps - first < 4 ? comps - first : 4;
        uint8_t sos[1 + 8 + 3] = {(uint8_t)n};
        for (unsigned k = 0; k < n; k++)
            sos[1 + 2 * k] = (uint8_t)(first + k + 1);
        segment(&b, 0xDA, sos, 1 + 2 * n + 3);
        bitw bw = {&b, 0, 0};
        for (uint64_t k = 0; k < blocks * n; k++)
            bits_put(&bw, 0, 1);
        bits_done(&bw);
        written++;
    }
    for (unsigned c = 0; c < comps && c < 4; c++)
        for (unsigned k = 1; k < 64; k++)
            for (int al = 13; al >= 0 && written < scans; al--) {
                if (junk_between)
                    put8(&b, 0x55); /* libjpeg skips it with a warning */
                uint8_t sos[6] = {1, (uint8_t)(c + 1), 0, (uint8_t)k, (uint8_t)k,
                                  (uint8_t)((al == 13 ? 0 : (al + 1) << 4) | al)};
                segment(&b, 0xDA, sos, sizeof sos);
                bitw bw = {&b, 0, 0};
                for (uint64_t left = blocks; left;) {
                    unsigned run = left < 32767 ? (unsigned)left : 32767, r = 0;
                    while ((2u << r) <= run)
                        r++;
                    bits_put(&bw, r, 4);
                    bits_put(&bw, run - (1u << r), r);
                    left -= run;
                }
                bits_done(&bw);
                written++;
            }
    put8(&b, 0xFF);
    put8(&b, 0xD9);
    return b;
}

/* A real JPEG from libjpeg: progressive or baseline, with a restart marker
 * after every MCU (0xFFD0-D7 inside the entropy data). */
static bytes jpeg_real(int w, int h, bool progressive, int restart)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long mem_len = 0;
    jpeg_mem_dest(&c, &mem, &mem_len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    if (progressive)
        jpeg_simple_progression(&c);
    c.restart_interval = (unsigned)restart;
    jpeg_start_compress(&c, TRUE);
    uint8_t *row = malloc((size_t)w * 3);
    while (c.next_scanline < c.image_height) {
        for (int x = 0; x < w * 3; x++) /* noise: 0xFF bytes in the entropy data */
            row[x] = (uint8_t)((x * 131 + c.next_scanline * 71) ^ (x * c.next_scanline));
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    bytes b = {0};
    put(&b, mem, mem_len);
    free(mem);
    return b;
}

/* ------------------------------------------------------------ TIFF bombs */

typedef struct {
    unsigned tag, type;
    uint32_t n;
    const uint32_t *vals;
} tag_spec;

/* A little-endian TIFF: `pages` copies of one IFD (the last may loop back
 * to the first), values that do not fit inline after each IFD. */
static bytes tiff_make(const tag_spec *tags, unsigned ntags, unsigned pages, bool loop)
{
    bytes b = {0};
    put(&b, "II*\0", 4);
    put32le(&b, 8);
    for (unsigned p = 0; p < pages; p++) {
        size_t at = b.len, extra = at + 2 + 12 * ntags + 4, extra_len = 0;
        put16le(&b, ntags);
        for (unsigned t = 0; t < ntags; t++) {
            unsigned size = tags[t].type == 3 ? 2 : 4;
            put16le(&b, tags[t].tag);
            put16le(&b, tags[t].type);
            put32le(&b, tags[t].n);
            if (tags[t].n * size <= 4) {
                uint32_t v = size == 2 && tags[t].n == 2 ? tags[t].vals[0] | tags[t].vals[1] << 16 : tags[t].vals[0];
                put32le(&b, v);
            } else {
                put32le(&b, (uint32_t)(extra + extra_len));
                extra_len += (tags[t].n > 70000 ? 1 : tags[t].n) * size; /* a lying count: one value */
            }
        }
        size_t next = extra + extra_len;
        put32le(&b, p + 1 < pages ? (uint32_t)next : loop ? 8
                                                          : 0);
        for (unsigned t = 0; t < ntags; t++) {
            unsigned size = tags[t].type == 3 ? 2 : 4;
            if (tags[t].n * size > 4)
                for (uint32_t k = 0; k < (tags[t].n > 70000 ? 1 : tags[t].n); k++)
                    size == 2 ? put16le(&b, tags[t].vals[k]) : put32le(&b, tags[t].vals[k]);
        }
    }
    return b;
}

static uint32_t vals_same[70000];

/* w x h, spp samples of bps bits; extra: ExtraSamples value (0: none). */
static bytes tiff_simple(uint32_t w, uint32_t h, uint32_t spp, uint32_t bps, uint32_t extra, unsigned pages,
                         uint32_t strips)
{
    uint32_t W[] = {w}, H[] = {h}, S[] = {spp}, one[] = {1}, E[] = {extra}, rows[] = {(h + strips - 1) / strips};
    for (size_t i = 0; i < sizeof vals_same / sizeof vals_same[0]; i++)
        vals_same[i] = bps;
    tag_spec t[] = {{256, 4, 1, W}, {257, 4, 1, H}, {258, 3, spp, vals_same}, {259, 3, 1, one}, {277, 3, 1, S}, {273, 4, strips, vals_same}, {278, 4, 1, rows}, {279, 4, strips, vals_same}, {338, 3, 1, E}};
    return tiff_make(t, extra ? 9 : 8, pages, false);
}

/* ------------------------------------------------------------ GIF */

static bytes gif_frames(unsigned frames)
{
    bytes b = {0};
    put(&b, "GIF89a", 6);
    put16le(&b, 1);
    put16le(&b, 1);
    put(&b, "\x80\x00\x00\x00\x00\x00\xff\xff\xff", 9);
    static const uint8_t frame[] = {0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0x02, 0x02, 0x44, 0x01, 0x00};
    for (unsigned i = 0; i < frames; i++)
        put(&b, frame, sizeof frame);
    put8(&b, 0x3B);
    return b;
}

/* ------------------------------------------------------------ checks */

static image_status check(image_format f, const bytes *b, uint64_t max_pixels, image_cost *c, char *msg)
{
    uint8_t *copy = malloc(b->len);
    memcpy(copy, b->data, b->len);
    image_decode_opts o = {.max_pixels = max_pixels};
    image_cost tmp = {0};
    c = c ? c : &tmp;
    msg[0] = '\0';
    image_status st = image_cost_read(f, copy, b->len, c) ? image_cost_check(f, c, &o, msg, 256) : IMAGE_OK;
    /* Every prefix walks without reading past its end, and counts no more. */
    for (size_t n = 0; n < b->len; n += n < 4096 ? 1 : b->len / 512 + 1) {
        uint8_t *pre = malloc(n ? n : 1);
        memcpy(pre, b->data, n);
        image_cost pc;
        image_cost_read(f, pre, n, &pc);
        CHECK(pc.scans <= c->scans && pc.pages <= c->pages + 1);
        free(pre);
    }
    free(copy);
    return st;
}

static void test_jpeg(void)
{
    char msg[256];
    image_cost c;
    /* The bomb: 2001 scans over 7000x7000. */
    bytes b = jpeg_bomb(7000, 7000, 3, 2001, false);
    CHECK_EQ_INT(check(IMAGE_FMT_JPEG, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    CHECK_EQ_INT(c.scans, 2001);
    CHECK_EQ_INT(c.width, 7000);
    CHECK_EQ_INT(c.samples, 3);
    CHECK(strstr(msg, "2001 scans") && strstr(msg, "500"));
    free(b.data);

    /* Under the scan cap, over the block budget: 400 scans of 49 MP. */
    b = jpeg_bomb(7000, 7000, 1, 400, false);
    CHECK_EQ_INT(check(IMAGE_FMT_JPEG, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    CHECK_EQ_INT(c.scans, 400);
    CHECK_EQ_INT(c.blocks, 400ull * 875 * 875);
    CHECK(strstr(msg, "passes"));
    /* The same scans over a small image cost little: allowed. */
    free(b.data);
    b = jpeg_bomb(640, 480, 1, 400, false);
    CHECK_EQ_INT(check(IMAGE_FMT_JPEG, &b, 50000000, &c, msg), IMAGE_OK);
    /* Few scans, but a progressive CMYK 7000x7000 decodes through 392 MB of
     * coefficients: over the budget (50M 4-byte pixels = 200 MB). 4:4:4
     * YCbCr of 25 MP (150 MB) passes. */
    free(b.data);
    b = jpeg_bomb(7000, 7000, 4, 5, false);
    CHECK_EQ_INT(check(IMAGE_FMT_JPEG, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    CHECK_EQ_INT(c.frame_blocks, 4ull * 875 * 875);
    CHECK(strstr(msg, "coefficients"));
    free(b.data);
    b = jpeg_bomb(5000, 5000, 3, 5, false);
    CHECK_EQ_INT(check(IMAGE_FMT_JPEG, &b, 50000000, &c, msg), IMAGE_OK);
    /* No pixel budget: only the scan cap. */
    free(b.data);
    b = jpeg_bomb(7000, 7000, 1, 400, false);
    CHECK_EQ_INT(check(IMAGE_FMT_JPEG, &b, 0, &c, msg), IMAGE_OK);
    free(b.data);

    /* Junk between segments is skipped, as libjpeg does. */
    b = jpeg_bomb(64, 64, 1, 600, true);
    CHECK_EQ_INT(check(IMAGE_FMT_JPEG, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    CHECK_EQ_INT(c.scans, 600);
    free(b.data);

    /* Band bomb: 10 components. */
    b = jpeg_bomb(1000, 1000, 10, 3, false);
    CHECK_EQ_INT(check(IMAGE_FMT_JPEG, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    CHECK_EQ_INT(c.samples, 10);
    CHECK(strstr(msg, "10 samples per pixel"));
    free(b.data);

    /* Real files: libjpeg's progression (10 scans for YCbCr), and a
     * baseline file with a restart marker after every MCU and noise that
     * puts stuffed 0xFF bytes in the data: one scan. */
    b = jpeg_real(333, 250, true, 0);
    CHECK_EQ_INT(check(IMAGE_FMT_JPEG, &b, 50000000, &c, msg), IMAGE_OK);
    CHECK_EQ_INT(c.scans, 10);
    CHECK_EQ_INT(c.width, 333);
    CHECK_EQ_INT(c.height, 250);
    CHECK_EQ_INT(c.bits, 8);
    free(b.data);
    b = jpeg_real(333, 250, false, 1);
    CHECK_EQ_INT(check(IMAGE_FMT_JPEG, &b, 50000000, &c, msg), IMAGE_OK);
    CHECK_EQ_INT(c.scans, 1);
    /* 4:2:0: 21x16 MCUs of 6 blocks. */
    CHECK_EQ_INT(c.blocks, 21 * 16 * 6);
    CHECK_EQ_INT(c.frame_blocks, 21 * 16 * 6);
    free(b.data);
}

static void test_tiff(void)
{
    char msg[256];
    image_cost c;
    bytes b = tiff_simple(16, 200000, 256, 8, 0, 1, 12500);
    CHECK_EQ_INT(check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    CHECK_EQ_INT(c.samples, 256);
    CHECK_EQ_INT(c.strips, 12500);
    CHECK(strstr(msg, "256 samples per pixel"));
    free(b.data);
    /* 5 samples: only with alpha. */
    b = tiff_simple(100, 100, 5, 8, 0, 1, 1);
    CHECK_EQ_INT(check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    free(b.data);
    b = tiff_simple(100, 100, 5, 8, 2, 1, 1);
    CHECK_EQ_INT(check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg), IMAGE_OK);
    CHECK(c.alpha);
    free(b.data);
    /* Bits: 16 fine, 32 (float) refused. */
    b = tiff_simple(100, 100, 3, 32, 0, 1, 1);
    CHECK_EQ_INT(check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    CHECK(strstr(msg, "32 bits per sample"));
    free(b.data);
    /* The pixel budget in 4-byte pixels: 16-bit RGBA counts twice. */
    b = tiff_simple(6000, 5000, 4, 16, 2, 1, 1);
    CHECK_EQ_INT(check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    CHECK(strstr(msg, "--max-pixels"));
    free(b.data);
    b = tiff_simple(5000, 5000, 4, 16, 2, 1, 1);
    CHECK_EQ_INT(check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg), IMAGE_OK);
    free(b.data);
    /* Plain 8-bit pixels over the budget are image_check_dims' business
     * (image_too_large), not this one's. */
    b = tiff_simple(8000, 8000, 3, 8, 0, 1, 1);
    CHECK_EQ_INT(check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg), IMAGE_OK);
    free(b.data);
    /* Pages: 1000 fine, 1001 refused; a loop counts as endless. */
    b = tiff_simple(16, 16, 1, 8, 0, 1000, 1);
    CHECK_EQ_INT(check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg), IMAGE_OK);
    CHECK_EQ_INT(c.pages, 1000);
    free(b.data);
    b = tiff_simple(16, 16, 1, 8, 0, 1001, 1);
    CHECK_EQ_INT(check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    CHECK(strstr(msg, "pages than the limit of 1000"));
    free(b.data);
    uint32_t W[] = {16}, one[] = {1}, eight[] = {8};
    tag_spec loop[] = {{256, 4, 1, W}, {257, 4, 1, W}, {258, 3, 1, eight}, {277, 3, 1, one}};
    b = tiff_make(loop, 4, 2, true);
    CHECK_EQ_INT(check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    free(b.data);
    /* Strips: 65536 fine, 65537 refused. */
    b = tiff_simple(16, 65536, 1, 8, 0, 1, 65536);
    CHECK_EQ_INT(check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg), IMAGE_OK);
    free(b.data);
    b = tiff_simple(16, 65537, 1, 8, 0, 1, 65537);
    CHECK_EQ_INT(check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    free(b.data);
    /* Tiles far larger than the image. */
    uint32_t big[] = {65536}, off[] = {8};
    tag_spec tiles[] = {{256, 4, 1, W}, {257, 4, 1, W}, {322, 4, 1, big}, {323, 4, 1, big}, {324, 4, 1, off}};
    b = tiff_make(tiles, 5, 1, false);
    CHECK_EQ_INT(check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    CHECK(strstr(msg, "tiles"));
    free(b.data);
    /* JPEG strips: 438 strips of 7000x16 all pointing at one progressive
     * JPEG of 99 scans walk 76 million blocks (20 passes over 50 MP: 15.6
     * million); the same with 3 scans is within the budget. The walk stops
     * past 4x the file and estimates the rest. */
    for (int round = 0; round < 2; round++) {
        bytes strip = jpeg_bomb(7000, 16, 1, round == 0 ? 99 : 3, false);
        uint32_t at[438], len[438], seven[] = {7}, w7000[] = {7000}, rows[] = {16};
        for (int k = 0; k < 438; k++)
            at[k] = 0, len[k] = (uint32_t)strip.len;
        tag_spec jt[] = {{256, 4, 1, w7000}, {257, 4, 1, w7000}, {258, 3, 1, eight}, {259, 3, 1, seven}, {273, 4, 438, at}, {278, 4, 1, rows}, {279, 4, 438, len}};
        bytes probe = tiff_make(jt, 7, 1, false);
        for (int k = 0; k < 438; k++)
            at[k] = (uint32_t)probe.len;
        free(probe.data);
        b = tiff_make(jt, 7, 1, false);
        put(&b, strip.data, strip.len);
        image_status st = check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg);
        if (round == 0) {
            CHECK_EQ_INT(st, IMAGE_TOO_COMPLEX);
            CHECK(strstr(msg, "JPEG strips"));
            CHECK(c.blocks > 70000000 && c.blocks < 80000000);
        } else {
            CHECK_EQ_INT(st, IMAGE_OK);
        }
        free(b.data);
        free(strip.data);
    }
    /* A count that claims more values than the file holds reads only those. */
    uint32_t huge_spp[] = {3};
    tag_spec lies[] = {{256, 4, 1, W}, {257, 4, 1, W}, {258, 3, 0x7FFFFFFF, eight}, {277, 3, 1, huge_spp}};
    b = tiff_make(lies, 3, 1, false);
    b.len -= 2; /* the one value written sits past the end now */
    check(IMAGE_FMT_TIFF, &b, 50000000, &c, msg);
    free(b.data);
}

static void test_gif_png(void)
{
    char msg[256];
    image_cost c;
    bytes b = gif_frames(10000);
    CHECK_EQ_INT(check(IMAGE_FMT_GIF, &b, 50000000, &c, msg), IMAGE_OK);
    CHECK_EQ_INT(c.pages, 10000);
    free(b.data);
    b = gif_frames(10001);
    CHECK_EQ_INT(check(IMAGE_FMT_GIF, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    CHECK(strstr(msg, "frames"));
    free(b.data);
    /* PNG: 16-bit RGBA counts twice against the budget. */
    static const uint8_t ihdr[] = {0x89, 'P', 'N', 'G', 13, 10, 26, 10, 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                   0, 0, 0x1B, 0x58, 0, 0, 0x13, 0x88, 16, 6, 0, 0, 0};
    b = (bytes){0};
    put(&b, ihdr, sizeof ihdr); /* 7000x5000 */
    CHECK_EQ_INT(check(IMAGE_FMT_PNG, &b, 50000000, &c, msg), IMAGE_TOO_COMPLEX);
    CHECK_EQ_INT(c.samples, 4);
    CHECK_EQ_INT(c.bits, 16);
    b.data[24] = 8; /* 8-bit: fine */
    CHECK_EQ_INT(check(IMAGE_FMT_PNG, &b, 50000000, &c, msg), IMAGE_OK);
    free(b.data);
}

/* Through image_decode: refused before decoding, on both JPEG paths; a
 * cancelled decode stops with IMAGE_CANCELLED; HEIF's own limit. */
static void test_decode(void)
{
    char msg[256];
    image_t img;
    image_decode_opts o = {.max_pixels = 50000000};
    bytes b = jpeg_bomb(4000, 4000, 1, 300, false);
    CHECK_EQ_INT(image_decode(b.data, b.len, &o, &img, msg, sizeof msg), IMAGE_TOO_COMPLEX);
    free(b.data);
    b = jpeg_bomb(4000, 4000, 4, 600, false); /* CMYK-like: libvips' path */
    CHECK_EQ_INT(image_decode(b.data, b.len, &o, &img, msg, sizeof msg), IMAGE_TOO_COMPLEX);
    free(b.data);

    atomic_bool cancelled;
    atomic_init(&cancelled, true);
    o.cancelled = &cancelled;
    b = jpeg_real(333, 250, true, 0);
    CHECK_EQ_INT(image_decode(b.data, b.len, &o, &img, msg, sizeof msg), IMAGE_CANCELLED);
    CHECK_STR(image_status_code(IMAGE_CANCELLED), "cancelled");
    atomic_store(&cancelled, false);
    CHECK_EQ_INT(image_decode(b.data, b.len, &o, &img, msg, sizeof msg), IMAGE_OK);
    image_free(&img);
    free(b.data);
    b = gif_frames(1); /* libvips' path: render() stops before its first strip */
    atomic_store(&cancelled, true);
    CHECK_EQ_INT(image_decode(b.data, b.len, &o, &img, msg, sizeof msg), IMAGE_CANCELLED);
    CHECK_STR(msg, "decode cancelled");
    atomic_store(&cancelled, false);
    CHECK_EQ_INT(image_decode(b.data, b.len, &o, &img, msg, sizeof msg), IMAGE_OK);
    image_free(&img);
    free(b.data);

    CHECK_STR(image_status_code(IMAGE_TOO_COMPLEX), "image_too_complex");
    o.max_pixels_heif = 1000000;
    CHECK_EQ_INT(image_check_heif_dims(IMAGE_FMT_HEIF, 1000, 1000, &o, msg, sizeof msg), IMAGE_OK);
    CHECK_EQ_INT(image_check_heif_dims(IMAGE_FMT_AVIF, 1001, 1000, &o, msg, sizeof msg), IMAGE_TOO_LARGE);
    CHECK(strstr(msg, "--max-pixels-heif"));
    CHECK_EQ_INT(image_check_heif_dims(IMAGE_FMT_JPEG, 1001, 1000, &o, msg, sizeof msg), IMAGE_OK);
}

int main(void)
{
    if (image_init("test_image_cost") != 0) {
        fprintf(stderr, "libvips failed to start\n");
        return 2;
    }
    test_jpeg();
    test_tiff();
    test_gif_png();
    test_decode();
    return check_report("image_cost");
}
