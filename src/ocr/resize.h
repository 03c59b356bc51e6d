/* Bilinear resize of 8-bit RGB with cv2.INTER_LINEAR's sampling grid (pixel
 * centres at +0.5, edges clamped, no antialiasing): PaddleOCR resizes with
 * cv2.resize, so a downscale here samples the same pixels it does. Values may
 * differ from OpenCV's fixed-point arithmetic by one grey level. */
#ifndef SIGHT_OCR_RESIZE_H
#define SIGHT_OCR_RESIZE_H

#include <stdint.h>

/* dst holds dw * dh * 3 bytes. All sizes must be >= 1. */
void ocr_resize_rgb(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh);

#endif
