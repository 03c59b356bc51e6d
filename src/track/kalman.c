#include "track/kalman.h"

#include <math.h>
#include <string.h>

/* The weights SORT and ByteTrack use: position error 1/20 of the height,
 * velocity error 1/160 of it per frame. */
#define W_POS (1.0 / 20.0)
#define W_VEL (1.0 / 160.0)

void kalman_z_from_corners(const float b[4], double z[4])
{
    double w = (double)b[2] - b[0], h = (double)b[3] - b[1];
    if (h < 1e-3) h = 1e-3;
    z[0] = ((double)b[0] + b[2]) / 2;
    z[1] = ((double)b[1] + b[3]) / 2;
    z[2] = w / h;
    z[3] = h;
}

void kalman_corners(const kalman_box *k, float b[4])
{
    double h = k->x[3], w = k->x[2] * h;
    b[0] = (float)(k->x[0] - w / 2);
    b[1] = (float)(k->x[1] - h / 2);
    b[2] = (float)(k->x[0] + w / 2);
    b[3] = (float)(k->x[1] + h / 2);
}

void kalman_init(kalman_box *k, const double z[4])
{
    memset(k, 0, sizeof *k);
    for (int i = 0; i < 4; i++) k->x[i] = z[i];
    double h = z[3];
    const double sd[8] = {2 * W_POS * h, 2 * W_POS * h, 1e-2, 2 * W_POS * h, 10 * W_VEL * h, 10 * W_VEL * h, 1e-5, 10 * W_VEL * h};
    for (int i = 0; i < 8; i++) k->P[i][i] = sd[i] * sd[i];
}

void kalman_predict(kalman_box *k)
{
    double h = k->x[3];
    const double sd[8] = {W_POS * h, W_POS * h, 1e-2, W_POS * h, W_VEL * h, W_VEL * h, 1e-5, W_VEL * h};
    for (int i = 0; i < 4; i++) k->x[i] += k->x[i + 4];
    /* P = F P F^T + Q with F = [I I; 0 I]: FP adds row i+4 to row i, then
     * (FP)F^T adds column j+4 to column j. */
    double T[8][8];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) T[i][j] = k->P[i][j] + (i < 4 ? k->P[i + 4][j] : 0);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) k->P[i][j] = T[i][j] + (j < 4 ? T[i][j + 4] : 0);
    for (int i = 0; i < 8; i++) k->P[i][i] += sd[i] * sd[i];
}

/* Inverts a 4x4 matrix by Gauss-Jordan with partial pivoting. */
static int invert4(double a[4][4], double inv[4][4])
{
    double m[4][8];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) m[i][j] = j < 4 ? a[i][j] : (j - 4 == i);
    for (int c = 0; c < 4; c++) {
        int p = c;
        for (int r = c + 1; r < 4; r++)
            if (fabs(m[r][c]) > fabs(m[p][c])) p = r;
        if (fabs(m[p][c]) < 1e-12) return -1;
        if (p != c)
            for (int j = 0; j < 8; j++) {
                double t = m[c][j];
                m[c][j] = m[p][j];
                m[p][j] = t;
            }
        double d = m[c][c];
        for (int j = 0; j < 8; j++) m[c][j] /= d;
        for (int r = 0; r < 4; r++) {
            if (r == c) continue;
            double f = m[r][c];
            for (int j = 0; j < 8; j++) m[r][j] -= f * m[c][j];
        }
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) inv[i][j] = m[i][j + 4];
    return 0;
}

int kalman_update(kalman_box *k, const double z[4])
{
    double h = k->x[3];
    const double sd[4] = {W_POS * h, W_POS * h, 1e-1, W_POS * h};
    /* S = H P H^T + R: the top-left block of P plus the measurement noise. */
    double S[4][4], Si[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) S[i][j] = k->P[i][j] + (i == j ? sd[i] * sd[i] : 0);
    if (invert4(S, Si) != 0) return -1;
    /* Gain K = P H^T S^-1 (8x4). */
    double K[8][4];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) {
            double s = 0;
            for (int l = 0; l < 4; l++) s += k->P[i][l] * Si[l][j];
            K[i][j] = s;
        }
    double y[4];
    for (int i = 0; i < 4; i++) y[i] = z[i] - k->x[i];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) k->x[i] += K[i][j] * y[j];
    /* P = P - K H P, where H P is the top four rows of P. */
    double T[8][8];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) {
            double s = 0;
            for (int l = 0; l < 4; l++) s += K[i][l] * k->P[l][j];
            T[i][j] = k->P[i][j] - s;
        }
    memcpy(k->P, T, sizeof T);
    return 0;
}
