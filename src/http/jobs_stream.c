/* GET /api/v1/jobs/{id}/events and /results: NDJSON read from the job store
 * a page at a time as the client takes it. The events follow the job until
 * its "complete" line: with nothing new the connection is suspended
 * (front_wait_suspend, front.h) on a timer and looks again at each tick, so any node serves
 * any job's events, whichever node runs it. Each read (a page, or the job's
 * status when nothing is new) runs on a work-queue thread with the connection
 * suspended (kc_wait): on PostgreSQL a round trip, up to the store's timeouts
 * when it is slow or down, must not stall the other connections of the HTTP
 * thread. */
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "http/http_internal.h"
#include "http/key_check.h"
#include "jobs/job_store.h"
#include "util/log.h"

#define PAGE_LINES 256
#define POLL_MS 200 /* how soon a new event reaches a follower */

typedef struct {
    server *srv;
    job_store *js;
    char id[JOB_ID_LEN + 8];
    bool events, ended;
    int64_t cursor; /* the last seq (events) or index (results) sent */
    char *text;
    size_t len, off;
    int tfd;
    front_wait *slot;
    front_conn *conn;
    kc_job *read; /* the store read in flight on a work-queue thread */
} pager;

/* One store read, owned by its kc_job (so a connection that ends first
 * leaves nothing dangling): a page and, when it is empty, the job's status. */
typedef struct {
    job_store *js;
    char id[JOB_ID_LEN + 8];
    bool events;
    int64_t after, last;
    char *text;
    size_t len;
    bool ended; /* the complete line was read */
    bool over;  /* nothing new and the job has ended */
    int rc;
} page_read;

static void page_read_run(keystore *ks, void *ctx)
{
    (void)ks;
    page_read *r = ctx;
    r->last = r->after;
    r->rc = r->events ? job_store_events(r->js, r->id, r->after, PAGE_LINES, &r->text, &r->len, &r->last, &r->ended)
                      : job_store_results(r->js, r->id, r->after, PAGE_LINES, &r->text, &r->len, &r->last);
    if (r->rc != 0 || r->len || !r->events) return;
    /* Nothing new: the job goes on (or was purged meanwhile). */
    job_info info;
    if (job_store_get(r->js, -1, r->id, &info) != 0) {
        r->rc = -1;
        return;
    }
    /* Ended, and its complete line was before after=: nothing will come. */
    r->over = !strcmp(info.status, "completed") || !strcmp(info.status, "cancelled");
}

static void page_read_free(void *ctx)
{
    page_read *r = ctx;
    free(r->text);
    free(r);
}

static void pager_free(void *cls)
{
    pager *p = cls;
    kc_release(p->read);
    front_wait_detach(p->slot);
    if (p->tfd >= 0) close(p->tfd);
    free(p->text);
    free(p);
}

static ssize_t pager_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    pager *p = cls;
    for (;;) {
        if (p->off < p->len) {
            size_t n = p->len - p->off < max ? p->len - p->off : max;
            memcpy(buf, p->text + p->off, n);
            p->off += n;
            return (ssize_t)n;
        }
        free(p->text);
        p->text = NULL;
        p->len = p->off = 0;
        if (p->ended) return FRONT_STREAM_END;
        if (!p->read) {
            page_read *nr = calloc(1, sizeof *nr);
            if (!nr) return FRONT_STREAM_ERROR;
            *nr = (page_read){.js = p->js, .events = p->events, .after = p->cursor};
            memcpy(nr->id, p->id, sizeof nr->id);
            /* NULL when shutting down (nr freed): the client resumes with after=. */
            if (!(p->read = kc_submit_call(p->srv->kc, page_read_run, nr, page_read_free)))
                return FRONT_STREAM_ERROR;
        }
        if (!kc_wait(p->read, p->conn)) return 0; /* resumed, and called again, once read */
        page_read *r = kc_ctx(p->read);
        p->text = r->text; /* taken */
        r->text = NULL;
        p->len = r->len;
        p->cursor = r->last;
        p->ended = r->ended;
        int rc = r->rc;
        bool over = r->over;
        kc_release(p->read);
        p->read = NULL;
        if (rc != 0) return FRONT_STREAM_ERROR;
        if (p->len) continue;
        if (!p->events || over) return FRONT_STREAM_END;
        /* Shutdown or a client gone: the client resumes with after=. */
        if (atomic_load(&p->srv->aborting) || front_wait_client_gone(p->slot)) return FRONT_STREAM_ERROR;
        uint64_t ticks;
        ssize_t got = read(p->tfd, &ticks, sizeof ticks); /* re-arms the wake-up */
        (void)got;
        if (front_wait_suspend(p->slot)) return 0;
        return FRONT_STREAM_ERROR;
    }
}

front_result jobs_stream_start(front_conn *c, http_req *hr, job_store *js, const char *id, bool events,
                               int64_t after)
{
    server *s = hr->srv;
    pager *p = calloc(1, sizeof *p);
    if (!p) return reply_error(c, hr, 500, "out_of_memory", "out of memory");
    *p = (pager){.srv = s, .js = js, .events = events, .cursor = after, .tfd = -1, .conn = c};
    snprintf(p->id, sizeof p->id, "%s", id);
    if (events) {
        struct itimerspec its = {{0, POLL_MS * 1000000L}, {0, POLL_MS * 1000000L}};
        p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (p->tfd < 0 || timerfd_settime(p->tfd, 0, &its, NULL) != 0 ||
            !(p->slot = front_wait_attach(s->front, c, p->tfd))) {
            pager_free(p);
            return reply_error(c, hr, 500, "out_of_memory", "cannot follow the job's events");
        }
    }
    front_resp *resp = front_resp_stream(16 * 1024, pager_read, p, pager_free);
    if (!resp) {
        pager_free(p);
        return reply_error(c, hr, 500, "out_of_memory", "out of memory");
    }
    front_resp_header(resp, "Content-Type", "application/x-ndjson");
    front_resp_header(resp, "X-Accel-Buffering", "no");
    front_resp_header(resp, "Cache-Control", "no-store");
    return reply_queue(c, hr, 200, resp);
}
