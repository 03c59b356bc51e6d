/* ByteTrack on detection results as the yolo stage writes them: track ids
 * into the detections, the track list of a video's done line, and tracking
 * of single images (a stream's tracker kept between requests). */
#ifndef SIGHT_PIPELINE_TRACK_JSON_H
#define SIGHT_PIPELINE_TRACK_JSON_H

#include <jansson.h>
#include <stdint.h>

#include "pipeline/stages.h"
#include "track/bytetrack.h"

/* Feeds the detections of yolo (a yolo stage result) to bt at time ms and
 * sets each one's "track_id" (null when no confirmed track holds it). names
 * (may be NULL) collects class_id -> class for track_json_list; *spent (may
 * be NULL) grows by the seconds the tracker took. */
int track_json_update(bytetrack *bt, json_t *yolo, int64_t ms, json_t *names, double *spent, sight_error *err);

/* Every confirmed track of bt: [{track_id, class, class_id, first_ms, last_ms, frames, best_confidence}]. */
json_t *track_json_list(const bytetrack *bt, const json_t *names);

/* An image's detections with "track": a tracker of its own (ids from 1), or
 * the one of its "track_stream" for the request's key. */
int track_json_image(const file_job *f, json_t *yolo, sight_error *err);

#endif
