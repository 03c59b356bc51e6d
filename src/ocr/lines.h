/* Reading order of detected text lines and the page text built from them. */
#ifndef SIGHT_OCR_LINES_H
#define SIGHT_OCR_LINES_H

#include "ocr/geometry.h"

/* Sorts n boxes (tl, tr, br, bl) top-to-bottom, left-to-right: boxes whose
 * vertical centres differ by less than half the smaller box's height share a
 * row (so a slightly rotated or taller word stays on its line); rows go by
 * their centre, boxes in a row by their left edge. Fills order[] with box
 * indices in reading order and row[] (per position in order) with the row
 * number. Returns 0 or -1 when memory runs out. */
int ocr_reading_order(const ocr_pt (*boxes)[4], int n, int *order, int *row);

/* Joins texts (already in reading order) into one string: boxes in the same
 * row separated by a space, rows by a newline; empty texts skipped. malloc'd. */
char *ocr_join_lines(const char *const *texts, const int *row, int n);

#endif
