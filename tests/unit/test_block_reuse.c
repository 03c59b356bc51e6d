/* Per-thread reuse of large blocks: a freed photo-sized block comes back to
 * the next allocation on the same thread, small and huge ones never stay,
 * and a thread's block is released when it exits. */
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
    block_free(b); /* the larger one replaces the smaller */
    CHECK(block_reuse_kept() >= 3 * MB && block_reuse_kept() < 4 * MB);
    /* Far smaller requests do not take a large block. */
    void *small = block_alloc(100);
    CHECK(small != b);
    block_free(small);
    CHECK(block_reuse_kept() >= 3 * MB);
    /* Over the per-block bound: freed, the kept one stays. */
    void *huge = block_alloc(BLOCK_REUSE_MAX + MB);
    CHECK(huge != NULL);
    block_free(huge);
    CHECK(block_reuse_kept() >= 3 * MB && block_reuse_kept() <= BLOCK_REUSE_MAX);
    void *again = block_alloc(3 * MB);
    CHECK(again == b);
    block_free(again);
}

static void *keep_one(void *arg)
{
    (void)arg;
    block_free(block_alloc(2 * MB));
    return NULL;
}

static void test_thread_exit(void)
{
    size_t before = block_reuse_kept();
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, keep_one, NULL), 0);
    pthread_join(t, NULL);
    CHECK_EQ_INT(block_reuse_kept(), before);
}

/* Many threads keeping blocks: the total stays under its bound. */
static pthread_barrier_t all_kept;
static void *keep_and_wait(void *arg)
{
    (void)arg;
    block_free(block_alloc(10 * MB));
    pthread_barrier_wait(&all_kept);
    pthread_barrier_wait(&all_kept); /* the main thread reads the total in between */
    return NULL;
}

static void test_total_bound(void)
{
    enum { N = 6 };
    pthread_t t[N];
    pthread_barrier_init(&all_kept, NULL, N + 1);
    for (int i = 0; i < N; i++)
        pthread_create(&t[i], NULL, keep_and_wait, NULL);
    pthread_barrier_wait(&all_kept);
    CHECK(block_reuse_kept() <= BLOCK_REUSE_TOTAL);
    CHECK(block_reuse_kept() >= 10 * MB);
    pthread_barrier_wait(&all_kept);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&all_kept);
}

int main(void)
{
    test_reuse();
    test_thread_exit();
    test_total_bound();
    return check_report("block_reuse");
}
