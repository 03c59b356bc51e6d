/* The job runner's thread (job_runner.h). */
#include <errno.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "jobs/job_runner.h"
#include "pipeline/slice_opts.h"
#include "util/array.h"
#include "util/clock.h"
#include "util/log.h"
#include "video/video_meta.h"

#define MAX_SLOTS 64
#define IDLE_CLAIM_S 0.25 /* how often a node with nothing to do looks for items */
#define TICK_MS 100

/* An item's events so far, as the rows they are stored as: its
 * "processing", a video's frame lines (in order), its llm_delta lines (as
 * one) and its final line. Events are committed when the item ends, so one
 * row per delta (one per token) would show nothing sooner and only multiply
 * the stored rows; the one row keeps the text a follower would have read
 * from them. */
typedef struct {
    char *processing, *final;
    char **frames;
    size_t nframes, fcap;
    char *delta; /* the deltas concatenated */
    size_t dlen, dcap;
    bool have_delta, succeeded, oom;
} item_rows;

typedef struct {
    job_item it;
    predict_request *pr;  /* NULL: the slot is free */
    item_rows rows;       /* what the request sent so far */
    struct meter_box *mb; /* the request's (freed with it), read after its end */
    bool lost;
    key_limits eff;   /* the key's limits, for its quota */
    int64_t reserved; /* quota reserved for the item, released once it is committed */
} slot;

/* What the request used, written by the pipeline before its last line. */
typedef struct meter_box {
    request_usage usage;
    bool metered;
} meter_box;

struct job_runner {
    job_runner_config cfg;
    pthread_t thread;
    int wake_fd;
    atomic_bool stop;
    char owner[40];
    slot slots[MAX_SLOTS];
};

static int meter_capture(void *ctx, const request_usage *u)
{
    meter_box *m = ctx;
    m->usage = *u;
    m->metered = true;
    return 0;
}

static void slot_free(job_runner *r, slot *s)
{
    if (s->reserved && r->cfg.lim) limiter_release(r->cfg.lim, s->it.key_id, &s->eff, s->reserved);
    if (s->pr) predict_request_unref(s->pr);
    job_item_clear(&s->it);
    free(s->rows.processing);
    free(s->rows.final);
    for (size_t i = 0; i < s->rows.nframes; i++) free(s->rows.frames[i]);
    free(s->rows.frames);
    free(s->rows.delta);
    memset(s, 0, sizeof *s);
}

/* The item ends, before it runs, with an error line (committed; given back
 * when that fails). */
static void fail_item(job_runner *r, slot *s, const char *code, const char *message)
{
    json_t *ev = json_pack("{s:s,s:I,s:s,s:{s:s,s:s}}", "status", "error", "index", (json_int_t)s->it.index, "url",
                           s->it.url, "error", "code", code, "message", message);
    char *line = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    const char *lines[1] = {line};
    bool ended;
    if (!line || job_store_finish(r->cfg.js, &s->it, lines, 1, false, NULL, &ended) < 0)
        job_store_release(r->cfg.js, &s->it);
    free(line);
}

/* The item's per-file options (checked when the job was created, by the
 * same parsers) onto its file, as a v2 item's. 0, or -1 with msg. */
static int apply_opts(const char *text, file_job *f, char *msg, size_t len)
{
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    if (text && !json_is_object(o)) {
        json_decref(o);
        snprintf(msg, len, "the item's stored options are not a JSON object");
        return -1;
    }
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach(o, k, v) {
        if (!strcmp(k, "slice")) rc = slice_opts_parse(v, &f->slice, msg, len);
        else if (video_meta_key(&f->video, k, v, msg, len) != 1) rc = -1;
        if (rc) break;
    }
    json_decref(o);
    return rc;
}

/* The item's quota verdict, before it runs: 0 go (*llm_ok: its LLM tokens
 * too), -1 refused (the item's error line committed). */
static int take_quota(job_runner *r, slot *s, bool *llm_ok)
{
    *llm_ok = true;
    if (!r->cfg.lim) return 0;
    key_info *keys = NULL;
    size_t n = 0;
    key_limits own = {0};
    if (keystore_list(r->cfg.ks, &keys, &n) == 0)
        for (size_t i = 0; i < n; i++)
            if (keys[i].id == s->it.key_id) own = keys[i].limits;
    free(keys);
    limiter_effective(r->cfg.lim, &own, &s->eff);
    limit_verdict v;
    int rc = limiter_reserve(r->cfg.lim, s->it.key_id, &s->eff, 1, llm_ok, &v);
    if (rc == 0) s->reserved = 1;
    if (rc >= 0) return 0;
    fail_item(r, s, v.code ? v.code : "quota_exceeded", v.message);
    return -1;
}

/* Hands the item in s->it to the pipeline; on failure the item is given back. */
static void slot_start(job_runner *r, slot *s)
{
    bool llm_ok;
    if (take_quota(r, s, &llm_ok) != 0) {
        slot_free(r, s);
        return;
    }
    file_job *f = calloc(1, sizeof *f);
    char msg[160] = "";
    if (f && apply_opts(s->it.opts, f, msg, sizeof msg) != 0) {
        free(f);
        fail_item(r, s, "invalid_item", msg);
        slot_free(r, s);
        return;
    }
    json_t *params = s->it.params ? json_loads(s->it.params, 0, NULL) : NULL;
    if (f) {
        f->url = strdup(s->it.url);
        f->filename = fetch_filename_from_url(s->it.url);
        f->filename_len = f->filename ? strlen(f->filename) : 0;
        f->model = s->it.model ? strdup(s->it.model) : NULL;
        f->is_yolo = s->it.is_yolo;
        f->is_ocr = s->it.is_ocr;
        f->is_llm = s->it.is_llm;
        f->llm_refused = s->it.is_llm && !llm_ok;
        f->key_id = s->it.key_id; /* track_stream state is the key's */
    }
    char id[64];
    snprintf(id, sizeof id, "%s/%lld", s->it.job_id, (long long)s->it.index);
    char *query = s->it.query ? strdup(s->it.query) : NULL;
    bool ok = f && f->url && f->filename;
    s->pr = predict_request_new(id, query, params, f, f ? 1 : 0); /* takes query, params and f */
    if (s->pr && ok && r->cfg.metering && (s->mb = calloc(1, sizeof *s->mb)))
        predict_request_set_meter(s->pr, meter_capture, s->mb, free);
    if (!s->pr || !ok || (r->cfg.metering && !s->mb) || pipeline_submit(r->cfg.pipe, s->pr) != 0) {
        log_error("jobs: cannot start item %s", id);
        job_store_release(r->cfg.js, &s->it);
        slot_free(r, s);
    }
}

static void usage_of(const request_usage *u, usage_row *row)
{
    *row = (usage_row){.files = u->files, .succeeded = u->succeeded, .failed = u->failed, .megapixels = u->megapixels, .bytes_in = u->bytes_in, .yolo_runs = u->yolo_runs, .ocr_runs = u->ocr_runs, .llm_calls = u->llm_calls, .llm_prompt_tokens = u->llm_prompt_tokens, .llm_completion_tokens = u->llm_completion_tokens};
}

/* An item's event (taken), with the index and url of the job, as the row
 * it is stored as; NULL on failure. Reals as the stream writes them (7
 * significant digits, json_line): a row holds the values a client of the
 * stream would have read. */
static char *item_line(const slot *s, json_t *ev)
{
    json_object_set_new(ev, "index", json_integer(s->it.index));
    json_object_set_new(ev, "url", json_string(s->it.url));
    char *line = json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(7));
    json_decref(ev);
    return line;
}

/* The item's llm_delta lines as one: its deltas concatenated. */
static char *coalesced_delta(const slot *s, const char *text, size_t len)
{
    json_t *ev = json_pack("{s:s,s:s%}", "status", "llm_delta", "delta", text, len);
    return ev ? item_line(s, ev) : NULL;
}

/* One event of the item's request (ev.obj taken) into its rows. What comes
 * after its final line is left out. */
static void slot_add(slot *s, stream_event ev)
{
    item_rows *w = &s->rows;
    if (w->final || w->oom) {
        json_decref(ev.obj);
        return;
    }
    switch (ev.kind) {
    case EV_PROCESSING:
        if (!w->processing) w->processing = item_line(s, ev.obj);
        else json_decref(ev.obj);
        return;
    case EV_LLM_DELTA: {
        const json_t *d = json_object_get(ev.obj, "delta");
        size_t n = json_string_length(d), want = w->dlen + n + 1;
        char *t = want > w->dcap ? realloc(w->delta, want * 2) : w->delta;
        if (t) {
            if (want > w->dcap) w->dcap = want * 2;
            w->delta = t;
            if (n) memcpy(w->delta + w->dlen, json_string_value(d), n);
            w->dlen += n;
            w->have_delta = true;
        } else {
            w->oom = true;
        }
        json_decref(ev.obj);
        return;
    }
    case EV_FRAME: {
        char **row = array_push((void **)&w->frames, &w->nframes, &w->fcap, sizeof *w->frames);
        if (!row || !(*row = item_line(s, ev.obj))) {
            if (row) w->nframes--;
            else json_decref(ev.obj);
            w->oom = true;
        }
        return;
    }
    case EV_DONE:
    case EV_ERROR:
        w->final = item_line(s, ev.obj);
        w->succeeded = ev.kind == EV_DONE;
        w->oom = !w->final;
        return;
    default: /* other progress, and the request's end */
        json_decref(ev.obj);
        return;
    }
}

/* The request ended: the item's rows are committed with its use. */
static void slot_finish(job_runner *r, slot *s)
{
    item_rows *w = &s->rows;
    char *delta = w->have_delta && !w->oom ? coalesced_delta(s, w->delta, w->dlen) : NULL;
    const char **v = w->oom ? NULL : malloc((w->nframes + 3) * sizeof *v);
    if (!w->final || (w->have_delta && !delta) || !v || s->lost || atomic_load(&r->stop)) {
        /* Cancelled (the job, or this node stopping), or out of memory:
         * nothing to show (given back, the item runs again). */
        if (!s->lost) job_store_release(r->cfg.js, &s->it);
    } else {
        size_t n = 0;
        if (w->processing) v[n++] = w->processing;
        for (size_t i = 0; i < w->nframes; i++) v[n++] = w->frames[i];
        if (delta) v[n++] = delta;
        v[n++] = w->final;
        usage_row row;
        bool metered = s->mb && s->mb->metered;
        if (metered) usage_of(&s->mb->usage, &row);
        bool ended;
        int rc = job_store_finish(r->cfg.js, &s->it, v, n, w->succeeded, metered ? &row : NULL, &ended);
        if (rc == 0 && s->reserved && r->cfg.lim) {
            /* In the ledger now: the quota's counters (Redis's too) take it. */
            limiter_counted(r->cfg.lim, s->it.key_id, &s->eff, metered ? row.files : 0,
                            metered ? row.llm_prompt_tokens + row.llm_completion_tokens : 0, s->reserved);
            s->reserved = 0;
        }
        if (rc < 0) {
            log_error("jobs: cannot record item %lld of %s; it runs again", (long long)s->it.index, s->it.job_id);
            job_store_release(r->cfg.js, &s->it);
        } else if (rc == 0 && ended) {
            log_info("jobs: %s completed", s->it.job_id);
        }
    }
    free(v);
    free(delta);
    slot_free(r, s);
}

/* Takes what s's request queued; finishes it at its end. */
static void slot_read(job_runner *r, slot *s)
{
    stream_event ev;
    int rc;
    while ((rc = eq_take(predict_request_events(s->pr), &ev)) > 0) slot_add(s, ev);
    if (rc < 0) slot_finish(r, s);
}

static void renew_all(job_runner *r)
{
    for (int i = 0; i < r->cfg.slots; i++) {
        slot *s = &r->slots[i];
        if (!s->pr || s->lost) continue;
        if (job_store_renew(r->cfg.js, &s->it, r->cfg.lease_ms) == 1) {
            /* Cancelled, or the lease lapsed and another node has it. */
            s->lost = true;
            predict_request_cancel(s->pr);
        }
    }
}

/* Items claimed, or -1 when no slot is free (then the next look comes as
 * soon as one is, not after the idle pause). */
static int claim(job_runner *r)
{
    int free_n = 0;
    for (int i = 0; i < r->cfg.slots; i++) free_n += r->slots[i].pr == NULL;
    if (!free_n) return -1;
    job_item *items = NULL;
    size_t n = 0;
    if (job_store_claim(r->cfg.js, r->owner, free_n, r->cfg.lease_ms, &items, &n) != 0) return 0;
    for (size_t k = 0, i = 0; k < n; k++) {
        while (r->slots[i].pr) i++;
        slot *s = &r->slots[i];
        s->it = items[k];
        slot_start(r, s);
    }
    free(items);
    return (int)n;
}

static void *run(void *arg)
{
    job_runner *r = arg;
    double next_claim = 0, next_renew = clock_s() + r->cfg.lease_ms / 3000.0, next_purge = 0;
    double purge_every = r->cfg.retention_s / 4.0 < 1 ? 1 : r->cfg.retention_s / 4.0 > 60 ? 60
                                                                                          : r->cfg.retention_s / 4.0;
    while (!atomic_load(&r->stop)) {
        struct pollfd pfd[MAX_SLOTS + 1];
        int map[MAX_SLOTS + 1], np = 0;
        pfd[np] = (struct pollfd){r->wake_fd, POLLIN, 0};
        map[np++] = -1;
        for (int i = 0; i < r->cfg.slots; i++)
            if (r->slots[i].pr) {
                pfd[np] = (struct pollfd){eq_fd(predict_request_events(r->slots[i].pr)), POLLIN, 0};
                map[np++] = i;
            }
        if (poll(pfd, (nfds_t)np, TICK_MS) < 0 && errno != EINTR) break;
        for (int k = 1; k < np; k++)
            if (pfd[k].revents) slot_read(r, &r->slots[map[k]]);
        double now = clock_s();
        if (now >= next_renew) {
            renew_all(r);
            next_renew = now + r->cfg.lease_ms / 3000.0;
        }
        if (now >= next_purge) {
            int64_t n = job_store_purge(r->cfg.js, (int64_t)time(NULL) - r->cfg.retention_s);
            if (n > 0) log_info("jobs: purged %lld ended job(s) past --job-retention", (long long)n);
            next_purge = now + purge_every;
        }
        if (now >= next_claim) next_claim = claim(r) != 0 ? now : now + IDLE_CLAIM_S;
    }
    /* Stopping: what runs is cancelled and goes back to the queue. */
    for (int i = 0; i < r->cfg.slots; i++) {
        slot *s = &r->slots[i];
        if (!s->pr) continue;
        predict_request_cancel(s->pr);
        if (!s->lost) job_store_release(r->cfg.js, &s->it);
        slot_free(r, s);
    }
    return NULL;
}

job_runner *job_runner_start(const job_runner_config *cfg)
{
    job_runner *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->cfg = *cfg;
    if (r->cfg.slots < 1) r->cfg.slots = 1;
    if (r->cfg.slots > MAX_SLOTS) r->cfg.slots = MAX_SLOTS;
    unsigned char rnd[8];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        free(r);
        return NULL;
    }
    int n = snprintf(r->owner, sizeof r->owner, "%d-", (int)getpid());
    for (int i = 0; i < 8; i++) n += snprintf(r->owner + n, sizeof r->owner - (size_t)n, "%02x", rnd[i]);
    r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->wake_fd < 0 || pthread_create(&r->thread, NULL, run, r) != 0) {
        if (r->wake_fd >= 0) close(r->wake_fd);
        free(r);
        return NULL;
    }
    return r;
}

void job_runner_stop(job_runner *r)
{
    if (!r) return;
    atomic_store(&r->stop, true);
    uint64_t one = 1;
    ssize_t w = write(r->wake_fd, &one, sizeof one);
    (void)w;
    pthread_join(r->thread, NULL);
    close(r->wake_fd);
    free(r);
}
