/* Constant-velocity Kalman filter over a box's (cx, cy, aspect, height), as
 * in SORT/ByteTrack: the state adds the four velocities, the measurement is
 * the box itself. Noise scales with the box's height, so that a far (small)
 * object is not held to the same pixel error as a near one. */
#ifndef SIGHT_TRACK_KALMAN_H
#define SIGHT_TRACK_KALMAN_H

typedef struct {
    double x[8];    /* cx, cy, a, h, vcx, vcy, va, vh */
    double P[8][8]; /* covariance */
} kalman_box;

/* z: a measurement (cx, cy, a = w/h, h). */
void kalman_init(kalman_box *k, const double z[4]);
/* One frame on: the box moves by its velocity and grows less certain. */
void kalman_predict(kalman_box *k);
/* Corrects with a measurement. Returns 0, or -1 when the innovation's
 * covariance cannot be inverted (the state is left as predicted). */
int kalman_update(kalman_box *k, const double z[4]);

/* Corner form (x1, y1, x2, y2) <-> measurement form. */
void kalman_z_from_corners(const float b[4], double z[4]);
void kalman_corners(const kalman_box *k, float b[4]);

#endif
