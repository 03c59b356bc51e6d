/* Per-thread reuse of large blocks. See block_reuse.h. */
#include "util/block_reuse.h"

#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>

static _Thread_local void *kept;
static _Thread_local size_t kept_size;
static atomic_size_t total;
static pthread_key_t exit_key;
static bool have_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

/* At thread exit (the key's value is only a marker that the thread keeps
 * a block): give the block back. */
static void on_exit_thread(void *marker)
{
    (void)marker;
    if (kept) {
        free(kept);
        atomic_fetch_sub(&total, kept_size);
        kept = NULL;
        kept_size = 0;
    }
}

static void make_key(void)
{
    /* Without a key a thread's block stays until the process exits, still
     * counted against the total. */
    have_key = pthread_key_create(&exit_key, on_exit_thread) == 0;
}

void *block_alloc(size_t n)
{
    if (kept && n >= BLOCK_REUSE_MIN / 4 && kept_size >= n && kept_size / 4 <= n) {
        void *p = kept;
        atomic_fetch_sub(&total, kept_size);
        kept = NULL;
        kept_size = 0;
        return p;
    }
    return malloc(n ? n : 1);
}

void block_free(void *p)
{
    if (!p)
        return;
    size_t n = malloc_usable_size(p);
    if (n < BLOCK_REUSE_MIN || n > BLOCK_REUSE_MAX || (kept && kept_size >= n)) {
        free(p);
        return;
    }
    /* Keep the larger: a photo's buffer serves the next, smaller ones too. */
    size_t now = atomic_fetch_add(&total, n);
    if (now + n - kept_size > BLOCK_REUSE_TOTAL) {
        atomic_fetch_sub(&total, n);
        free(p);
        return;
    }
    if (kept) {
        free(kept);
        atomic_fetch_sub(&total, kept_size);
    } else {
        pthread_once(&exit_once, make_key);
        if (have_key)
            pthread_setspecific(exit_key, (void *)1);
    }
    kept = p;
    kept_size = n;
}

size_t block_reuse_kept(void)
{
    return atomic_load(&total);
}
