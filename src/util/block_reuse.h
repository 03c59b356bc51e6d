/* Large buffers that keep their pages between images.
 *
 * Why: a decoded photo's pixels (2-3 MB for a phone photo at the scale a
 * detector needs) and a large upload's bytes are over glibc's mmap threshold
 * (main.c sets 1 MiB), so every image got fresh mappings and paid a minor
 * page fault per 4 KiB as they were first written (~650 for a 0.87 MP photo,
 * ~3800 for a 12 MP one); a quarter of the server's time sat in the kernel's
 * fault path. Freed large blocks wait here in a small pool, and the next
 * allocation that fits takes one, pages already mapped. One pool for all
 * threads: an upload is received on the HTTP engine's thread and freed on a
 * worker's.
 *
 * Bounds: blocks of BLOCK_REUSE_MIN..BLOCK_REUSE_MAX bytes only, at most
 * BLOCK_REUSE_SLOTS of them and BLOCK_REUSE_TOTAL bytes together (so RSS
 * after a load of 12 MP photos returns near idle); any other block is freed
 * at once.
 *
 * Blocks are plain malloc memory: block_free takes any malloc'd pointer, and
 * a block from block_alloc or block_take may be given to free() or
 * realloc(). Thread-safe. */
#ifndef SIGHT_UTIL_BLOCK_REUSE_H
#define SIGHT_UTIL_BLOCK_REUSE_H

#include <stddef.h>

#define BLOCK_REUSE_MIN (256u * 1024)
#define BLOCK_REUSE_MAX (12u * 1024 * 1024)
#define BLOCK_REUSE_TOTAL (24u * 1024 * 1024)
#define BLOCK_REUSE_SLOTS 8

/* Like malloc(n): the smallest pooled block that holds n bytes and is not
 * more than 4 times n, else a new one. */
void *block_alloc(size_t n);
/* For a buffer about to grow (an upload): the largest pooled block if it
 * holds n bytes, its usable size in *size; NULL when none does. */
void *block_take(size_t n, size_t *size);
/* Like free(p), but may keep p in the pool. */
void block_free(void *p);
/* Bytes in the pool (for tests and metrics). */
size_t block_reuse_kept(void);

#endif
