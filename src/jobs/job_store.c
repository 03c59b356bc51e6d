/* The job store's schema and its jobs: create (with its idempotency key and
 * the key's open-job limit), read, list, cancel and purge. */
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs/job_store_internal.h"
#include "keys/db_url.h"
#include "util/array.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#define BUSY_TIMEOUT_MS 5000
#define IDEMPOTENCY_WINDOW_S (24 * 3600)
#define JOB_COLUMNS "id, status, total, succeeded, failed, created_at, finished_at"

int64_t js_now_ms(void) { return clock_unix_ms(); }

sqlite3_stmt *js_prep(job_store *js, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(js->db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error("job store: %s", sqlite3_errmsg(js->db));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

int js_exec(job_store *js, const char *sql)
{
    if (sqlite3_exec(js->db, sql, NULL, NULL, NULL) == SQLITE_OK) return 0;
    log_error("job store: %s", sqlite3_errmsg(js->db));
    return -1;
}

int js_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

char *js_with_seq(const char *line, int64_t seq)
{
    json_t *o = json_loads(line, 0, NULL);
    char *text = NULL;
    if (json_is_object(o) && json_object_set_new(o, "seq", json_integer(seq)) == 0) text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

char *js_complete_line(int64_t seq, const char *job_status, int64_t total, int64_t ok, int64_t bad)
{
    char line[256];
    snprintf(line, sizeof line,
             COMPLETE_PREFIX ",\"seq\":%lld,\"job_status\":\"%s\",\"total\":%lld,\"succeeded\":%lld,\"failed\":%lld}",
             (long long)seq, job_status, (long long)total, (long long)ok, (long long)bad);
    return strdup(line);
}

char *js_cancelled_line(int64_t index, const char *url)
{
    json_t *o = json_pack("{s:s,s:I,s:s?,s:{s:s,s:s}}", "status", "error", "index", (json_int_t)index, "url", url,
                          "error", "code", "cancelled", "message", "the job was cancelled before this item finished");
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

void js_today(char day[11])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, 11, "%Y-%m-%d", &tm);
}

int js_append(char **text, size_t *len, size_t *cap, const char *line)
{
    size_t n = strlen(line);
    if (*len + n + 2 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n + 2) c *= 2;
        char *t = realloc(*text, c);
        if (!t) return -1;
        *text = t;
        *cap = c;
    }
    memcpy(*text + *len, line, n);
    *len += n;
    (*text)[(*len)++] = '\n';
    (*text)[*len] = '\0';
    return 0;
}

/* The jobs tables come with the key store's schema (its migrations in
 * keys/, versions 4 and 5 on SQLite, 3 and 4 on PostgreSQL), applied when
 * the key store opens; this only checks that they are there. */
static const char PROBE[] = "SELECT job_items.opts FROM jobs, job_items, job_events, job_webhooks LIMIT 0";

job_store *job_store_open(const char *path, char *err, size_t err_len)
{
    job_store *js = calloc(1, sizeof *js);
    if (!js) {
        err_printf(err, err_len, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&js->mu, NULL);
    if (db_url_is_postgres(path)) {
        if (!(js->pg = job_pg_open(path, err, err_len))) {
            job_store_close(js);
            return NULL;
        }
        return js;
    }
    if (sqlite3_open_v2(path, &js->db, SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        err_printf(err, err_len, "%s: %s", path, js->db ? sqlite3_errmsg(js->db) : "out of memory");
        job_store_close(js);
        return NULL;
    }
    sqlite3_busy_timeout(js->db, BUSY_TIMEOUT_MS);
    if (sqlite3_exec(js->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(js->db, PROBE, NULL, NULL, NULL) != SQLITE_OK) {
        err_printf(err, err_len, "%s: no jobs tables (the key store's migrations make them): %s", path,
                   sqlite3_errmsg(js->db));
        job_store_close(js);
        return NULL;
    }
    return js;
}

void job_store_close(job_store *js)
{
    if (!js) return;
    job_pg_close(js->pg);
    sqlite3_close(js->db);
    pthread_mutex_destroy(&js->mu);
    free(js);
}

static void read_job(sqlite3_stmt *st, job_info *j)
{
    const char *id = (const char *)sqlite3_column_text(st, 0);
    const char *status = (const char *)sqlite3_column_text(st, 1);
    snprintf(j->id, sizeof j->id, "%s", id ? id : "");
    snprintf(j->status, sizeof j->status, "%s", status ? status : "");
    j->total = sqlite3_column_int64(st, 2);
    j->succeeded = sqlite3_column_int64(st, 3);
    j->failed = sqlite3_column_int64(st, 4);
    j->created_at = sqlite3_column_int64(st, 5);
    j->finished_at = sqlite3_column_int64(st, 6); /* NULL reads as 0 */
}

/* The job by id (any key when key_id < 0), under the lock. */
static int get_locked(job_store *js, int64_t key_id, const char *id, job_info *out)
{
    sqlite3_stmt *st = js_prep(js, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1 AND (?2 < 0 OR key_id = ?2)");
    if (!st) return -1;
    js_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, key_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) read_job(st, out);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1
                                                    : -1;
}

int job_store_get(job_store *js, int64_t key_id, const char *id, job_info *out)
{
    if (js->pg) return job_pg_get(js->pg, key_id, id, out);
    pthread_mutex_lock(&js->mu);
    int rc = get_locked(js, key_id, id, out);
    pthread_mutex_unlock(&js->mu);
    return rc;
}

/* An earlier job under the same Idempotency-Key within the window: 1 (out,
 * *same_body), 0 none, -1 error. */
static int find_idem(job_store *js, const job_new *n, int64_t now, job_info *out, bool *same_body)
{
    sqlite3_stmt *st = js_prep(js, "SELECT " JOB_COLUMNS ", body_hash FROM jobs WHERE key_id = ?1 AND idem_key = ?2"
                                   " AND created_at > ?3 ORDER BY created_ms DESC LIMIT 1");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, n->key_id);
    js_bind_text(st, 2, n->idem_key);
    sqlite3_bind_int64(st, 3, now - IDEMPOTENCY_WINDOW_S);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_job(st, out);
        const char *h = (const char *)sqlite3_column_text(st, 7);
        *same_body = h && n->body_hash && !strcmp(h, n->body_hash);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0
                                                    : -1;
}

static int64_t count_open(job_store *js, int64_t key_id)
{
    sqlite3_stmt *st = js_prep(js, "SELECT COUNT(*) FROM jobs WHERE key_id = ?1 AND status IN ('queued', 'running')");
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, key_id);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

static int insert_job(job_store *js, const job_new *n, const char *id, int64_t now_ms)
{
    sqlite3_stmt *st = js_prep(js, "INSERT INTO jobs(id, key_id, status, total, query, params, created_at, created_ms,"
                                   " idem_key, body_hash, webhook_url, webhook_secret)"
                                   " VALUES(?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    if (!st) return -1;
    js_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, n->key_id);
    sqlite3_bind_int64(st, 3, (int64_t)n->nitems);
    js_bind_text(st, 4, n->query);
    js_bind_text(st, 5, n->params);
    sqlite3_bind_int64(st, 6, now_ms / 1000);
    sqlite3_bind_int64(st, 7, now_ms);
    js_bind_text(st, 8, n->idem_key);
    js_bind_text(st, 9, n->idem_key ? n->body_hash : NULL);
    js_bind_text(st, 10, n->webhook_url);
    js_bind_text(st, 11, n->webhook_secret);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    if (rc) return -1;
    st = js_prep(js, "INSERT INTO job_items(job_id, idx, url, model, is_yolo, is_ocr, is_llm, opts)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (!st) return -1;
    for (size_t i = 0; rc == 0 && i < n->nitems; i++) {
        const job_item_spec *it = &n->items[i];
        js_bind_text(st, 1, id);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        js_bind_text(st, 3, it->url);
        js_bind_text(st, 4, it->model);
        sqlite3_bind_int(st, 5, it->is_yolo);
        sqlite3_bind_int(st, 6, it->is_ocr);
        sqlite3_bind_int(st, 7, it->is_llm);
        js_bind_text(st, 8, it->opts);
        if (sqlite3_step(st) != SQLITE_DONE) rc = -1;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

job_create_rc job_store_create(job_store *js, const job_new *n, job_info *out)
{
    unsigned char rnd[10];
    char id[JOB_ID_LEN + 1] = "job_";
    if (RAND_bytes(rnd, sizeof rnd) != 1) return JOB_STORE_ERROR;
    for (int i = 0; i < 10; i++) snprintf(id + 4 + 2 * i, 3, "%02x", rnd[i]);
    if (js->pg) return job_pg_create(js->pg, n, id, out);
    int64_t now_ms = js_now_ms();
    job_create_rc rc = JOB_STORE_ERROR;
    pthread_mutex_lock(&js->mu);
    if (js_exec(js, "BEGIN IMMEDIATE") == 0) {
        bool same = false;
        int found = n->idem_key ? find_idem(js, n, now_ms / 1000, out, &same) : 0;
        int64_t open = found == 0 && n->max_open > 0 ? count_open(js, n->key_id) : 0;
        if (found > 0) rc = same ? JOB_REPLAYED : JOB_KEY_REUSED;
        else if (found == 0 && open >= n->max_open && n->max_open > 0) rc = JOB_TOO_MANY_OPEN;
        else if (found == 0 && open >= 0 && insert_job(js, n, id, now_ms) == 0 && get_locked(js, -1, id, out) == 0)
            rc = JOB_CREATED;
        if (rc == JOB_CREATED ? js_exec(js, "COMMIT") != 0 : sqlite3_exec(js->db, "ROLLBACK", 0, 0, 0) != SQLITE_OK)
            rc = JOB_STORE_ERROR;
        if (rc == JOB_STORE_ERROR) sqlite3_exec(js->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&js->mu);
    return rc;
}

int job_store_list(job_store *js, int64_t key_id, const char *before, int limit, job_info **out, size_t *n)
{
    if (js->pg) return job_pg_list(js->pg, key_id, before, limit, out, n);
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    pthread_mutex_lock(&js->mu);
    /* The cursor is a job: those created before it (ties by id). */
    sqlite3_stmt *st = js_prep(js, "SELECT " JOB_COLUMNS " FROM jobs WHERE (?1 < 0 OR key_id = ?1) AND (?2 IS NULL OR"
                                   " (created_ms, id) < (SELECT created_ms, id FROM jobs WHERE id = ?2"
                                   " AND (?1 < 0 OR key_id = ?1)))"
                                   " ORDER BY created_ms DESC, id DESC LIMIT ?3");
    int rc = -1;
    if (st) {
        sqlite3_bind_int64(st, 1, key_id);
        js_bind_text(st, 2, before);
        sqlite3_bind_int(st, 3, limit);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            job_info *j = array_push((void **)out, n, &cap, sizeof *j);
            if (!j) break;
            read_job(st, j);
        }
        rc = rc == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&js->mu);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int job_store_cancel(job_store *js, int64_t key_id, const char *id, job_info *out)
{
    if (js->pg) return job_pg_cancel(js->pg, key_id, id, out);
    pthread_mutex_lock(&js->mu);
    int rc = -1;
    if (js_exec(js, "BEGIN IMMEDIATE") == 0) {
        rc = get_locked(js, key_id, id, out);
        if (rc == 0 && (!strcmp(out->status, "queued") || !strcmp(out->status, "running"))) {
            int64_t now = js_now_ms() / 1000;
            sqlite3_stmt *a = js_prep(js, "UPDATE job_items SET state = 'cancelled', owner = NULL WHERE job_id = ?1"
                                          " AND state IN ('queued', 'running')");
            sqlite3_stmt *b = js_prep(js, "UPDATE jobs SET status = 'cancelled', finished_at = ?2,"
                                          " next_seq = next_seq + 1 WHERE id = ?1 RETURNING next_seq - 1");
            sqlite3_stmt *c = js_prep(js, "INSERT INTO job_events(job_id, seq, line) VALUES(?1, ?2, ?3)");
            rc = a && b && c ? 0 : -1;
            if (rc == 0) {
                js_bind_text(a, 1, id);
                js_bind_text(b, 1, id);
                sqlite3_bind_int64(b, 2, now);
                rc = sqlite3_step(a) == SQLITE_DONE && sqlite3_step(b) == SQLITE_ROW ? 0 : -1;
            }
            if (rc == 0) {
                int64_t seq = sqlite3_column_int64(b, 0);
                char *line = js_complete_line(seq, "cancelled", out->total, out->succeeded, out->failed);
                js_bind_text(c, 1, id);
                sqlite3_bind_int64(c, 2, seq);
                js_bind_text(c, 3, line);
                rc = line && sqlite3_step(c) == SQLITE_DONE ? 0 : -1;
                free(line);
            }
            sqlite3_finalize(a);
            sqlite3_finalize(b);
            sqlite3_finalize(c);
            if (rc == 0) rc = get_locked(js, key_id, id, out);
            if (rc == 0) rc = js_sqlite_enqueue_webhook(js, id);
        }
        if (rc >= 0 && js_exec(js, "COMMIT") != 0) rc = -1;
        if (rc < 0) sqlite3_exec(js->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&js->mu);
    return rc;
}

int64_t job_store_purge(job_store *js, int64_t cutoff)
{
    if (js->pg) return job_pg_purge(js->pg, cutoff);
    pthread_mutex_lock(&js->mu);
    int64_t n = -1;
    if (js_exec(js, "BEGIN IMMEDIATE") == 0) {
        sqlite3_stmt *sel = js_prep(js, "CREATE TEMP TABLE IF NOT EXISTS purge_ids(id TEXT PRIMARY KEY)");
        int ok = sel && sqlite3_step(sel) == SQLITE_DONE;
        sqlite3_finalize(sel);
        char sql[512];
        snprintf(sql, sizeof sql,
                 "DELETE FROM purge_ids; INSERT INTO purge_ids SELECT id FROM jobs WHERE finished_at IS NOT NULL"
                 " AND finished_at < %lld;"
                 " DELETE FROM job_events WHERE job_id IN (SELECT id FROM purge_ids);"
                 " DELETE FROM job_webhooks WHERE job_id IN (SELECT id FROM purge_ids);"
                 " DELETE FROM job_items WHERE job_id IN (SELECT id FROM purge_ids);"
                 " DELETE FROM jobs WHERE id IN (SELECT id FROM purge_ids);",
                 (long long)cutoff);
        if (ok && js_exec(js, sql) == 0) n = sqlite3_changes(js->db);
        if (n >= 0 && js_exec(js, "COMMIT") != 0) n = -1;
        if (n < 0) sqlite3_exec(js->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&js->mu);
    return n;
}
