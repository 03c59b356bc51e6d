/* Large buffers that keep their pages between images.
 *
 * Why: a decoded photo's pixels (2-3 MB for a phone photo at the scale a
 * detector needs) are over glibc's mmap threshold (main.c sets 1 MiB), so
 * every image got a fresh mapping and paid ~650 minor page faults while the
 * decoder first wrote it; a quarter of the server's time sat in the kernel's
 * fault path. Here each thread keeps the last large block it freed, and the
 * next block_alloc on that thread that fits reuses it, pages already mapped.
 *
 * Bounds: one block per thread, blocks of BLOCK_REUSE_MIN..BLOCK_REUSE_MAX
 * bytes only, and at most BLOCK_REUSE_TOTAL bytes kept over all threads
 * together (so RSS after a load of 12 MP photos returns near idle); a block
 * outside them is freed at once. A thread's block is freed when it exits.
 *
 * Blocks are plain malloc memory: block_free takes any malloc'd pointer, and
 * a block from block_alloc may be given to free(). Thread-safe. */
#ifndef SIGHT_UTIL_BLOCK_REUSE_H
#define SIGHT_UTIL_BLOCK_REUSE_H

#include <stddef.h>

#define BLOCK_REUSE_MIN (256u * 1024)
#define BLOCK_REUSE_MAX (12u * 1024 * 1024)
#define BLOCK_REUSE_TOTAL (24u * 1024 * 1024)

/* Like malloc(n): this thread's kept block when it is large enough (and not
 * more than 4 times n), else a new one. */
void *block_alloc(size_t n);
/* Like free(p), but may keep p for this thread's next block_alloc. */
void block_free(void *p);
/* Bytes kept over all threads (for tests and metrics). */
size_t block_reuse_kept(void);

#endif
