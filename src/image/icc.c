/* ICC -> sRGB transforms, cached per profile. See icc.h. */
#include "image/icc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <lcms2.h>

#include "image/decode.h"
#include "image/icc_fast.h"
#include "image/sniff.h"

/* Distinct profiles kept: a fleet of phones sends a handful; a rare one past
 * this evicts the least recently used. */
#define ICC_CACHE_SLOTS 8
/* Profiles larger than this are converted but not cached (a profile of
 * several MB is an A2B LUT profile, rare, and would hold memory). */
#define ICC_CACHE_MAX_BYTES (256 * 1024)

struct image_icc {
    atomic_int refs;
    cmsHTRANSFORM xf;
    icc_fast *fast; /* NULL: LittleCMS applies xf */
};

typedef struct {
    uint64_t hash;
    size_t len;
    uint8_t *bytes;
    image_icc *t;
    uint64_t used; /* LRU stamp */
} slot;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static slot slots[ICC_CACHE_SLOTS];
static uint64_t clock_stamp;

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

void image_icc_release(image_icc *t)
{
    if (t && atomic_fetch_sub(&t->refs, 1) == 1) {
        cmsDeleteTransform(t->xf);
        free(t->fast);
        free(t);
    }
}

/* A new transform (one reference), or NULL (see image_icc_acquire). */
static image_icc *build(const uint8_t *profile, size_t len)
{
    cmsHPROFILE in = cmsOpenProfileFromMem(profile, (cmsUInt32Number)len);
    if (!in)
        return NULL;
    image_icc *t = NULL;
    if (cmsGetColorSpace(in) == cmsSigRgbData) {
        cmsHPROFILE srgb = cmsCreate_sRGBProfile();
        cmsHTRANSFORM xf = srgb ? cmsCreateTransform(in, TYPE_RGB_8, srgb, TYPE_RGB_8, INTENT_RELATIVE_COLORIMETRIC,
                                                     cmsFLAGS_NOCACHE)
                                : NULL;
        if (srgb)
            cmsCloseProfile(srgb);
        if (xf && !(t = malloc(sizeof *t)))
            cmsDeleteTransform(xf);
        if (t) {
            atomic_init(&t->refs, 1);
            t->xf = xf;
            t->fast = icc_fast_build(in, xf);
        }
    }
    cmsCloseProfile(in);
    return t;
}

image_icc *image_icc_acquire(const uint8_t *profile, size_t len)
{
    if (!profile || len < 132 || len > UINT32_MAX || image_icc_is_srgb(profile, len))
        return NULL;
    if (len > ICC_CACHE_MAX_BYTES)
        return build(profile, len);
    const uint64_t h = fnv1a(profile, len);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < ICC_CACHE_SLOTS; i++) {
        slot *s = &slots[i];
        if (s->bytes && s->hash == h && s->len == len && !memcmp(s->bytes, profile, len)) {
            s->used = ++clock_stamp;
            image_icc *t = s->t;
            if (t)
                atomic_fetch_add(&t->refs, 1);
            pthread_mutex_unlock(&mu);
            return t; /* NULL: a profile known to be unusable */
        }
    }
    pthread_mutex_unlock(&mu);
    /* Built outside the lock: two threads meeting a new profile at once
     * both build it, and the second keeps its own. */
    image_icc *t = build(profile, len);
    uint8_t *copy = malloc(len);
    if (!copy)
        return t;
    memcpy(copy, profile, len);
    pthread_mutex_lock(&mu);
    slot *victim = &slots[0];
    for (int i = 0; i < ICC_CACHE_SLOTS; i++) {
        if (!slots[i].bytes) {
            victim = &slots[i];
            break;
        }
        if (slots[i].used < victim->used)
            victim = &slots[i];
    }
    image_icc *old = victim->t;
    free(victim->bytes);
    *victim = (slot){.hash = h, .len = len, .bytes = copy, .t = t, .used = ++clock_stamp};
    if (t)
        atomic_fetch_add(&t->refs, 1); /* the cache's reference */
    pthread_mutex_unlock(&mu);
    image_icc_release(old);
    return t;
}

void image_icc_apply(const image_icc *t, uint8_t *rgb, size_t n)
{
    if (t->fast) {
        icc_fast_apply(t->fast, rgb, n);
        return;
    }
    /* cmsDoTransform takes a 32-bit count; in place is allowed when the
     * formats are the same size. */
    while (n > 0) {
        cmsUInt32Number k = n > (1u << 30) ? (1u << 30) : (cmsUInt32Number)n;
        cmsDoTransform(t->xf, rgb, rgb, k);
        rgb += (size_t)k * 3;
        n -= k;
    }
}

int image_icc_cached(void)
{
    int n = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < ICC_CACHE_SLOTS; i++)
        n += slots[i].t != NULL;
    pthread_mutex_unlock(&mu);
    return n;
}

void image_to_srgb(image_t *img)
{
    if (!img || !img->icc)
        return;
    if (img->pixels)
        image_icc_apply(img->icc, img->pixels, (size_t)img->width * (size_t)img->height);
    image_icc_release(img->icc);
    img->icc = NULL;
}
