/* A file's video options (all zero: the defaults), given in its metadata (v1) or item (v2) next to
 * is_yolo and friends: "fps", "max_frames", "track", "track_stream". They
 * are accepted on any file and used when the file turns out to be a video
 * ("track" and "track_stream" also on images). A plain value: copy freely. */
#ifndef SIGHT_VIDEO_META_H
#define SIGHT_VIDEO_META_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIDEO_STREAM_NAME_MAX 64

typedef struct {
    bool fps_given;                               /* else the default, VIDEO_DEFAULT_FPS */
    double fps;                                   /* frames analysed per second; 0: every frame */
    int64_t max_frames;                           /* 0: the server's --max-frames (a request may only lower it) */
    bool track;                                   /* ByteTrack ids on every detection */
    char track_stream[VIDEO_STREAM_NAME_MAX + 1]; /* "" = none */
} video_meta;

#define VIDEO_DEFAULT_FPS 5.0

/* Stores key's value when key is one of the video options: returns 1, 0 when
 * key is not one, or -1 with a reason in msg when its value is invalid. */
int video_meta_key(video_meta *m, const char *key, const json_t *v, char *msg, size_t msg_len);

#endif
