/* Image formats by their magic bytes, and their names: what image_decode
 * dispatches on and names in its messages. Never libvips' own sniffing,
 * which would try every loader it has. Also: is an ICC profile sRGB. */
#include <string.h>

#include "image/decode.h"
#include "image/sniff.h"

/* ----------------------------------------------------------------- sniff */

static int has(const uint8_t *buf, size_t len, size_t at, const char *s)
{
    size_t n = strlen(s);
    return len >= at + n && memcmp(buf + at, s, n) == 0;
}


/* ISO BMFF files (HEIF, AVIF) start with an ftyp box: the major brand, then
 * compatible brands. AVIF wins when either names it (an AVIF may carry mif1
 * as its major brand); HEIF for the HEVC and generic image brands. */
static image_format sniff_ftyp(const uint8_t *buf, size_t len)
{
    if (len < 16 || !has(buf, len, 4, "ftyp"))
        return IMAGE_FMT_UNKNOWN;
    size_t box = image_be32(buf);
    if (box < 16 || box > len)
        box = len < 64 ? len : 64;
    static const char *const heif[] = {"heic", "heix", "hevc", "hevx", "heim", "heis",
                                       "hevm", "hevs", "mif1", "msf1"};
    image_format f = IMAGE_FMT_UNKNOWN;
    for (size_t at = 8; at + 4 <= box; at += (at == 8 ? 8 : 4)) { /* skip minor_version */
        if (!memcmp(buf + at, "avif", 4) || !memcmp(buf + at, "avis", 4))
            return IMAGE_FMT_AVIF;
        for (size_t i = 0; i < sizeof heif / sizeof heif[0]; i++)
            if (!memcmp(buf + at, heif[i], 4))
                f = IMAGE_FMT_HEIF;
    }
    return f;
}

image_format image_sniff(const uint8_t *buf, size_t len)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (!buf)
        return IMAGE_FMT_UNKNOWN;
    if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
        return IMAGE_FMT_JPEG;
    if (len >= 8 && memcmp(buf, png_sig, 8) == 0)
        return IMAGE_FMT_PNG;
    if (len >= 12 && memcmp(buf, "RIFF", 4) == 0 && memcmp(buf + 8, "WEBP", 4) == 0)
        return IMAGE_FMT_WEBP;
    if (has(buf, len, 0, "GIF87a") || has(buf, len, 0, "GIF89a"))
        return IMAGE_FMT_GIF;
    if (len >= 8 && (!memcmp(buf, "II*\0", 4) || !memcmp(buf, "MM\0*", 4) || !memcmp(buf, "II+\0", 4) || !memcmp(buf, "MM\0+", 4))) /* + : BigTIFF */
        return IMAGE_FMT_TIFF;
    if (len >= 26 && buf[0] == 'B' && buf[1] == 'M')
        return IMAGE_FMT_BMP;
    return sniff_ftyp(buf, len);
}

/* For the unsupported_image message: what the bytes look like, when that is
 * a format people send by mistake. NULL when nothing is recognised. */
const char *image_sniff_other(const uint8_t *buf, size_t len)
{
    static const uint8_t jxl_box[12] = {0, 0, 0, 0x0C, 'J', 'X', 'L', ' ', 0x0D, 0x0A, 0x87, 0x0A};
    static const uint8_t jp2_box[12] = {0, 0, 0, 0x0C, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A};
    static const uint8_t ico[4] = {0, 0, 1, 0};
    if (has(buf, len, 0, "%PDF-")) return "PDF";
    if (has(buf, len, 0, "%!PS")) return "PostScript";
    if ((len >= 2 && buf[0] == 0xFF && buf[1] == 0x0A) || (len >= 12 && !memcmp(buf, jxl_box, 12)))
        return "JPEG XL";
    if ((len >= 12 && !memcmp(buf, jp2_box, 12)) ||
        (len >= 4 && buf[0] == 0xFF && buf[1] == 0x4F && buf[2] == 0xFF && buf[3] == 0x51))
        return "JPEG 2000";
    if (has(buf, len, 0, "8BPS")) return "Photoshop (PSD)";
    if (len >= 6 && !memcmp(buf, ico, 4)) return "Windows icon (ICO)";
    if (len >= 4 && buf[0] == 0x76 && buf[1] == 0x2F && buf[2] == 0x31 && buf[3] == 0x01) return "OpenEXR";
    if (has(buf, len, 0, "SIMPLE  =")) return "FITS";
    if (has(buf, len, 0, "#?RADIANCE") || has(buf, len, 0, "#?RGBE")) return "Radiance HDR";
    if (len >= 3 && buf[0] == 'P' && buf[1] >= '1' && buf[1] <= '7' &&
        (buf[2] == '\n' || buf[2] == ' ' || buf[2] == '\r' || buf[2] == '\t'))
        return "Netpbm (PBM/PGM/PPM)";
    if (has(buf, len, 0, "RIFF")) return "RIFF (not WebP)";
    if (len >= 12 && has(buf, len, 4, "ftyp")) return "ISO media (not HEIF or AVIF)";
    /* SVG: XML text that opens an <svg element near the start. */
    size_t n = len < 1024 ? len : 1024;
    for (size_t i = 0; i + 4 <= n; i++)
        if (!memcmp(buf + i, "<svg", 4)) return "SVG";
    if (has(buf, len, 0, "<?xml")) return "XML";
    if (has(buf, len, 0, "BM")) return "truncated BMP";
    return NULL;
}

const char *image_format_name(image_format f)
{
    switch (f) {
    case IMAGE_FMT_JPEG: return "jpeg";
    case IMAGE_FMT_PNG: return "png";
    case IMAGE_FMT_WEBP: return "webp";
    case IMAGE_FMT_HEIF: return "heif";
    case IMAGE_FMT_AVIF: return "avif";
    case IMAGE_FMT_GIF: return "gif";
    case IMAGE_FMT_TIFF: return "tiff";
    case IMAGE_FMT_BMP: return "bmp";
    default: return "unknown";
    }
}

/* The name in messages. */
const char *image_format_title(image_format f)
{
    switch (f) {
    case IMAGE_FMT_JPEG: return "JPEG";
    case IMAGE_FMT_PNG: return "PNG";
    case IMAGE_FMT_WEBP: return "WebP";
    case IMAGE_FMT_HEIF: return "HEIF";
    case IMAGE_FMT_AVIF: return "AVIF";
    case IMAGE_FMT_GIF: return "GIF";
    case IMAGE_FMT_TIFF: return "TIFF";
    case IMAGE_FMT_BMP: return "BMP";
    default: return "image";
    }
}

const char *image_status_code(image_status s)
{
    switch (s) {
    case IMAGE_OK: return "ok";
    case IMAGE_EMPTY: return "empty_file";
    case IMAGE_UNSUPPORTED: return "unsupported_image";
    case IMAGE_CORRUPT: return "corrupt_image";
    case IMAGE_TOO_LARGE: return "image_too_large";
    case IMAGE_NO_MEMORY: return "out_of_memory";
    case IMAGE_TOO_COMPLEX: return "image_too_complex";
    case IMAGE_CANCELLED: return "cancelled";
    }
    return "unknown";
}

/* Is the embedded profile sRGB already? Converting sRGB to sRGB would cost a
 * pass and shift pixels by rounding. Looks for "sRGB" in the profile's
 * description tag (ASCII in v2 'desc', UTF-16BE in v4 'mluc'). */
bool image_icc_is_srgb(const uint8_t *p, size_t n)
{
    if (n < 132)
        return false;
    uint32_t count = image_be32(p + 128);
    for (uint32_t i = 0; i < count && 132 + (size_t)i * 12 + 12 <= n; i++) {
        const uint8_t *e = p + 132 + (size_t)i * 12;
        if (memcmp(e, "desc", 4) != 0)
            continue;
        size_t off = image_be32(e + 4), sz = image_be32(e + 8);
        if (off > n || sz > n - off)
            return false;
        static const uint8_t wide[8] = {0, 's', 0, 'R', 0, 'G', 0, 'B'};
        return memmem(p + off, sz, "sRGB", 4) || memmem(p + off, sz, wide, 8);
    }
    return false;
}
