/* Shared by the job store's files (job_store.c: schema, jobs; job_run.c:
 * items, events, results). */
#ifndef SIGHT_JOBS_JOB_STORE_INTERNAL_H
#define SIGHT_JOBS_JOB_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "jobs/job_store.h"

struct job_pg;

struct job_store {
    pthread_mutex_t mu;
    sqlite3 *db;       /* the SQLite store's; NULL with PostgreSQL */
    struct job_pg *pg; /* job_store_pg.c: the PostgreSQL store; NULL with SQLite */
};

#define COMPLETE_PREFIX "{\"status\":\"complete\""
/* line (a JSON object's text) with "seq" added; malloc'd, or NULL. */
char *js_with_seq(const char *line, int64_t seq);
/* The job's last event: {"status":"complete","seq",...}; malloc'd, or NULL. */
char *js_complete_line(int64_t seq, const char *job_status, int64_t total, int64_t ok, int64_t bad);
/* The one results line of an item cancelled before it finished; malloc'd. */
char *js_cancelled_line(int64_t index, const char *url);
/* Queues the ended job's webhook message (if it has a webhook), inside
 * the transaction that ended it: {"type": "job." + status, "data": job}.
 * The text to insert, or NULL when none is due; *id filled. */
char *js_webhook_body(const job_info *j, char id[40]);
/* Today (UTC), YYYY-MM-DD. */
void js_today(char day[11]);

/* job_store_pg.c: the same operations on PostgreSQL (job_store.c dispatches). */
struct job_pg *job_pg_open(const char *url, char *err, size_t err_len);
void job_pg_close(struct job_pg *pg);
job_create_rc job_pg_create(struct job_pg *pg, const job_new *n, const char *id, job_info *out);
int job_pg_get(struct job_pg *pg, int64_t key_id, const char *id, job_info *out);
int job_pg_list(struct job_pg *pg, int64_t key_id, const char *before, int limit, job_info **out, size_t *n);
int job_pg_cancel(struct job_pg *pg, int64_t key_id, const char *id, job_info *out);
int job_pg_events(struct job_pg *pg, const char *id, int64_t after, int max, bool results, char **text, size_t *len,
                  int64_t *last, bool *ended);
int job_pg_claim(struct job_pg *pg, const char *owner, int max, int64_t lease_ms, job_item **out, size_t *n);
int job_pg_lease(struct job_pg *pg, const job_item *it, int64_t lease_ms, bool release);
int job_pg_finish(struct job_pg *pg, const job_item *it, const char *const *lines, size_t nlines, bool succeeded,
                  const usage_row *usage, bool *job_ended);
int64_t job_pg_purge(struct job_pg *pg, int64_t cutoff);
int job_pg_webhooks_due(struct job_pg *pg, int max, int64_t hold_ms, job_webhook **out, size_t *n);
int job_pg_webhook_after(struct job_pg *pg, const char *id, bool delivered, bool give_up, int64_t next_ms);
/* SQLite side: the webhook row of an ended job, under the store's lock. */
int js_sqlite_enqueue_webhook(job_store *js, const char *job_id);

/* A statement prepared on js->db, or NULL (logged). */
sqlite3_stmt *js_prep(job_store *js, const char *sql);
/* Runs sql without results; 0 or -1. */
int js_exec(job_store *js, const char *sql);
/* Binds text or NULL. */
int js_bind_text(sqlite3_stmt *st, int i, const char *s);
/* Appends line (a JSON object's text) and '\n' to *text; 0 or -1. */
int js_append(char **text, size_t *len, size_t *cap, const char *line);
int64_t js_now_ms(void);

#endif
