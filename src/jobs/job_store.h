/* Jobs: large batches of image URLs worked on in the background, kept in the
 * key store's database so that they outlive a connection and a restart.
 *
 * Three tables beside the key store's: jobs, job_items (one row per URL,
 * claimed by a runner under a lease) and job_events (the job's NDJSON lines,
 * numbered by a per-job gapless seq). An item's final line, its events, the
 * job's counters and its usage row are written in one transaction guarded by
 * the item's attempt, so an item that ran twice (a lease that lapsed) is
 * shown and metered once.
 *
 * SQLite (one node; one connection behind a mutex, as keystore_sqlite.c)
 * or PostgreSQL (several nodes; job_store_pg.c). All functions are
 * thread-safe. */
#ifndef SIGHT_JOBS_JOB_STORE_H
#define SIGHT_JOBS_JOB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys/keystore.h"

typedef struct job_store job_store;

#define JOB_ID_LEN 24 /* "job_" and 20 hex digits */

typedef struct {
    char id[JOB_ID_LEN + 1];
    char status[12]; /* queued, running, completed, cancelled */
    int64_t total, succeeded, failed;
    int64_t created_at, finished_at; /* unix seconds; finished_at 0 = not yet */
} job_info;

/* One URL of a new job. */
typedef struct {
    const char *url, *model; /* model may be NULL */
    bool is_yolo, is_ocr, is_llm;
    /* Its per-file options as v2's item has them (slice, fps, max_frames,
     * track, track_stream): JSON object text, validated; NULL = none. */
    const char *opts;
} job_item_spec;

typedef struct {
    int64_t key_id;
    const char *query;  /* may be NULL */
    const char *params; /* JSON text of the options; may be NULL */
    const job_item_spec *items;
    size_t nitems;
    const char *idem_key;                     /* Idempotency-Key, or NULL */
    const char *body_hash;                    /* SHA-256 hex of the body, with idem_key */
    int64_t max_open;                         /* queued or running jobs the key may hold; 0 = no limit */
    const char *webhook_url, *webhook_secret; /* POSTed to when the job ends; NULL = none */
} job_new;

typedef enum {
    JOB_CREATED = 0,
    JOB_REPLAYED,   /* the same Idempotency-Key and body within 24 h: that job */
    JOB_KEY_REUSED, /* the same Idempotency-Key with another body */
    JOB_TOO_MANY_OPEN,
    JOB_STORE_ERROR,
} job_create_rc;

/* path: the key store's SQLite file or postgresql:// URL. */
job_store *job_store_open(const char *path, char *err, size_t err_len);
void job_store_close(job_store *js);

job_create_rc job_store_create(job_store *js, const job_new *n, job_info *out);
/* 0 found, 1 no such job for this key (any key when key_id < 0), -1 error. */
int job_store_get(job_store *js, int64_t key_id, const char *id, job_info *out);
/* The key's jobs (every key's when key_id < 0, for the CLI), newest first,
 * those created before the cursor job (before: a job id, or NULL for the
 * newest). Caller frees *out. */
int job_store_list(job_store *js, int64_t key_id, const char *before, int limit, job_info **out, size_t *n);
/* Cancels a queued or running job: its items not finished never run (a
 * running one's result is dropped), a "complete" line ends its events.
 * 0 cancelled (or already ended: *out says how), 1 no such job, -1 error. */
int job_store_cancel(job_store *js, int64_t key_id, const char *id, job_info *out);

/* NDJSON lines, each ending in '\n', appended to a malloc'd text (*text,
 * *len; the caller frees): events with seq > after, or final item lines
 * with index > after (results), at most max of them. *last: the seq (or
 * index) of the last line given; *ended: the job's complete line was among
 * the events given (events only). 0 ok, -1 error. */
int job_store_events(job_store *js, const char *id, int64_t after, int max, char **text, size_t *len, int64_t *last,
                     bool *ended);
int job_store_results(job_store *js, const char *id, int64_t after, int max, char **text, size_t *len,
                      int64_t *last);

/* ---- for the runner ---- */

typedef struct {
    char job_id[JOB_ID_LEN + 1];
    int64_t key_id, index, attempt;
    char *url, *model, *query, *params; /* malloc'd; model, query and params may be NULL */
    char *opts;                         /* malloc'd JSON object text (job_item_spec.opts), or NULL */
    bool is_yolo, is_ocr, is_llm;
} job_item;

void job_item_clear(job_item *it);

/* Claims up to max items that are queued, or whose lease lapsed, of jobs not
 * cancelled, for owner, until now + lease_ms. Caller frees with
 * job_item_clear and free(). 0 ok, -1 error. */
int job_store_claim(job_store *js, const char *owner, int max, int64_t lease_ms, job_item **out, size_t *n);
/* Extends the lease of an item still held (same attempt). 0 held, 1 lost
 * (cancelled, or reclaimed by another node), -1 error. */
int job_store_renew(job_store *js, const job_item *it, int64_t lease_ms);
/* Gives an item still held back (queued again, at once), for a node that
 * stops before it finished. 0 or -1. */
int job_store_release(job_store *js, const job_item *it);

/* The item's outcome: lines (its "processing" and final line, each a JSON
 * object without seq; the final one is also its results line), whether it
 * succeeded, and its usage (key_id and day are filled here; NULL: none). 0
 * committed (*job_ended: it was the job's last item), 1 dropped (the item is
 * no longer this attempt's), -1 error. */
int job_store_finish(job_store *js, const job_item *it, const char *const *lines, size_t nlines, bool succeeded,
                     const usage_row *usage, bool *job_ended);

/* ---- webhooks (job_webhooks.c): one durable message per ended job ---- */

typedef struct {
    char id[40]; /* webhook-id: the same on every retry */
    char *url, *secret, *body;
    int64_t attempts;   /* this one included */
    int64_t created_at; /* unix seconds */
} job_webhook;

void job_webhook_clear(job_webhook *w);
/* Claims up to max messages due now (each held for hold_ms against other
 * nodes); caller clears and frees. 0 or -1. */
int job_store_webhooks_due(job_store *js, int max, int64_t hold_ms, job_webhook **out, size_t *n);
/* After an attempt: delivered, or tried again at next_ms (unix ms), or
 * given up (0 = retry at next_ms). 0 or -1. */
int job_store_webhook_after(job_store *js, const char *id, bool delivered, bool give_up, int64_t next_ms);

/* Deletes jobs ended before cutoff (unix seconds), with their items and
 * events. Returns how many, or -1. */
int64_t job_store_purge(job_store *js, int64_t cutoff);

#endif
