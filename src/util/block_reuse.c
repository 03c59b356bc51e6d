/* A small pool of large freed blocks. See block_reuse.h. */
#include "util/block_reuse.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static void *blocks[BLOCK_REUSE_SLOTS];
static size_t sizes[BLOCK_REUSE_SLOTS];
static size_t total;

/* Takes slot i out of the pool; mu held. */
static void *take(int i)
{
    void *p = blocks[i];
    total -= sizes[i];
    blocks[i] = NULL;
    sizes[i] = 0;
    return p;
}

void *block_alloc(size_t n)
{
    if (n >= BLOCK_REUSE_MIN / 4 && n <= BLOCK_REUSE_MAX) {
        pthread_mutex_lock(&mu);
        int best = -1;
        for (int i = 0; i < BLOCK_REUSE_SLOTS; i++)
            if (blocks[i] && sizes[i] >= n && sizes[i] / 4 <= n && (best < 0 || sizes[i] < sizes[best]))
                best = i;
        void *p = best >= 0 ? take(best) : NULL;
        pthread_mutex_unlock(&mu);
        if (p)
            return p;
    }
    return malloc(n ? n : 1);
}

void *block_take(size_t n, size_t *size)
{
    pthread_mutex_lock(&mu);
    int best = -1;
    for (int i = 0; i < BLOCK_REUSE_SLOTS; i++)
        if (blocks[i] && (best < 0 || sizes[i] > sizes[best]))
            best = i;
    void *p = NULL;
    if (best >= 0 && sizes[best] >= n) {
        *size = sizes[best];
        p = take(best);
    }
    pthread_mutex_unlock(&mu);
    return p;
}

void block_free(void *p)
{
    if (!p)
        return;
    size_t n = malloc_usable_size(p);
    if (n < BLOCK_REUSE_MIN || n > BLOCK_REUSE_MAX) {
        free(p);
        return;
    }
    pthread_mutex_lock(&mu);
    /* A free slot, else the smallest block if this one is larger: large
     * blocks serve small requests, not the other way round. */
    int at = -1;
    for (int i = 0; i < BLOCK_REUSE_SLOTS && at < 0; i++)
        if (!blocks[i])
            at = i;
    if (at < 0) {
        at = 0;
        for (int i = 1; i < BLOCK_REUSE_SLOTS; i++)
            if (sizes[i] < sizes[at])
                at = i;
        if (sizes[at] >= n)
            at = -1;
    }
    void *evicted = NULL;
    if (at >= 0 && total - sizes[at] + n <= BLOCK_REUSE_TOTAL) {
        evicted = blocks[at] ? take(at) : NULL;
        blocks[at] = p;
        sizes[at] = n;
        total += n;
        p = NULL;
    }
    pthread_mutex_unlock(&mu);
    free(evicted);
    free(p);
}

size_t block_reuse_kept(void)
{
    pthread_mutex_lock(&mu);
    size_t n = total;
    pthread_mutex_unlock(&mu);
    return n;
}
