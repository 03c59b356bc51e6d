#include "track/bytetrack.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "track/assign.h"
#include "track/kalman.h"

/* Summaries kept per tracker: a very long stream stops listing new tracks
 * (their ids still go on the detections). */
#define MAX_SUMMARIES 10000

typedef enum { T_NEW,
               T_TRACKED,
               T_LOST } track_state;

typedef struct {
    kalman_box kf;
    track_state state;
    bool confirmed;
    int cls;
    int64_t id;         /* 0 until confirmed */
    int64_t last_frame; /* frame of its last matched detection */
    size_t summary;     /* index in summaries, when confirmed */
    float score;        /* of its last matched detection */
    int64_t first_ms;
    float first_score;
} track;

struct bytetrack {
    bytetrack_params p;
    track *tracks;
    int n, cap;
    int64_t frame, next_id;
    track_summary *sum;
    size_t nsum, capsum;
};

void bytetrack_defaults(bytetrack_params *p)
{
    *p = (bytetrack_params){.high = 0.5f, .low = 0.1f, .new_track = 0.6f, .match_iou = 0.2f, .low_iou = 0.5f, .buffer = 30, .max_tracks = 1000};
}

bytetrack *bytetrack_new(const bytetrack_params *p)
{
    bytetrack *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (p) t->p = *p;
    else bytetrack_defaults(&t->p);
    t->next_id = 1;
    return t;
}

void bytetrack_free(bytetrack *t)
{
    if (!t) return;
    free(t->tracks);
    free(t->sum);
    free(t);
}

size_t bytetrack_count(const bytetrack *t) { return t->nsum; }
const track_summary *bytetrack_summary(const bytetrack *t, size_t i) { return i < t->nsum ? &t->sum[i] : NULL; }

static float iou(const float a[4], const float b[4])
{
    float iw = (a[2] < b[2] ? a[2] : b[2]) - (a[0] > b[0] ? a[0] : b[0]);
    float ih = (a[3] < b[3] ? a[3] : b[3]) - (a[1] > b[1] ? a[1] : b[1]);
    if (iw <= 0 || ih <= 0) return 0;
    float inter = iw * ih;
    float u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return u > 0 ? inter / u : 0;
}

/* Matches tracks tr[0..nt) to detections di[0..nd) by 1 - IoU (times the
 * detection's score when fuse is set, as ByteTrack's first association does),
 * never across classes; tm[k] receives the detection matched to tr[k] or -1. */
static int associate(const bytetrack *t, const int *tr, int nt, const track_det *dets, const int *di, int nd, float min_sim, bool fuse, int *tm)
{
    for (int k = 0; k < nt; k++) tm[k] = -1;
    if (nt == 0 || nd == 0) return 0;
    double *cost = calloc((size_t)nt * nd, sizeof *cost);
    int *m = malloc((size_t)nt * sizeof *m);
    if (!cost || !m) {
        free(cost);
        free(m);
        return -1;
    }
    for (int a = 0; a < nt; a++) {
        const track *x = &t->tracks[tr[a]];
        float pb[4];
        kalman_corners(&x->kf, pb);
        for (int b = 0; b < nd; b++) {
            const track_det *d = &dets[di[b]];
            const float db[4] = {d->x1, d->y1, d->x2, d->y2};
            float s = d->cls == x->cls ? iou(pb, db) : 0;
            if (fuse) s *= d->score;
            cost[(size_t)a * nd + b] = 1.0 - s;
        }
    }
    int rc = assign_min_cost(cost, nt, nd, 1.0 - min_sim, m, NULL);
    for (int a = 0; rc == 0 && a < nt; a++) tm[a] = m[a] < 0 ? -1 : di[m[a]];
    free(cost);
    free(m);
    return rc;
}

static int confirm(bytetrack *t, track *x)
{
    if (t->nsum == t->capsum && t->nsum < MAX_SUMMARIES) {
        size_t nc = t->capsum ? t->capsum * 2 : 16;
        track_summary *s = realloc(t->sum, nc * sizeof *s);
        if (!s) return -1;
        t->sum = s;
        t->capsum = nc;
    }
    x->confirmed = true;
    x->id = t->next_id++;
    x->summary = SIZE_MAX;
    if (t->nsum < t->capsum) {
        x->summary = t->nsum;
        t->sum[t->nsum++] = (track_summary){x->id, x->cls, x->first_ms, x->first_ms, 1, x->first_score};
    }
    return 0;
}

/* Detection d as the Kalman filter's measurement. */
static void det_z(const track_det *d, double z[4])
{
    const float b[4] = {d->x1, d->y1, d->x2, d->y2};
    kalman_z_from_corners(b, z);
}

/* Track x was seen in this frame as detection d. */
static void seen(const bytetrack *t, track *x, const track_det *d)
{
    x->state = T_TRACKED;
    x->last_frame = t->frame;
    x->score = d->score;
}

/* Detection d (index di) joins track x. */
static int absorb(bytetrack *t, track *x, const track_det *d, int di, int64_t ms, int64_t *ids)
{
    double z[4];
    det_z(d, z);
    kalman_update(&x->kf, z);
    seen(t, x, d);
    if (!x->confirmed && confirm(t, x) != 0) return -1;
    if (x->summary != SIZE_MAX) {
        track_summary *s = &t->sum[x->summary];
        s->last_ms = ms;
        s->frames++;
        if (d->score > s->best_confidence) s->best_confidence = d->score;
    }
    ids[di] = x->id;
    return 0;
}

int bytetrack_update(bytetrack *t, const track_det *dets, int n, int64_t time_ms, int64_t *ids)
{
    t->frame++;
    for (int i = 0; i < n; i++) ids[i] = 0;
    int rc = -1;
    int *hi = malloc(((size_t)n + 1) * sizeof *hi), *lo = malloc(((size_t)n + 1) * sizeof *lo);
    int *pool = malloc(((size_t)t->n + 1) * sizeof *pool), *fresh = malloc(((size_t)t->n + 1) * sizeof *fresh);
    int *tm = malloc(((size_t)t->n + 1) * sizeof *tm);
    char *used = calloc((size_t)n + 1, 1);
    if (!hi || !lo || !pool || !fresh || !tm || !used) goto out;
    int nh = 0, nl = 0, np = 0, nf = 0;
    for (int i = 0; i < n; i++) {
        if (dets[i].score >= t->p.high) hi[nh++] = i;
        else if (dets[i].score >= t->p.low) lo[nl++] = i;
    }
    /* Tracked and lost tracks form the pool; unconfirmed ones wait for the
     * high detections the pool leaves. Every box moves to its prediction. */
    for (int k = 0; k < t->n; k++) {
        kalman_predict(&t->tracks[k].kf);
        if (t->tracks[k].confirmed) pool[np++] = k;
        else fresh[nf++] = k;
    }
    /* 1: high-score detections to the pool. */
    if (associate(t, pool, np, dets, hi, nh, t->p.match_iou, true, tm) != 0) goto out;
    int nr = 0;
    for (int a = 0; a < np; a++) {
        if (tm[a] >= 0) {
            used[tm[a]] = 1;
            if (absorb(t, &t->tracks[pool[a]], &dets[tm[a]], tm[a], time_ms, ids) != 0) goto out;
        } else if (t->tracks[pool[a]].state == T_TRACKED) {
            pool[nr++] = pool[a]; /* only tracks seen last frame try the low boxes */
        }
    }
    /* 2: low-score detections to the tracked ones left (no score fusion). */
    if (associate(t, pool, nr, dets, lo, nl, t->p.low_iou, false, tm) != 0) goto out;
    for (int a = 0; a < nr; a++) {
        if (tm[a] >= 0) {
            if (absorb(t, &t->tracks[pool[a]], &dets[tm[a]], tm[a], time_ms, ids) != 0) goto out;
        } else {
            t->tracks[pool[a]].state = T_LOST;
        }
    }
    /* 3: unconfirmed tracks to the high detections left. */
    int nh2 = 0;
    for (int b = 0; b < nh; b++)
        if (!used[hi[b]]) hi[nh2++] = hi[b];
    if (associate(t, fresh, nf, dets, hi, nh2, 0.3f, true, tm) != 0) goto out;
    for (int a = 0; a < nf; a++) {
        if (tm[a] >= 0) {
            used[tm[a]] = 1;
            if (absorb(t, &t->tracks[fresh[a]], &dets[tm[a]], tm[a], time_ms, ids) != 0) goto out;
        } else {
            t->tracks[fresh[a]].state = T_LOST; /* removed below: an unconfirmed track gets one chance */
            t->tracks[fresh[a]].last_frame = -1000000;
        }
    }
    /* Forget tracks lost for longer than the buffer. */
    int w = 0;
    for (int k = 0; k < t->n; k++) {
        track *x = &t->tracks[k];
        if (x->state == T_LOST && t->frame - x->last_frame > t->p.buffer) continue;
        t->tracks[w++] = *x;
    }
    t->n = w;
    /* 4: new tracks from the high detections nothing matched. */
    for (int b = 0; b < nh2; b++) {
        const track_det *d = &dets[hi[b]];
        if (used[hi[b]] || d->score < t->p.new_track || t->n >= t->p.max_tracks) continue;
        if (t->n == t->cap) {
            int nc = t->cap ? t->cap * 2 : 16;
            track *g = realloc(t->tracks, (size_t)nc * sizeof *g);
            if (!g) goto out;
            t->tracks = g;
            t->cap = nc;
        }
        track *x = &t->tracks[t->n++];
        memset(x, 0, sizeof *x);
        double z[4];
        det_z(d, z);
        kalman_init(&x->kf, z);
        seen(t, x, d);
        x->cls = d->cls;
        x->first_score = d->score;
        x->first_ms = time_ms;
        /* In the first frame every track is confirmed at once (the paper). */
        if (t->frame == 1) {
            if (confirm(t, x) != 0) goto out;
            ids[hi[b]] = x->id;
        }
    }
    rc = 0;
out:
    free(hi);
    free(lo);
    free(pool);
    free(fresh);
    free(tm);
    free(used);
    return rc;
}
