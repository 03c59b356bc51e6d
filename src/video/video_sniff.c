#include <string.h>

#include "video/video_decode.h"

static bool at(const uint8_t *buf, size_t len, size_t off, const char *s)
{
    size_t n = strlen(s);
    return len >= off + n && !memcmp(buf + off, s, n);
}

video_format video_sniff(const uint8_t *buf, size_t len)
{
    if (!buf || len < 12) return VIDEO_FMT_NONE;
    /* HEIF and AVIF are ISO BMFF too: their brands make them images. */
    if (image_sniff(buf, len) != IMAGE_FMT_UNKNOWN) return VIDEO_FMT_NONE;
    if (at(buf, len, 4, "ftyp")) return VIDEO_FMT_MP4;
    /* Old QuickTime files may start with their movie or data atom. */
    if (at(buf, len, 4, "moov") || at(buf, len, 4, "mdat") || at(buf, len, 4, "wide")) return VIDEO_FMT_MP4;
    static const uint8_t ebml[4] = {0x1A, 0x45, 0xDF, 0xA3};
    if (!memcmp(buf, ebml, 4)) return VIDEO_FMT_MKV;
    return VIDEO_FMT_NONE;
}
