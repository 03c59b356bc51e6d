/* Video files through FFmpeg's libraries, treated as hostile input: the
 * bytes reach libavformat only through a custom I/O context over the
 * in-memory buffer (no file names, no protocols), only the demuxers (mov,
 * matroska) and decoders (h264, hevc, vp8, vp9, av1) allowed here can run,
 * and every size, count and duration is checked against limits before and
 * while decoding, so that a file claiming huge frames, holding a flood of
 * tiny ones or looping its index fails fast instead of hanging or eating
 * memory. Frames are decoded one at a time, as the caller asks for them. */
#ifndef SIGHT_VIDEO_DECODE_H
#define SIGHT_VIDEO_DECODE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/decode.h"
#include "util/error.h"

typedef enum {
    VIDEO_FMT_NONE = 0,
    VIDEO_FMT_MP4, /* ISO BMFF / QuickTime: mov demuxer */
    VIDEO_FMT_MKV, /* Matroska / WebM: matroska demuxer */
} video_format;

/* From magic bytes only. ISO BMFF files whose brand is an image's (HEIF,
 * AVIF) are not video. */
video_format video_sniff(const uint8_t *buf, size_t len);

typedef struct {
    double fps;          /* frames analysed per second of video; 0 = every frame */
    int64_t max_frames;  /* frames handed out at most; past it the video ends early */
    double max_seconds;  /* longer videos are refused (video_too_long) */
    uint64_t max_pixels; /* per frame (video_too_large) */
    int fit_w, fit_h;    /* > 0: frames are scaled down to fit this box (never up) */
    const atomic_bool *cancelled;
} video_limits;

typedef struct {
    int width, height;
    double fps;          /* the stream's frame rate, 0 when unknown */
    int64_t duration_ms; /* 0 when unknown */
    const char *codec;   /* "h264", "vp9", ... */
} video_info;

typedef struct video_reader video_reader;

/* Opens buf (kept by reference: it must outlive the reader) and checks its
 * header against lim. NULL with err filled on failure. */
video_reader *video_open(const uint8_t *buf, size_t len, const video_limits *lim, sight_error *err);
const video_info *video_reader_info(const video_reader *v);

/* The next sampled frame: 1 with *img (RGB, orig_* the frame's size),
 * *frame_no (0-based index among decoded frames) and *time_ms set; 0 at the
 * end; -1 with err filled (corrupt or truncated data, a limit, cancelled). */
int video_next(video_reader *v, image_t *img, int64_t *frame_no, int64_t *time_ms, sight_error *err);
/* Frames decoded so far (sampled or not) and seconds spent decoding. */
int64_t video_decoded_frames(const video_reader *v);
double video_decode_seconds(const video_reader *v);
void video_close(video_reader *v);

#endif
