/* track/: the Kalman filter follows a box moving at constant speed, the
 * assignment finds the cheapest matching and honours its cost limit, and
 * ByteTrack keeps ids through crossing paths, a weak (low-score) stretch and
 * a short occlusion, and drops a track lost for longer than its buffer. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "track/assign.h"
#include "track/bytetrack.h"
#include "track/kalman.h"
#include "track/track_streams.h"

static void test_kalman(void)
{
    /* A 40x80 box moving 5 px right per frame: after some frames the filter's
     * prediction lands on the next position within a pixel. */
    float b[4] = {100, 100, 140, 180};
    double z[4];
    kalman_z_from_corners(b, z);
    kalman_box k;
    kalman_init(&k, z);
    for (int f = 1; f <= 20; f++) {
        kalman_predict(&k);
        float m[4] = {100 + 5.0f * f, 100, 140 + 5.0f * f, 180};
        kalman_z_from_corners(m, z);
        CHECK_EQ_INT(kalman_update(&k, z), 0);
    }
    kalman_predict(&k);
    float p[4];
    kalman_corners(&k, p);
    CHECK(fabsf(p[0] - 205.0f) < 1.0f);
    CHECK(fabsf(p[2] - 245.0f) < 1.0f);
    CHECK(fabsf(p[1] - 100.0f) < 1.0f);
    CHECK(fabs(k.x[4] - 5.0) < 0.3);
}

static void test_assign(void)
{
    /* Greedy would take (0,0)=1 and then (1,1)=10; the optimum is 2 + 3. */
    const double c[4] = {1, 2, 3, 10};
    int cr[2], rc[2];
    CHECK_EQ_INT(assign_min_cost(c, 2, 2, 100, cr, rc), 0);
    CHECK_EQ_INT(cr[0], 1);
    CHECK_EQ_INT(cr[1], 0);
    CHECK_EQ_INT(rc[0], 1);
    CHECK_EQ_INT(rc[1], 0);
    /* Rectangular both ways, and a limit that leaves a row unmatched. */
    const double w[6] = {5, 0.1, 7, 0.2, 9, 9}; /* 2 rows x 3 cols */
    CHECK_EQ_INT(assign_min_cost(w, 2, 3, 1.0, cr, NULL), 0);
    CHECK_EQ_INT(cr[0], 1);
    CHECK_EQ_INT(cr[1], 0);
    const double t[6] = {0.5, 9, 9, 0.4, 9, 9}; /* 3 rows x 2 cols */
    int c3[3];
    CHECK_EQ_INT(assign_min_cost(t, 3, 2, 1.0, c3, NULL), 0);
    CHECK_EQ_INT(c3[0], 0);
    CHECK_EQ_INT(c3[1], 1);
    CHECK_EQ_INT(c3[2], -1);
    const double all_over[1] = {2};
    CHECK_EQ_INT(assign_min_cost(all_over, 1, 1, 1.0, cr, NULL), 0);
    CHECK_EQ_INT(cr[0], -1);
}

static track_det box(float x, float y, float score, int cls)
{
    return (track_det){x, y, x + 40, y + 100, score, cls};
}

static void test_crossing(void)
{
    /* Two people walk towards each other along the same line and pass; a
     * third object of another class sits where they cross. */
    bytetrack *t = bytetrack_new(NULL);
    int64_t first[3] = {0}, ids[3];
    int same_a = 0, same_b = 0, frames = 60;
    for (int f = 0; f < frames; f++) {
        track_det d[3] = {box(50 + 8.0f * f, 200, 0.9f, 0), box(530 - 8.0f * f, 210, 0.8f, 0), box(290, 205, 0.7f, 2)};
        CHECK_EQ_INT(bytetrack_update(t, d, 3, f * 200, ids), 0);
        if (f == 0) {
            for (int i = 0; i < 3; i++) first[i] = ids[i];
            CHECK(ids[0] > 0 && ids[1] > 0 && ids[2] > 0);
        }
        same_a += ids[0] == first[0];
        same_b += ids[1] == first[1];
        CHECK_EQ_INT(ids[2], first[2]);
    }
    CHECK(same_a >= frames - 2);
    CHECK(same_b >= frames - 2);
    CHECK_EQ_INT(bytetrack_count(t), 3);
    const track_summary *s = bytetrack_summary(t, 0);
    CHECK(s != NULL);
    if (s) {
        CHECK_EQ_INT(s->frames, frames);
        CHECK_EQ_INT(s->first_ms, 0);
        CHECK_EQ_INT(s->last_ms, (frames - 1) * 200);
        CHECK(fabsf(s->best_confidence - 0.9f) < 1e-6f);
    }
    bytetrack_free(t);
}

static void test_low_and_lost(void)
{
    bytetrack *t = bytetrack_new(NULL);
    int64_t ids[1], id = 0;
    int f = 0;
    for (; f < 10; f++) {
        track_det d = box(100 + 4.0f * f, 100, 0.9f, 0);
        bytetrack_update(t, &d, 1, f, ids);
        if (f == 0) id = ids[0];
        CHECK_EQ_INT(ids[0], id);
    }
    /* Partly hidden: scores drop under the high threshold; the second
     * association keeps the id. */
    for (; f < 15; f++) {
        track_det d = box(100 + 4.0f * f, 100, 0.3f, 0);
        bytetrack_update(t, &d, 1, f, ids);
        CHECK_EQ_INT(ids[0], id);
    }
    /* Gone for 10 frames (under the buffer), back where it would be. */
    for (; f < 25; f++) bytetrack_update(t, NULL, 0, f, ids);
    for (; f < 28; f++) {
        track_det d = box(100 + 4.0f * f, 100, 0.9f, 0);
        bytetrack_update(t, &d, 1, f, ids);
        CHECK_EQ_INT(ids[0], id);
    }
    /* Gone for longer than the buffer: a new track, confirmed on its second frame. */
    for (; f < 70; f++) bytetrack_update(t, NULL, 0, f, ids);
    track_det d = box(100 + 4.0f * f, 100, 0.9f, 0);
    bytetrack_update(t, &d, 1, f++, ids);
    CHECK_EQ_INT(ids[0], 0);
    d = box(100 + 4.0f * f, 100, 0.9f, 0);
    bytetrack_update(t, &d, 1, f++, ids);
    CHECK(ids[0] > id);
    /* A low-score box alone never starts a track. */
    bytetrack *u = bytetrack_new(NULL);
    for (int i = 0; i < 5; i++) {
        track_det w = box(10, 10, 0.4f, 0);
        bytetrack_update(u, &w, 1, i, ids);
        CHECK_EQ_INT(ids[0], 0);
    }
    CHECK_EQ_INT(bytetrack_count(u), 0);
    bytetrack_free(u);
    bytetrack_free(t);
}

/* Streams are per key and name, bounded per key (the least recently used
 * one not in use makes room), and a held stream is never dropped. */
static void test_streams(void)
{
    track_stream *h, *held;
    int64_t ms, ids[1];
    bytetrack *a = track_stream_acquire(1, "cam", &ms, &held);
    CHECK(a != NULL);
    if (!a) return;
    track_det d = box(10, 10, 0.9f, 0);
    bytetrack_update(a, &d, 1, ms, ids);
    CHECK_EQ_INT(ids[0], 1);
    char name[16];
    for (int i = 0; i < TRACK_STREAMS_PER_KEY + 4; i++) {
        snprintf(name, sizeof name, "s%d", i);
        bytetrack *b = track_stream_acquire(1, name, &ms, &h);
        CHECK(b != NULL && b != a);
        if (b) track_stream_release(h);
    }
    CHECK_EQ_INT(track_streams_count(), TRACK_STREAMS_PER_KEY);
    /* "cam" was held all along: still there, with its track. */
    track_stream_release(held);
    a = track_stream_acquire(1, "cam", &ms, &held);
    d = box(12, 10, 0.9f, 0);
    bytetrack_update(a, &d, 1, ms, ids);
    CHECK_EQ_INT(ids[0], 1);
    CHECK_EQ_INT(bytetrack_count(a), 1);
    track_stream_release(held);
    /* Another key's stream of the same name is its own. */
    bytetrack *o = track_stream_acquire(2, "cam", &ms, &h);
    CHECK(o != NULL && o != a && bytetrack_count(o) == 0);
    track_stream_release(h);
    CHECK_EQ_INT(track_streams_count(), TRACK_STREAMS_PER_KEY + 1);
}

int main(void)
{
    test_kalman();
    test_assign();
    test_crossing();
    test_low_and_lost();
    test_streams();
    return check_report("track");
}
