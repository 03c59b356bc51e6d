/* util/ticker: a chore runs at about its interval, on the ticker or on the
 * work queue as asked; a chore that may block is never queued twice while a
 * run is pending; ticker_remove waits out a run and stops the chore. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "check.h"
#include "util/clock.h"
#include "util/ticker.h"
#include "util/work_queue.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

typedef struct {
    atomic_int runs;
    atomic_int running, most_at_once; /* concurrent runs seen */
    int sleep_ms;                     /* each run takes this long */
    pthread_t thread;                 /* the last run's */
} chore;

static void count(void *arg)
{
    chore *c = arg;
    int now = atomic_fetch_add(&c->running, 1) + 1;
    int most = atomic_load(&c->most_at_once);
    while (now > most && !atomic_compare_exchange_weak(&c->most_at_once, &most, now)) {
    }
    c->thread = pthread_self();
    if (c->sleep_ms) sleep_ms(c->sleep_ms);
    atomic_fetch_add(&c->runs, 1);
    atomic_fetch_sub(&c->running, 1);
}

/* Holds the queue's only thread, so a chore's run stays pending. */
static atomic_bool hold;
static void holder(void *arg)
{
    (void)arg;
    while (atomic_load(&hold)) sleep_ms(5);
}

int main(void)
{
    work_queue *wq = wq_start(2, 64);
    ticker *tk = ticker_start(wq);
    CHECK(wq && tk);

    /* Interval respected: a 50 ms chore over 1 s runs about 20 times (the
     * first one interval after it is added), on the ticker's thread for a
     * quick one and on a queue thread for one that may block. */
    chore fast = {0}, queued = {0};
    double t0 = clock_ms();
    tk_chore *cf = ticker_add(tk, 0.05, false, count, &fast);
    tk_chore *cq = ticker_add(tk, 0.05, true, count, &queued);
    CHECK(cf && cq);
    sleep_ms(25);
    CHECK_EQ_INT(atomic_load(&fast.runs), 0); /* not before its first interval */
    sleep_ms(1000 - 25);
    ticker_remove(tk, cf);
    ticker_remove(tk, cq);
    double took = clock_ms() - t0;
    int nf = atomic_load(&fast.runs), nq = atomic_load(&queued.runs);
    printf("in %.0f ms: %d runs on the ticker, %d on the queue (50 ms interval)\n", took, nf, nq);
    CHECK(nf >= 10 && nf <= 21); /* fewer only on a starved machine; never more */
    CHECK(nq >= 10 && nq <= 21);
    CHECK(!pthread_equal(fast.thread, queued.thread));
    /* Removed: never runs again. */
    sleep_ms(150);
    CHECK_EQ_INT(atomic_load(&fast.runs), nf);
    CHECK_EQ_INT(atomic_load(&queued.runs), nq);

    /* A slow chore (200 ms a run, every 20 ms) on a queue of 2 threads:
     * never two runs at once, never queued behind itself. */
    chore slow = {.sleep_ms = 200};
    tk_chore *cs = ticker_add(tk, 0.02, true, count, &slow);
    sleep_ms(700);
    ticker_remove(tk, cs); /* waits for the run in progress */
    CHECK_EQ_INT(atomic_load(&slow.running), 0);
    CHECK_EQ_INT(atomic_load(&slow.most_at_once), 1);
    int ns = atomic_load(&slow.runs);
    printf("slow chore: %d runs in 700 ms\n", ns);
    CHECK(ns >= 1 && ns <= 4); /* at most 700 / 200 + the one in progress */
    ticker_stop(tk);
    wq_free(wq);

    /* Pending, not queued twice: with the queue's one thread held, a chore
     * due every 10 ms gets one job queued, which runs once when let go. */
    wq = wq_start(1, 64);
    tk = ticker_start(wq);
    atomic_store(&hold, true);
    CHECK_EQ_INT(wq_push(wq, holder, NULL, NULL), 0);
    chore pend = {0};
    tk_chore *cp = ticker_add(tk, 0.01, true, count, &pend);
    sleep_ms(200); /* about 20 ticks */
    CHECK_EQ_INT(atomic_load(&pend.runs), 0);
    /* Stop ticking it, then let the held thread go: exactly the one queued run. */
    atomic_store(&hold, false);
    ticker_remove(tk, cp);
    CHECK_EQ_INT(atomic_load(&pend.runs), 1);

    /* Stopped queue: a chore that may block is skipped, not run inline. */
    wq_stop(wq);
    chore skipped = {0};
    tk_chore *ck = ticker_add(tk, 0.01, true, count, &skipped);
    sleep_ms(100);
    ticker_remove(tk, ck);
    CHECK_EQ_INT(atomic_load(&skipped.runs), 0);
    /* A chore left when the ticker stops is dropped (and freed). */
    ticker_add(tk, 0.01, false, count, &skipped);
    ticker_stop(tk);
    wq_free(wq);

    /* No queue: a chore that may block runs on the ticker itself. */
    tk = ticker_start(NULL);
    chore inl = {0};
    tk_chore *ci = ticker_add(tk, 0.01, true, count, &inl);
    for (int waited = 0; waited < 2000 && atomic_load(&inl.runs) < 3; waited += 10) sleep_ms(10);
    ticker_remove(tk, ci);
    CHECK(atomic_load(&inl.runs) >= 3);
    ticker_stop(tk);
    ticker_stop(NULL);
    return check_report("ticker");
}
