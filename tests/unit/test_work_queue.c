/* util/work_queue: every job runs, its completion once and after it, the
 * bound refuses (the caller keeps the job), stopping drains what is queued
 * and refuses later pushes, and the jobs run on the pool's threads. Also
 * util/parallel: every index once, index 0 on the caller, the rest not. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "check.h"
#include "util/parallel.h"
#include "util/work_queue.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool open_gate;
static int blocked;
static pthread_t main_thread;

typedef struct {
    int ran, done;
    bool done_after_run; /* done saw ran already set */
    bool on_main;        /* ran on the caller's thread (it must not) */
} job;

#define NJOBS 200
static job jobs[NJOBS];

static void run(void *arg)
{
    job *j = arg;
    pthread_mutex_lock(&mu);
    j->ran++;
    j->on_main = pthread_equal(pthread_self(), main_thread);
    pthread_mutex_unlock(&mu);
}

static void done(void *arg)
{
    job *j = arg;
    pthread_mutex_lock(&mu);
    j->done_after_run = j->ran == 1;
    j->done++;
    pthread_mutex_unlock(&mu);
}

/* Holds its thread until the test opens the gate, so the queue fills. */
static void blocker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    blocked++;
    pthread_cond_broadcast(&cv);
    while (!open_gate) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static int par_calls[8];
static bool par_on_main[8];

static void par_fn(void *arg, int i)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    par_calls[i]++;
    par_on_main[i] = pthread_equal(pthread_self(), main_thread);
    pthread_mutex_unlock(&mu);
}

int main(void)
{
    main_thread = pthread_self();

    /* Many jobs on 4 threads: each runs once, then its completion, once. */
    work_queue *q = wq_start(4, 1000);
    CHECK(q != NULL);
    CHECK_EQ_INT(wq_threads(q), 4);
    for (int i = 0; i < NJOBS; i++) CHECK_EQ_INT(wq_push(q, run, done, &jobs[i]), 0);
    wq_stop(q); /* drains: every job queued has run when it returns */
    int ran_once = 0, done_once = 0, ordered = 0, off_main = 0;
    for (int i = 0; i < NJOBS; i++) {
        ran_once += jobs[i].ran == 1;
        done_once += jobs[i].done == 1;
        ordered += jobs[i].done_after_run;
        off_main += !jobs[i].on_main;
    }
    CHECK_EQ_INT(ran_once, NJOBS);
    CHECK_EQ_INT(done_once, NJOBS);
    CHECK_EQ_INT(ordered, NJOBS);
    CHECK_EQ_INT(off_main, NJOBS);
    /* Stopped: refused, nothing called. */
    job late = {0};
    CHECK_EQ_INT(wq_push(q, run, done, &late), -1);
    wq_stop(q); /* twice is fine */
    wq_free(q);
    CHECK_EQ_INT(late.ran + late.done, 0);

    /* The bound: one thread held, two jobs fit, the third is refused; the
     * stop waits for the held job, then runs the two queued. */
    q = wq_start(1, 2);
    job a = {0}, b = {0}, c = {0};
    CHECK_EQ_INT(wq_push(q, blocker, NULL, NULL), 0);
    pthread_mutex_lock(&mu);
    while (!blocked) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    CHECK_EQ_INT(wq_push(q, run, done, &a), 0);
    CHECK_EQ_INT(wq_push(q, run, NULL, &b), 0); /* no completion: allowed */
    CHECK_EQ_INT(wq_push(q, run, done, &c), -1);
    CHECK_EQ_INT(wq_push(q, NULL, done, &c), -1); /* no function: refused */
    pthread_mutex_lock(&mu);
    open_gate = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    wq_free(q); /* stops first */
    CHECK_EQ_INT(a.ran, 1);
    CHECK_EQ_INT(a.done, 1);
    CHECK_EQ_INT(b.ran, 1);
    CHECK_EQ_INT(b.done, 0);
    CHECK_EQ_INT(c.ran + c.done, 0);
    wq_free(NULL);
    CHECK_EQ_INT(wq_push(NULL, run, done, &c), -1);

    parallel_run(8, par_fn, NULL); /* joined on return: no lock needed to read */
    for (int i = 0; i < 8; i++) {
        CHECK_EQ_INT(par_calls[i], 1);
        CHECK(par_on_main[i] == (i == 0));
    }
    parallel_run(0, par_fn, NULL);
    CHECK_EQ_INT(par_calls[0], 1);
    return check_report("work_queue");
}
