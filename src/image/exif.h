/* EXIF orientation reader (tag 0x0112 in IFD0), bounds-checked.
 *
 * The input is hostile: every read is checked against the buffer length, no
 * offset is trusted, nothing is allocated. Every function returns the
 * orientation 1..8, or 1 when there is no EXIF block, no orientation tag, or
 * the data is malformed or truncated (1 = "already upright"). */
#ifndef SIGHT_IMAGE_EXIF_H
#define SIGHT_IMAGE_EXIF_H

#include <stddef.h>
#include <stdint.h>

/* A TIFF block: "II*\0" or "MM\0*" header, then IFD0. A leading "Exif\0\0"
 * (the APP1 form, which some writers also put into PNG/WebP chunks) is skipped. */
int exif_orientation_tiff(const uint8_t *tiff, size_t len);

/* Whole files: the first APP1 "Exif\0\0" segment before SOS of a JPEG, the
 * eXIf chunk of a PNG, the EXIF chunk of a WebP RIFF container. */
int exif_orientation_jpeg(const uint8_t *buf, size_t len);
int exif_orientation_png(const uint8_t *buf, size_t len);
int exif_orientation_webp(const uint8_t *buf, size_t len);

/* Picks one of the above by magic bytes; 1 for anything else. */
int exif_orientation(const uint8_t *buf, size_t len);

#endif
