/* util/bg_queue: tasks run in order on the background thread, the bound
 * refuses (the caller keeps the task), and stopping runs what is queued. */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>

#include "check.h"
#include "util/bg_queue.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool open_gate, started;
static int order[16], norder;
static pthread_t ran_on;

/* Holds the thread until the test opens the gate, so the queue fills. */
static void blocker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    ran_on = pthread_self();
    started = true;
    while (!open_gate) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void record(void *arg)
{
    pthread_mutex_lock(&mu);
    if (norder < 16) order[norder++] = *(int *)arg;
    pthread_mutex_unlock(&mu);
    free(arg);
}

static int *num(int v)
{
    int *p = malloc(sizeof *p);
    *p = v;
    return p;
}

int main(void)
{
    bg_queue *q = bgq_start(3, 1);
    CHECK(q != NULL);
    CHECK_EQ_INT(bgq_push(q, blocker, NULL), 0);
    /* Wait until the blocker runs: the queue is then empty, the thread busy. */
    for (;;) {
        pthread_mutex_lock(&mu);
        bool go_on = started;
        pthread_mutex_unlock(&mu);
        if (go_on) break;
        sched_yield();
    }
    CHECK(!pthread_equal(ran_on, pthread_self()));
    for (int i = 1; i <= 3; i++) CHECK_EQ_INT(bgq_push(q, record, num(i)), 0);
    int *extra = num(4);
    CHECK_EQ_INT(bgq_push(q, record, extra), -1); /* full: still the caller's */
    record(extra);
    pthread_mutex_lock(&mu);
    open_gate = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    bgq_stop(q); /* runs 1, 2, 3 before it returns */
    CHECK_EQ_INT(norder, 4);
    CHECK_EQ_INT(order[0], 4);
    CHECK_EQ_INT(order[1], 1);
    CHECK_EQ_INT(order[2], 2);
    CHECK_EQ_INT(order[3], 3);
    return check_report("bg_queue");
}
