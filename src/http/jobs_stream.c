/* GET /api/v1/jobs/{id}/events and /results: NDJSON read from the job store
 * a page at a time as the client takes it. The events follow the job until
 * its "complete" line: with nothing new the connection is suspended
 * (conn_wait.h) on a timer and looks again at each tick, so any node serves
 * any job's events, whichever node runs it. Reads are single indexed
 * SELECTs on the local SQLite file, short enough for an HTTP thread. */
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "http/conn_wait.h"
#include "http/http_internal.h"
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
    cw_slot *slot;
} pager;

static void pager_free(void *cls)
{
    pager *p = cls;
    cw_detach(p->slot);
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
        if (p->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        int rc = p->events ? job_store_events(p->js, p->id, p->cursor, PAGE_LINES, &p->text, &p->len, &p->cursor, &p->ended)
                           : job_store_results(p->js, p->id, p->cursor, PAGE_LINES, &p->text, &p->len, &p->cursor);
        if (rc != 0) return MHD_CONTENT_READER_END_WITH_ERROR;
        if (p->len) continue;
        if (!p->events) return MHD_CONTENT_READER_END_OF_STREAM;
        /* Nothing new: the job goes on (or was purged meanwhile). */
        job_info info;
        if (job_store_get(p->js, -1, p->id, &info) != 0) return MHD_CONTENT_READER_END_WITH_ERROR;
        /* Ended, and its complete line was before after=: nothing will come. */
        if (!strcmp(info.status, "completed") || !strcmp(info.status, "cancelled"))
            return MHD_CONTENT_READER_END_OF_STREAM;
        /* Shutdown or a client gone: the client resumes with after=. */
        if (atomic_load(&p->srv->aborting) || cw_client_gone(p->slot)) return MHD_CONTENT_READER_END_WITH_ERROR;
        uint64_t ticks;
        ssize_t r = read(p->tfd, &ticks, sizeof ticks); /* re-arms the wake-up */
        (void)r;
        if (cw_suspend(p->slot)) return 0;
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

enum MHD_Result jobs_stream_start(struct MHD_Connection *c, http_req *hr, job_store *js, const char *id, bool events,
                                  int64_t after)
{
    server *s = hr->srv;
    pager *p = calloc(1, sizeof *p);
    if (!p) return reply_error(c, hr, 500, "out_of_memory", "out of memory");
    *p = (pager){.srv = s, .js = js, .events = events, .cursor = after, .tfd = -1};
    snprintf(p->id, sizeof p->id, "%s", id);
    if (events) {
        struct itimerspec its = {{0, POLL_MS * 1000000L}, {0, POLL_MS * 1000000L}};
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (p->tfd < 0 || timerfd_settime(p->tfd, 0, &its, NULL) != 0 ||
            !(p->slot = cw_attach(s->cw, c, p->tfd, ci ? ci->connect_fd : -1))) {
            pager_free(p);
            return reply_error(c, hr, 500, "out_of_memory", "cannot follow the job's events");
        }
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, pager_read, p, pager_free);
    if (!resp) {
        pager_free(p);
        return reply_error(c, hr, 500, "out_of_memory", "out of memory");
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return reply_queue(c, hr, 200, resp);
}
