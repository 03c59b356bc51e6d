/* is_llm on a video: a few frames sampled evenly over the video, kept small
 * while the frames go by, then laid out as one 2x2 contact sheet for the llm
 * stage, with their detections and OCR lines moved into the sheet's pixels
 * (grounding) and a sentence saying which frame is where and when. Memory is
 * bounded by the cell size: at most VIDEO_SHEET_CELLS scaled frames. */
#ifndef SIGHT_PIPELINE_VIDEO_SHEET_H
#define SIGHT_PIPELINE_VIDEO_SHEET_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "image/decode.h"

#define VIDEO_SHEET_CELLS 4

typedef struct video_sheet video_sheet;

/* span_ms: the part of the video that will be analysed (0: unknown, then the
 * first frames are taken); cell_side: the long side of a cell at most. */
video_sheet *video_sheet_new(int64_t span_ms, int cell_side);
void video_sheet_free(video_sheet *s);
/* Whether the frame at ms is the next one to keep. */
bool video_sheet_wants(const video_sheet *s, int64_t ms);
/* Keeps img scaled to a cell and the "yolo"/"ocr" results in earlier (may be
 * NULL). Returns 0, or -1 out of memory. */
int video_sheet_add(video_sheet *s, const image_t *img, int64_t ms, const json_t *earlier);
/* The sheet (2x2 cells, empty ones dark), its grounding ({"yolo": ..., "ocr":
 * ...} in sheet pixels, only what the frames had) and its description, with a
 * summary of tracks (a track list, may be NULL). -1 when no frame was kept or
 * out of memory. */
int video_sheet_compose(const video_sheet *s, const json_t *tracks, image_t *out, json_t **grounding, char **context);

#endif
