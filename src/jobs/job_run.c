/* The job store's work side: items claimed under a lease and renewed, an
 * item's outcome committed with its events and usage in one transaction,
 * and the events and results read back. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs/job_store_internal.h"
#include "util/array.h"

void job_item_clear(job_item *it)
{
    free(it->url);
    free(it->model);
    free(it->query);
    free(it->params);
    free(it->opts);
    memset(it, 0, sizeof *it);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? strdup(s) : NULL;
}

/* Up to max rows of sel (bound by the caller) claimed into *out. */
static int claim_rows(job_store *js, sqlite3_stmt *sel, sqlite3_stmt *upd, const char *owner, int64_t until,
                      job_item **out, size_t *n, size_t *cap)
{
    int rc;
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        job_item *it = array_push((void **)out, n, cap, sizeof *it);
        if (!it) return -1;
        memset(it, 0, sizeof *it);
        snprintf(it->job_id, sizeof it->job_id, "%s", (const char *)sqlite3_column_text(sel, 0));
        it->index = sqlite3_column_int64(sel, 1);
        it->url = col_dup(sel, 2);
        it->model = col_dup(sel, 3);
        it->is_yolo = sqlite3_column_int(sel, 4);
        it->is_ocr = sqlite3_column_int(sel, 5);
        it->is_llm = sqlite3_column_int(sel, 6);
        it->attempt = sqlite3_column_int64(sel, 7) + 1;
        it->key_id = sqlite3_column_int64(sel, 8);
        it->query = col_dup(sel, 9);
        it->params = col_dup(sel, 10);
        it->opts = col_dup(sel, 11);
        if (!it->url) return -1;
        js_bind_text(upd, 1, owner);
        sqlite3_bind_int64(upd, 2, until);
        js_bind_text(upd, 3, it->job_id);
        sqlite3_bind_int64(upd, 4, it->index);
        int u = sqlite3_step(upd);
        sqlite3_reset(upd);
        if (u != SQLITE_DONE) return -1;
    }
    sqlite3_reset(sel);
    (void)js;
    return rc == SQLITE_DONE ? 0 : -1;
}

#define ITEM_SELECT                                                                                                  \
    "SELECT i.job_id, i.idx, i.url, i.model, i.is_yolo, i.is_ocr, i.is_llm, i.attempt, j.key_id, j.query, j.params," \
    " i.opts FROM job_items i JOIN jobs j ON j.id = i.job_id"

int job_store_claim(job_store *js, const char *owner, int max, int64_t lease_ms, job_item **out, size_t *n)
{
    if (js->pg) return job_pg_claim(js->pg, owner, max, lease_ms, out, n);
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    int64_t now = js_now_ms();
    pthread_mutex_lock(&js->mu);
    int rc = -1;
    if (js_exec(js, "BEGIN IMMEDIATE") == 0) {
        /* Lapsed leases first (a node died holding them), then new items. */
        sqlite3_stmt *lapsed = js_prep(js, ITEM_SELECT " WHERE i.state = 'running' AND i.lease_until < ?1 LIMIT ?2");
        sqlite3_stmt *fresh = js_prep(js, ITEM_SELECT " WHERE i.state = 'queued' LIMIT ?1");
        sqlite3_stmt *upd = js_prep(js, "UPDATE job_items SET state = 'running', attempt = attempt + 1, owner = ?1,"
                                        " lease_until = ?2 WHERE job_id = ?3 AND idx = ?4");
        if (lapsed && fresh && upd) {
            sqlite3_bind_int64(lapsed, 1, now);
            sqlite3_bind_int(lapsed, 2, max);
            rc = claim_rows(js, lapsed, upd, owner, now + lease_ms, out, n, &cap);
            if (rc == 0 && (int)*n < max) {
                sqlite3_bind_int(fresh, 1, max - (int)*n);
                rc = claim_rows(js, fresh, upd, owner, now + lease_ms, out, n, &cap);
            }
        }
        sqlite3_finalize(lapsed);
        sqlite3_finalize(fresh);
        sqlite3_finalize(upd);
        if (rc == 0 && *n) {
            rc = js_exec(js, "UPDATE jobs SET status = 'running' WHERE status = 'queued' AND id IN"
                             " (SELECT job_id FROM job_items WHERE state = 'running')");
        }
        if (rc == 0 && js_exec(js, "COMMIT") != 0) rc = -1;
        if (rc != 0) sqlite3_exec(js->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&js->mu);
    if (rc != 0) {
        for (size_t i = 0; i < *n; i++) job_item_clear(&(*out)[i]);
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int job_store_renew(job_store *js, const job_item *it, int64_t lease_ms)
{
    if (js->pg) return job_pg_lease(js->pg, it, lease_ms, false);
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *st = js_prep(js, "UPDATE job_items SET lease_until = ?1 WHERE job_id = ?2 AND idx = ?3"
                                   " AND attempt = ?4 AND state = 'running'");
    int rc = -1;
    if (st) {
        sqlite3_bind_int64(st, 1, js_now_ms() + lease_ms);
        js_bind_text(st, 2, it->job_id);
        sqlite3_bind_int64(st, 3, it->index);
        sqlite3_bind_int64(st, 4, it->attempt);
        if (sqlite3_step(st) == SQLITE_DONE) rc = sqlite3_changes(js->db) > 0 ? 0 : 1;
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&js->mu);
    return rc;
}

int job_store_release(job_store *js, const job_item *it)
{
    if (js->pg) return job_pg_lease(js->pg, it, 0, true) < 0 ? -1 : 0;
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *st = js_prep(js, "UPDATE job_items SET state = 'queued', owner = NULL, lease_until = 0"
                                   " WHERE job_id = ?1 AND idx = ?2 AND attempt = ?3 AND state = 'running'");
    int rc = -1;
    if (st) {
        js_bind_text(st, 1, it->job_id);
        sqlite3_bind_int64(st, 2, it->index);
        sqlite3_bind_int64(st, 3, it->attempt);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&js->mu);
    return rc;
}

static int insert_event(job_store *js, const char *job_id, int64_t seq, const char *line)
{
    sqlite3_stmt *st = js_prep(js, "INSERT INTO job_events(job_id, seq, line) VALUES(?1, ?2, ?3)");
    if (!st) return -1;
    js_bind_text(st, 1, job_id);
    sqlite3_bind_int64(st, 2, seq);
    js_bind_text(st, 3, line);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

/* line with "seq" added, inserted as event seq. */
static int insert_line(job_store *js, const char *job_id, int64_t seq, const char *line)
{
    char *text = js_with_seq(line, seq);
    int rc = text ? insert_event(js, job_id, seq, text) : -1;
    free(text);
    return rc;
}

static int add_usage(job_store *js, const usage_row *u)
{
    sqlite3_stmt *st = js_prep(
        js, "INSERT INTO usage(key_id, day, requests, files, succeeded, failed, megapixels, bytes_in, yolo_runs,"
            " ocr_runs, llm_calls, llm_prompt_tokens, llm_completion_tokens)"
            " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            " ON CONFLICT(key_id, day) DO UPDATE SET requests = requests + ?3, files = files + ?4,"
            " succeeded = succeeded + ?5, failed = failed + ?6, megapixels = megapixels + ?7,"
            " bytes_in = bytes_in + ?8, yolo_runs = yolo_runs + ?9, ocr_runs = ocr_runs + ?10,"
            " llm_calls = llm_calls + ?11, llm_prompt_tokens = llm_prompt_tokens + ?12,"
            " llm_completion_tokens = llm_completion_tokens + ?13");
    if (!st) return -1;
    int64_t v[] = {u->requests, u->files, u->succeeded, u->failed};
    int64_t w[] = {u->bytes_in, u->yolo_runs, u->ocr_runs, u->llm_calls, u->llm_prompt_tokens, u->llm_completion_tokens};
    sqlite3_bind_int64(st, 1, u->key_id);
    js_bind_text(st, 2, u->day);
    for (int i = 0; i < 4; i++) sqlite3_bind_int64(st, 3 + i, v[i]);
    sqlite3_bind_double(st, 7, u->megapixels);
    for (int i = 0; i < 6; i++) sqlite3_bind_int64(st, 8 + i, w[i]);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

/* The item's job counters moved; its seq range taken. The job's last item
 * also completes it (*ended). */
static int advance_job(job_store *js, const job_item *it, size_t nlines, bool succeeded, int64_t *seq, bool *ended)
{
    sqlite3_stmt *st = js_prep(js, "UPDATE jobs SET next_seq = next_seq + ?2, succeeded = succeeded + ?3,"
                                   " failed = failed + ?4 WHERE id = ?1 RETURNING next_seq - ?2, total, succeeded, failed");
    if (!st) return -1;
    js_bind_text(st, 1, it->job_id);
    sqlite3_bind_int64(st, 2, (int64_t)nlines);
    sqlite3_bind_int(st, 3, succeeded);
    sqlite3_bind_int(st, 4, !succeeded);
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
    int64_t total = 0, ok = 0, bad = 0;
    if (rc == 0) {
        *seq = sqlite3_column_int64(st, 0);
        total = sqlite3_column_int64(st, 1);
        ok = sqlite3_column_int64(st, 2);
        bad = sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
    *ended = rc == 0 && ok + bad >= total;
    if (rc || !*ended) return rc;
    int64_t done_seq = *seq + (int64_t)nlines;
    st = js_prep(js, "UPDATE jobs SET status = 'completed', finished_at = ?2, next_seq = next_seq + 1 WHERE id = ?1");
    if (!st) return -1;
    js_bind_text(st, 1, it->job_id);
    sqlite3_bind_int64(st, 2, js_now_ms() / 1000);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    char *line = js_complete_line(done_seq, "completed", total, ok, bad);
    rc = rc == 0 && line ? insert_event(js, it->job_id, done_seq, line) : -1;
    free(line);
    return rc == 0 ? js_sqlite_enqueue_webhook(js, it->job_id) : rc;
}

int job_store_finish(job_store *js, const job_item *it, const char *const *lines, size_t nlines, bool succeeded,
                     const usage_row *usage, bool *job_ended)
{
    *job_ended = false;
    if (nlines == 0) return -1;
    if (js->pg) return job_pg_finish(js->pg, it, lines, nlines, succeeded, usage, job_ended);
    pthread_mutex_lock(&js->mu);
    int rc = -1;
    if (js_exec(js, "BEGIN IMMEDIATE") == 0) {
        /* The guard: only the attempt that holds the item commits it. */
        sqlite3_stmt *st = js_prep(js, "UPDATE job_items SET state = ?1, result = ?2, owner = NULL WHERE job_id = ?3"
                                       " AND idx = ?4 AND attempt = ?5 AND state = 'running'");
        if (st) {
            js_bind_text(st, 1, succeeded ? "done" : "error");
            js_bind_text(st, 2, lines[nlines - 1]);
            js_bind_text(st, 3, it->job_id);
            sqlite3_bind_int64(st, 4, it->index);
            sqlite3_bind_int64(st, 5, it->attempt);
            if (sqlite3_step(st) == SQLITE_DONE) rc = sqlite3_changes(js->db) > 0 ? 0 : 1;
            sqlite3_finalize(st);
        }
        int64_t seq = 0;
        if (rc == 0) rc = advance_job(js, it, nlines, succeeded, &seq, job_ended);
        for (size_t i = 0; rc == 0 && i < nlines; i++) rc = insert_line(js, it->job_id, seq + (int64_t)i, lines[i]);
        if (rc == 0 && usage) {
            usage_row u = *usage;
            u.key_id = it->key_id;
            js_today(u.day);
            rc = add_usage(js, &u);
        }
        if (rc == 0 && js_exec(js, "COMMIT") != 0) rc = -1;
        if (rc != 0) {
            sqlite3_exec(js->db, "ROLLBACK", NULL, NULL, NULL);
            *job_ended = false;
        }
    }
    pthread_mutex_unlock(&js->mu);
    return rc;
}

/* A page of lines from sql (bound: id, after, max; columns: position,
 * line, url), as job_pg_events reads it: results' cancelled items (line
 * NULL) get their error line, and events' "complete" sets *ended. */
static int read_lines(job_store *js, const char *sql, const char *id, int64_t after, int max, bool results, char **text,
                      size_t *len, int64_t *last, bool *ended)
{
    size_t cap = 0;
    *text = NULL;
    *len = 0;
    *ended = false;
    *last = after;
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *st = js_prep(js, sql);
    int rc = -1;
    if (st) {
        js_bind_text(st, 1, id);
        sqlite3_bind_int64(st, 2, after);
        sqlite3_bind_int(st, 3, max);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t at = sqlite3_column_int64(st, 0);
            const char *line = (const char *)sqlite3_column_text(st, 1);
            char *made = NULL;
            if (!line && results) /* cancelled before it ran: its one final line says so */
                line = made = js_cancelled_line(at, (const char *)sqlite3_column_text(st, 2));
            int bad = !line || js_append(text, len, &cap, line);
            if (!bad && !results && !strncmp(line, COMPLETE_PREFIX, strlen(COMPLETE_PREFIX))) *ended = true;
            free(made);
            if (bad) break;
            *last = at;
        }
        rc = rc == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&js->mu);
    if (rc) {
        free(*text);
        *text = NULL;
        *len = 0;
    }
    return rc;
}

int job_store_events(job_store *js, const char *id, int64_t after, int max, char **text, size_t *len, int64_t *last,
                     bool *ended)
{
    if (js->pg) return job_pg_events(js->pg, id, after, max, false, text, len, last, ended);
    return read_lines(js, "SELECT seq, line, NULL FROM job_events WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                      id, after, max, false, text, len, last, ended);
}

int job_store_results(job_store *js, const char *id, int64_t after, int max, char **text, size_t *len, int64_t *last)
{
    bool ended;
    if (js->pg) return job_pg_events(js->pg, id, after, max, true, text, len, last, &ended);
    return read_lines(js,
                      "SELECT idx, result, url FROM job_items WHERE job_id = ?1 AND idx > ?2"
                      " AND (result IS NOT NULL OR state = 'cancelled') ORDER BY idx LIMIT ?3",
                      id, after, max, true, text, len, last, &ended);
}
