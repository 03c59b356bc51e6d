/* ByteTrack (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating
 * Every Detection Box", ECCV 2022), written from the paper: every track's box
 * is predicted by a Kalman filter; high-score detections are matched to the
 * tracks first (IoU, Hungarian), then the low-score ones to the tracks left,
 * which keeps an occluded object's track alive on its weak detections. Tracks
 * are per class: a box never joins a track of another class.
 *
 * A tracker is one video's (or one camera stream's) state; it is not
 * thread-safe: one caller at a time. */
#ifndef SIGHT_TRACK_BYTETRACK_H
#define SIGHT_TRACK_BYTETRACK_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float high;      /* detections at or above: first association, may start tracks (0.5) */
    float low;       /* below this a detection is ignored (0.1) */
    float new_track; /* a new track needs at least this score (high + 0.1) */
    float match_iou; /* first association: least IoU x score (0.2) */
    float low_iou;   /* second association: least IoU (0.5) */
    int buffer;      /* frames a lost track is kept for re-identification (30) */
    int max_tracks;  /* live tracks at most; new ones beyond are not started (1000) */
} bytetrack_params;

void bytetrack_defaults(bytetrack_params *p);

typedef struct {
    float x1, y1, x2, y2, score;
    int cls;
} track_det;

/* A confirmed track's life so far. */
typedef struct {
    int64_t track_id;
    int cls;
    int64_t first_ms, last_ms;
    int64_t frames; /* frames it had a detection in */
    float best_confidence;
} track_summary;

typedef struct bytetrack bytetrack;

bytetrack *bytetrack_new(const bytetrack_params *p);
void bytetrack_free(bytetrack *t);

/* Feeds one frame's detections (at time_ms). ids[i] receives the id of the
 * confirmed track dets[i] belongs to, or 0 when none (a low-score box no
 * track wanted, or the first sight of an object: a track is confirmed on its
 * second matched frame, except in the first frame). Returns 0, or -1 when
 * out of memory (the tracker is unchanged but for its predictions). */
int bytetrack_update(bytetrack *t, const track_det *dets, int n, int64_t time_ms, int64_t *ids);

/* Every track confirmed so far, in order of id (the summaries stop growing
 * at a bound, see bytetrack.c). */
size_t bytetrack_count(const bytetrack *t);
const track_summary *bytetrack_summary(const bytetrack *t, size_t i);

#endif
