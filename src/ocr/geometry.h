/* Plane geometry for text detection: the minimum-area rectangle of a region
 * (OpenCV minAreaRect), PaddleOCR's corner orders, its "unclip" expansion and
 * the perspective crop of a quadrilateral. Pure functions, no allocation
 * except where a buffer is returned. */
#ifndef SIGHT_OCR_GEOMETRY_H
#define SIGHT_OCR_GEOMETRY_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float x, y;
} ocr_pt;

/* Convex hull (Andrew's monotone chain) of pts, written into hull (room for
 * n points); returns its size, counter-clockwise in image coordinates. */
int ocr_convex_hull(const ocr_pt *pts, int n, ocr_pt *hull);

/* Smallest-area enclosing rectangle of n points (rotating calipers over the
 * hull). box gets its corners in PaddleOCR's get_mini_boxes order (of the two
 * left-most points the upper one first, then the upper right, lower right,
 * lower left); returns the length of the shorter side (0 for n < 1). hull_buf
 * needs room for n points. */
float ocr_min_area_rect(const ocr_pt *pts, int n, ocr_pt *hull_buf, ocr_pt box[4]);

/* Reorders four corners as PaddleOCR's get_mini_boxes does. */
void ocr_order_mini_box(ocr_pt box[4]);

/* Reorders as PaddleOCR's order_points_clockwise: top-left, top-right,
 * bottom-right, bottom-left (left pair and right pair by x, each by y). */
void ocr_order_clockwise(ocr_pt box[4]);

/* PaddleOCR's unclip for a rectangle: pyclipper offsets the polygon by
 * d = area * ratio / perimeter with round joins, and minAreaRect of that is
 * the rectangle grown by d on every side, which is what this computes. */
void ocr_unclip_rect(const ocr_pt in[4], float ratio, ocr_pt out[4]);

float ocr_dist(ocr_pt a, ocr_pt b);

/* Whether point p lies inside or on the convex quadrilateral q (either winding). */
int ocr_quad_contains(const ocr_pt q[4], float x, float y);

/* PaddleOCR's get_rotate_crop_image: the quadrilateral q (tl, tr, br, bl) of
 * the RGB image warped to an upright w x h crop, w = max of the top/bottom
 * sides, h = max of the left/right sides (truncated), edges replicated,
 * bilinear; a crop at least 1.5 times as tall as wide is turned 90 degrees
 * counter-clockwise (np.rot90) since such a line is written vertically.
 * Returns a malloc'd RGB buffer, or NULL when the quad is degenerate (a side
 * under 1 pixel), too large (over max_pixels) or memory runs out. */
uint8_t *ocr_crop_quad(const uint8_t *rgb, int w, int h, const ocr_pt q[4], size_t max_pixels, int *out_w,
                       int *out_h);

#endif
