#include "pipeline/backlog.h"

#include <stdlib.h>

#include "pipeline/request_internal.h"
#include "util/clock.h"
#include "util/log.h"

typedef struct parked {
    struct parked *next;
    void *job;
} parked;

/* Takes the parked list (in order) and requeues it, outside park_mu. */
static void requeue_all(predict_request *r)
{
    pthread_mutex_lock(&r->park_mu);
    parked *list = r->parked;
    r->parked = NULL;
    r->parked_since = 0;
    pthread_mutex_unlock(&r->park_mu);
    while (list) {
        parked *n = list->next;
        r->requeue(r->pipe, list->job);
        free(list);
        list = n;
    }
}

/* The event queue's room callback: the client has read enough. */
static void on_room(void *arg) { requeue_all(arg); }

void backlog_init(predict_request *r, void (*requeue)(void *pipe, void *job), void *pipe)
{
    r->requeue = requeue;
    r->pipe = pipe;
    eq_on_room(r->events, on_room, r);
}

bool backlog_park(predict_request *r, void *job)
{
    parked *p = malloc(sizeof *p);
    if (!p) return false; /* run it: better than losing it */
    pthread_mutex_lock(&r->park_mu);
    /* Checked under park_mu: a cancel that follows takes park_mu to release
     * the list, so a job is never parked after its release. */
    bool over = false;
    if (!atomic_load(&r->cancelled)) {
        if (eq_queued_all() > BACKLOG_ALL_MAX) over = eq_over(r->events, BACKLOG_FLOOR, BACKLOG_FLOOR);
        else over = eq_over(r->events, BACKLOG_MAX, BACKLOG_RESUME);
    }
    if (over) {
        /* Appended in order: the files resume in request order. */
        p->job = job;
        p->next = NULL;
        parked **pp = &r->parked;
        while (*pp) pp = &(*pp)->next;
        *pp = p;
        if (!r->parked_since) {
            r->parked_since = clock_s();
            log_req(LOG_DEBUG, r->request_id, "client is behind: next files wait until it reads");
        }
    }
    pthread_mutex_unlock(&r->park_mu);
    if (!over) free(p);
    return over;
}

void backlog_release(predict_request *r) { requeue_all(r); }
