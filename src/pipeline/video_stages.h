/* A video file's work: frames decoded one at a time (src/video), each sampled
 * frame through the stages an image goes through (detection, OCR), its
 * result streamed as a "frame" line through the call's emit (which waits
 * while the client is behind), detections linked across frames by ByteTrack
 * when the file asks for "track". */
#ifndef SIGHT_PIPELINE_VIDEO_STAGES_H
#define SIGHT_PIPELINE_VIDEO_STAGES_H

#include <stdbool.h>

#include "pipeline/stages.h"

/* Whether the file's bytes are a video (by magic bytes). */
bool video_stages_is_video(const file_job *f);

/* Runs the video: a frame line per analysed frame through call->emit, then
 * returns the done line's result ({video, tracks, timing_ms}), or NULL with
 * err filled; a failure part-way comes after the frames already sent. */
json_t *video_stages_run(const stage_set *set, const stage_call *call, sight_error *err);

#endif
