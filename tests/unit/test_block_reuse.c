/* The pool of large blocks: a freed photo-sized block comes back to the next
 * allocation that fits, on any thread; small and huge ones never stay; a
 * growing buffer takes the largest; the total stays under its bound. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "util/block_reuse.h"

#define MB (1024u * 1024)

static void test_reuse(void)
{
    uint8_t *a = block_alloc(3 * MB);
    CHECK(a != NULL);
    memset(a, 1, 3 * MB);
    block_free(a);
    CHECK(block_reuse_kept() >= 3 * MB);
    /* A smaller image after a larger one: the same pages. */
    uint8_t *b = block_alloc(2 * MB + 12345);
    CHECK(b == a);
    CHECK_EQ_INT(block_reuse_kept(), 0);
    /* Nothing kept: a new block. */
    uint8_t *c = block_alloc(2 * MB);
    CHECK(c != NULL && c != b);
    block_free(c);
    block_free(b);
    CHECK(block_reuse_kept() >= 5 * MB && block_reuse_kept() < 6 * MB);
    /* Far smaller requests do not take a large block, nor stay. */
    void *small = block_alloc(100);
    CHECK(small != b && small != c);
    block_free(small);
    CHECK(block_reuse_kept() < 6 * MB);
    /* Over the per-block bound: freed. */
    void *huge = block_alloc(BLOCK_REUSE_MAX + MB);
    CHECK(huge != NULL);
    block_free(huge);
    CHECK(block_reuse_kept() < 6 * MB);
    /* Best fit: the 3 MB request gets the 3 MB block, the 2 MB one the other. */
    void *again = block_alloc(3 * MB);
    CHECK(again == b);
    void *two = block_alloc(2 * MB);
    CHECK(two == c);
    CHECK_EQ_INT(block_reuse_kept(), 0);
    block_free(two);
    block_free(again);
    /* A growing buffer takes the largest, and learns its size. */
    size_t got = 0;
    void *grow = block_take(BLOCK_REUSE_MIN, &got);
    CHECK(grow == b && got >= 3 * MB);
    CHECK(block_take(4 * MB, &got) == NULL); /* the 2 MB one is too small */
    block_free(grow);
}

static void *free_one(void *arg)
{
    block_free(arg);
    return NULL;
}

/* libmicrohttpd's thread receives an upload, a worker frees it. */
static void test_across_threads(void)
{
    void *p = block_alloc(4 * MB);
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, free_one, p), 0);
    pthread_join(t, NULL);
    CHECK(block_alloc(4 * MB) == p);
    block_free(p);
}

static void test_total_bound(void)
{
    void *p[BLOCK_REUSE_SLOTS + 4];
    for (int i = 0; i < BLOCK_REUSE_SLOTS + 4; i++)
        p[i] = malloc(10 * MB);
    for (int i = 0; i < BLOCK_REUSE_SLOTS + 4; i++)
        block_free(p[i]);
    CHECK(block_reuse_kept() <= BLOCK_REUSE_TOTAL);
    CHECK(block_reuse_kept() >= 10 * MB);
}

int main(void)
{
    test_reuse();
    test_across_threads();
    test_total_bound();
    return check_report("block_reuse");
}
