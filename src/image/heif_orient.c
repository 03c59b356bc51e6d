/* HEIF and AVIF orientation: whether libheif already turns the picture
 * (irot/imir), and the EXIF orientation to apply when it does not. */
#include "image/heif_orient.h"

#include <stdlib.h>
#include <string.h>

#include <libexif/exif-data.h>

#include "image/sniff.h"

/* In HEIF and AVIF the irot/imir properties are the normative transform, and
 * libheif applies them; EXIF orientation is descriptive only, and libvips
 * drops it. Phones write both, describing the same turn, so applying EXIF too
 * would turn the picture twice. But files written by tools that keep EXIF
 * without irot (libheif's own heif-enc before 1.16) would stay sideways:
 * apply EXIF there. This tells whether the file has an irot or imir property:
 * they live in the top-level meta box (its item properties), never in mdat. */
bool image_heif_has_transform(const uint8_t *buf, size_t len)
{
    size_t at = 0;
    while (at + 8 <= len) {
        uint64_t size = image_be32(buf + at), head = 8;
        if (size == 1) {
            if (at + 16 > len)
                return false;
            size = (uint64_t)image_be32(buf + at + 8) << 32 | image_be32(buf + at + 12);
            head = 16;
        } else if (size == 0) {
            size = len - at;
        }
        if (size < head || size > len - at)
            return false;
        if (!memcmp(buf + at + 4, "meta", 4))
            return memmem(buf + at + head, size - head, "irot", 4) ||
                memmem(buf + at + head, size - head, "imir", 4);
        at += size;
    }
    return false;
}

/* The orientation in an EXIF block: raw TIFF data or behind an "Exif\0\0"
 * header (libexif reads it behind the header). 1 when none. */
int image_exif_orientation(const void *data, size_t n)
{
    if (n < 8 || n > (1u << 20))
        return 1;
    unsigned char *block = malloc(n + 6);
    if (!block)
        return 1;
    bool has_header = n >= 6 && !memcmp(data, "Exif\0\0", 6);
    memcpy(block, "Exif\0\0", 6);
    memcpy(block + 6, data, n);
    ExifData *ed = exif_data_new_from_data(has_header ? block + 6 : block,
                                           (unsigned int)(has_header ? n : n + 6));
    free(block);
    int o = 1;
    if (ed) {
        ExifEntry *e = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
        if (e && e->format == EXIF_FORMAT_SHORT && e->components == 1 && e->size >= 2)
            o = exif_get_short(e->data, exif_data_get_byte_order(ed));
        exif_data_unref(ed);
    }
    return o >= 1 && o <= 8 ? o : 1;
}

/* The EXIF orientation of a HEIF, from the EXIF block libvips attached. */
int image_heif_exif_orientation(VipsImage *im)
{
    const void *data;
    size_t n;
    if (!vips_image_get_typeof(im, VIPS_META_EXIF_NAME) || vips_image_get_blob(im, VIPS_META_EXIF_NAME, &data, &n) != 0)
        return 1;
    return image_exif_orientation(data, n);
}
