/* Matrix/TRC -> sRGB in plain C. See icc_fast.h. */
#include "image/icc_fast.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

/* Linear light quantised to 1/(ENC_N-1) before encoding: fine enough that
 * the darkest steps of the sRGB curve stay within a level. */
#define ENC_N 8192

struct icc_fast {
    float lin[3][256]; /* input byte -> linear light, per channel */
    float m[3][3];     /* linear input RGB -> linear sRGB */
    uint8_t enc[ENC_N];
};

/* The colorants of a matrix/TRC profile as a matrix (columns r, g, b; PCS
 * XYZ, D50) and its curves; false when a tag is missing. */
static bool read_matrix(cmsHPROFILE p, double m[3][3], cmsToneCurve *trc[3])
{
    static const cmsTagSignature col[3] = {cmsSigRedColorantTag, cmsSigGreenColorantTag, cmsSigBlueColorantTag};
    static const cmsTagSignature cur[3] = {cmsSigRedTRCTag, cmsSigGreenTRCTag, cmsSigBlueTRCTag};
    for (int c = 0; c < 3; c++) {
        const cmsCIEXYZ *xyz = cmsReadTag(p, col[c]);
        trc[c] = cmsReadTag(p, cur[c]);
        if (!xyz || !trc[c])
            return false;
        m[0][c] = xyz->X, m[1][c] = xyz->Y, m[2][c] = xyz->Z;
    }
    return true;
}

static bool invert3(const double a[3][3], double r[3][3])
{
    double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
        a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    if (!(fabs(det) > 1e-12))
        return false;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            int i1 = (j + 1) % 3, i2 = (j + 2) % 3, j1 = (i + 1) % 3, j2 = (i + 2) % 3;
            r[i][j] = (a[i1][j1] * a[i2][j2] - a[i1][j2] * a[i2][j1]) / det;
        }
    return true;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ICC_AVX2 1

/* The same arithmetic as the plain loop, 8 pixels a step with AVX2: the same
 * float operations in the same order (no FMA, as the plain code compiled
 * with -std=c11), so the bytes are identical. The table lookups stay scalar
 * loads: AVX2 gathers cost more than they save here (1.33 against 1.2 ms
 * for a 640x480 letterbox; the plain loop 4.6, on the shared machine).
 * Returns the pixels done; the rest go to the plain loop. */
__attribute__((target("avx2"))) static size_t apply_avx2(const icc_fast *t, uint8_t *p, size_t n)
{
    const __m256 m00 = _mm256_set1_ps(t->m[0][0]), m01 = _mm256_set1_ps(t->m[0][1]), m02 = _mm256_set1_ps(t->m[0][2]),
                 m10 = _mm256_set1_ps(t->m[1][0]), m11 = _mm256_set1_ps(t->m[1][1]), m12 = _mm256_set1_ps(t->m[1][2]),
                 m20 = _mm256_set1_ps(t->m[2][0]), m21 = _mm256_set1_ps(t->m[2][1]), m22 = _mm256_set1_ps(t->m[2][2]);
    const __m256 top = _mm256_set1_ps((float)(ENC_N - 1)), zero = _mm256_setzero_ps(), half = _mm256_set1_ps(0.5f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8, p += 24) {
        __m256 r = _mm256_setr_ps(t->lin[0][p[0]], t->lin[0][p[3]], t->lin[0][p[6]], t->lin[0][p[9]], t->lin[0][p[12]],
                                  t->lin[0][p[15]], t->lin[0][p[18]], t->lin[0][p[21]]);
        __m256 g = _mm256_setr_ps(t->lin[1][p[1]], t->lin[1][p[4]], t->lin[1][p[7]], t->lin[1][p[10]], t->lin[1][p[13]],
                                  t->lin[1][p[16]], t->lin[1][p[19]], t->lin[1][p[22]]);
        __m256 b = _mm256_setr_ps(t->lin[2][p[2]], t->lin[2][p[5]], t->lin[2][p[8]], t->lin[2][p[11]], t->lin[2][p[14]],
                                  t->lin[2][p[17]], t->lin[2][p[20]], t->lin[2][p[23]]);
        __m256 x = _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(m00, r), _mm256_mul_ps(m01, g)), _mm256_mul_ps(m02, b)), top);
        __m256 y = _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(m10, r), _mm256_mul_ps(m11, g)), _mm256_mul_ps(m12, b)), top);
        __m256 z = _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(m20, r), _mm256_mul_ps(m21, g)), _mm256_mul_ps(m22, b)), top);
        /* x > 0 ? min(x, top) : 0, as the scalar code (no NaN here). */
        x = _mm256_max_ps(_mm256_min_ps(x, top), zero);
        y = _mm256_max_ps(_mm256_min_ps(y, top), zero);
        z = _mm256_max_ps(_mm256_min_ps(z, top), zero);
        int ix[8], iy[8], iz[8];
        _mm256_storeu_si256((__m256i *)(void *)ix, _mm256_cvttps_epi32(_mm256_add_ps(x, half)));
        _mm256_storeu_si256((__m256i *)(void *)iy, _mm256_cvttps_epi32(_mm256_add_ps(y, half)));
        _mm256_storeu_si256((__m256i *)(void *)iz, _mm256_cvttps_epi32(_mm256_add_ps(z, half)));
        for (int k = 0; k < 8; k++) p[3 * k] = t->enc[ix[k]], p[3 * k + 1] = t->enc[iy[k]], p[3 * k + 2] = t->enc[iz[k]];
    }
    return i;
}
#endif

void icc_fast_apply(const icc_fast *t, uint8_t *p, size_t n)
{
#ifdef ICC_AVX2
    if (__builtin_cpu_supports("avx2")) {
        size_t done = apply_avx2(t, p, n);
        p += done * 3;
        n -= done;
    }
#endif
    icc_fast_apply_plain(t, p, n);
}

void icc_fast_apply_plain(const icc_fast *t, uint8_t *p, size_t n)
{
    const float(*lin)[256] = t->lin;
    const float m00 = t->m[0][0], m01 = t->m[0][1], m02 = t->m[0][2], m10 = t->m[1][0], m11 = t->m[1][1],
                m12 = t->m[1][2], m20 = t->m[2][0], m21 = t->m[2][1], m22 = t->m[2][2];
    const float top = (float)(ENC_N - 1);
    for (size_t i = 0; i < n; i++, p += 3) {
        const float r = lin[0][p[0]], g = lin[1][p[1]], b = lin[2][p[2]];
        /* Out of gamut clips, as LittleCMS does for 8-bit output. Plain
         * comparisons: fminf and fmaxf are calls without -ffast-math. */
        float x = (m00 * r + m01 * g + m02 * b) * top, y = (m10 * r + m11 * g + m12 * b) * top,
              z = (m20 * r + m21 * g + m22 * b) * top;
        x = x > 0.0f ? (x < top ? x : top) : 0.0f;
        y = y > 0.0f ? (y < top ? y : top) : 0.0f;
        z = z > 0.0f ? (z < top ? z : top) : 0.0f;
        p[0] = t->enc[(int)(x + 0.5f)], p[1] = t->enc[(int)(y + 0.5f)], p[2] = t->enc[(int)(z + 0.5f)];
    }
}

/* Every 15th level of each channel (18^3 colours, the corners included)
 * through both: at most one level apart. */
static bool matches(const icc_fast *t, cmsHTRANSFORM ref)
{
    enum { STEPS = 18,
           N = STEPS * STEPS * STEPS };
    uint8_t *a = malloc((size_t)N * 3 * 2), *b = a ? a + (size_t)N * 3 : NULL;
    if (!a)
        return false;
    size_t k = 0;
    for (int r = 0; r < STEPS; r++)
        for (int g = 0; g < STEPS; g++)
            for (int bl = 0; bl < STEPS; bl++, k += 3)
                a[k] = (uint8_t)(r * 15), a[k + 1] = (uint8_t)(g * 15), a[k + 2] = (uint8_t)(bl * 15);
    cmsDoTransform(ref, a, b, N);
    icc_fast_apply(t, a, N);
    bool ok = true;
    for (size_t i = 0; i < (size_t)N * 3 && ok; i++)
        ok = abs((int)a[i] - (int)b[i]) <= 1;
    free(a);
    return ok;
}

icc_fast *icc_fast_build(cmsHPROFILE in, cmsHTRANSFORM ref)
{
    if (!cmsIsMatrixShaper(in))
        return NULL;
    cmsHPROFILE srgb = cmsCreate_sRGBProfile();
    if (!srgb)
        return NULL;
    double mi[3][3], ms[3][3], inv[3][3];
    cmsToneCurve *ti[3], *ts[3], *back = NULL;
    icc_fast *t = NULL;
    if (read_matrix(in, mi, ti) && read_matrix(srgb, ms, ts) && invert3(ms, inv) &&
        (back = cmsReverseToneCurve(ts[0])) && (t = malloc(sizeof *t))) {
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                t->m[i][j] = (float)(inv[i][0] * mi[0][j] + inv[i][1] * mi[1][j] + inv[i][2] * mi[2][j]);
        for (int c = 0; c < 3; c++)
            for (int v = 0; v < 256; v++)
                t->lin[c][v] = cmsEvalToneCurveFloat(ti[c], (cmsFloat32Number)v / 255.0f);
        for (int i = 0; i < ENC_N; i++) {
            float e = cmsEvalToneCurveFloat(back, (cmsFloat32Number)i / (ENC_N - 1));
            t->enc[i] = (uint8_t)lrintf(fminf(fmaxf(e, 0.0f), 1.0f) * 255.0f);
        }
    }
    if (back)
        cmsFreeToneCurve(back);
    cmsCloseProfile(srgb);
    if (t && !matches(t, ref)) {
        free(t);
        t = NULL;
    }
    return t;
}
