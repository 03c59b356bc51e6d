/* Preprocessing as the upstream projects do it, straight into the model's
 * float input tensor (NCHW), and the inverse mapping for boxes.
 *
 * Ultralytics: scale to fit keeping aspect ratio (new size = round(w*r),
 * round(h*r)), bilinear like cv2.INTER_LINEAR (half-pixel centres, no
 * antialiasing, result rounded to uint8), centred with padding 114 (left/top =
 * round(pad/2 - 0.1)), RGB, scaled to 0..1.
 * YOLOX: the same resize with new size = (int)(w*r), (int)(h*r), placed
 * top-left, padding 114, BGR, 0..255 unscaled. */
#ifndef SIGHT_DETECT_LETTERBOX_H
#define SIGHT_DETECT_LETTERBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { LETTERBOX_ULTRALYTICS = 0,
               LETTERBOX_YOLOX } letterbox_style;

typedef struct {
    float gain; /* model pixels per image pixel */
    int pad_left, pad_top;
    int new_w, new_h;
} letterbox_map;

/* Fills dst (3 * dst_h * dst_w floats, NCHW planes) from the RGB image src
 * (src_w * src_h * 3 bytes, stride src_w * 3). The resized pixels equal
 * cv2.resize's exactly (OpenCV's fixed-point arithmetic, reproduced).
 * Thread-safe, allocates nothing. An image so thin that a side rounds to 0
 * gets 1 pixel there (upstream would fail). */
void letterbox(const uint8_t *src, int src_w, int src_h, float *dst, int dst_w, int dst_h, letterbox_style style,
               letterbox_map *map);

/* A colour conversion of n RGB pixels in place (an ICC transform). */
typedef struct {
    void (*apply)(const void *ctx, uint8_t *rgb, size_t n);
    const void *ctx;
} letterbox_colour;

/* letterbox, with colour (when not NULL) applied to the resized 8-bit pixels
 * before they become floats: the colour conversion of an image whose
 * conversion the decoder deferred, on the model's pixels only. */
void letterbox_with_colour(const uint8_t *src, int src_w, int src_h, float *dst, int dst_w, int dst_h,
                           letterbox_style style, const letterbox_colour *colour, letterbox_map *map);

/* Maps a box from model pixels back to image pixels, clipped to [0, img_w] x
 * [0, img_h] (Ultralytics scale_boxes + clip_boxes; YOLOX's demo only divides
 * by the gain, and clipping changes nothing for boxes inside the image). */
void letterbox_unmap(const letterbox_map *map, int img_w, int img_h, float *x1, float *y1, float *x2, float *y2);

#endif
