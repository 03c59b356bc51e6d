/* The job store on PostgreSQL, for several nodes sharing the key store's
 * database: the same tables as on SQLite (created if missing, under an
 * advisory lock so nodes starting together do not race), items claimed with
 * FOR UPDATE SKIP LOCKED so that nodes never wait on each other's claims,
 * and an item's outcome committed in one transaction whose UPDATE of the
 * job's row both hands out the events' seq and orders those commits per job.
 *
 * A few connections of its own (not the key store's pool: an item's commit
 * is a transaction of several statements on one connection), made on
 * demand with the key store's timeouts and replaced when they break. */
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/job_store_pg_internal.h"
#include "util/array.h"
#include "util/error.h"
#include "util/log.h"

#define OPTIONS "-c statement_timeout=15000 -c lock_timeout=5000"
#define JOB_COLUMNS "id, status, total, succeeded, failed, created_at, COALESCE(finished_at, 0)"
#define IDEMPOTENCY_WINDOW_S (24 * 3600)


/* The jobs tables come with the key store's migrations (keys/keystore_pg.c,
 * migrations 3 and 4), applied when the key store opens; this only checks them. */
static const char PROBE[] = "SELECT job_items.opts FROM jobs, job_items, job_events, job_webhooks LIMIT 0";

static PGconn *connect_pg(const char *url, char *err, size_t err_len)
{
    const char *keys[] = {"connect_timeout", "options", "application_name", "dbname", NULL};
    const char *vals[] = {"3", OPTIONS, "sightd-jobs", url, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        err_printf(err, err_len, "%s", c ? PQerrorMessage(c) : "out of memory");
        for (char *p = err; p && *p; p++)
            if (*p == '\n') *p = ' ';
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* A connection of the pool (made if needed), or -1. */
int jpg_take(struct job_pg *pg)
{
    pthread_mutex_lock(&pg->mu);
    int i;
    for (;;) {
        for (i = 0; i < POOL && pg->busy[i]; i++) {}
        if (i < POOL) break;
        pthread_cond_wait(&pg->freed, &pg->mu);
    }
    pg->busy[i] = true;
    pthread_mutex_unlock(&pg->mu);
    if (pg->conn[i] && PQstatus(pg->conn[i]) != CONNECTION_OK) {
        PQfinish(pg->conn[i]);
        pg->conn[i] = NULL;
    }
    char err[300];
    if (!pg->conn[i] && !(pg->conn[i] = connect_pg(pg->url, err, sizeof err))) {
        log_error("job store: cannot connect to PostgreSQL: %s", err);
        pthread_mutex_lock(&pg->mu);
        pg->busy[i] = false;
        pthread_cond_signal(&pg->freed);
        pthread_mutex_unlock(&pg->mu);
        return -1;
    }
    return i;
}

void jpg_give(struct job_pg *pg, int i)
{
    /* A connection left inside a transaction (an error mid-way) is reset. */
    if (PQtransactionStatus(pg->conn[i]) != PQTRANS_IDLE) {
        PQfinish(pg->conn[i]);
        pg->conn[i] = NULL;
    }
    pthread_mutex_lock(&pg->mu);
    pg->busy[i] = false;
    pthread_cond_signal(&pg->freed);
    pthread_mutex_unlock(&pg->mu);
}

PGresult *jpg_run(struct job_pg *pg, const char *sql, int n, const char *const *p, ExecStatusType want)
{
    int i = jpg_take(pg);
    if (i < 0) return NULL;
    PGresult *r = jpg_q(pg->conn[i], sql, n, p, want);
    jpg_give(pg, i);
    return r;
}

PGresult *jpg_runf(struct job_pg *pg, ExecStatusType want, const char *sql, const char *types, ...)
{
    size_t n = strlen(types);
    if (n > JPG_MAX_ARGS) return NULL;
    char nums[JPG_MAX_ARGS][24];
    const char *p[JPG_MAX_ARGS];
    va_list ap;
    va_start(ap, types);
    for (size_t i = 0; i < n; i++) {
        if (types[i] == 'n') {
            jpg_num(nums[i], va_arg(ap, int64_t));
            p[i] = nums[i];
        } else {
            p[i] = va_arg(ap, const char *);
        }
    }
    va_end(ap);
    return jpg_run(pg, sql, (int)n, p, want);
}

/* Runs sql with text parameters; the result when its status is want, else NULL (logged). */
PGresult *jpg_q(PGconn *c, const char *sql, int n, const char *const *p, ExecStatusType want)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) == want) return r;
    char msg[300];
    snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
    for (char *s = msg; *s; s++)
        if (*s == '\n') *s = ' ';
    log_error("job store: PostgreSQL: %s", msg);
    PQclear(r);
    return NULL;
}

bool jpg_ok(PGconn *c, const char *sql)
{
    PGresult *r = jpg_q(c, sql, 0, NULL, PGRES_COMMAND_OK);
    PQclear(r);
    return r != NULL;
}

void jpg_num(char *buf, int64_t v) { snprintf(buf, 24, "%lld", (long long)v); }

struct job_pg *job_pg_open(const char *url, char *err, size_t err_len)
{
    struct job_pg *pg = calloc(1, sizeof *pg);
    if (!pg || !(pg->url = strdup(url))) {
        free(pg);
        err_printf(err, err_len, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&pg->mu, NULL);
    pthread_cond_init(&pg->freed, NULL);
    if (!(pg->conn[0] = connect_pg(url, err, err_len))) {
        job_pg_close(pg);
        return NULL;
    }
    PGresult *r = PQexec(pg->conn[0], PROBE);
    bool good = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!good) err_printf(err, err_len, "no jobs tables (the key store's migrations make them): %s", PQerrorMessage(pg->conn[0]));
    PQclear(r);
    if (!good) {
        job_pg_close(pg);
        return NULL;
    }
    return pg;
}

void job_pg_close(struct job_pg *pg)
{
    if (!pg) return;
    for (int i = 0; i < POOL; i++) PQfinish(pg->conn[i]);
    pthread_mutex_destroy(&pg->mu);
    pthread_cond_destroy(&pg->freed);
    free(pg->url);
    free(pg);
}

static void read_job(PGresult *r, int row, job_info *j)
{
    snprintf(j->id, sizeof j->id, "%s", PQgetvalue(r, row, 0));
    snprintf(j->status, sizeof j->status, "%s", PQgetvalue(r, row, 1));
    j->total = atoll(PQgetvalue(r, row, 2));
    j->succeeded = atoll(PQgetvalue(r, row, 3));
    j->failed = atoll(PQgetvalue(r, row, 4));
    j->created_at = atoll(PQgetvalue(r, row, 5));
    j->finished_at = atoll(PQgetvalue(r, row, 6));
}

/* 0 found, 1 not, -1 error; lock: FOR UPDATE (inside a transaction). */
static int get_on(PGconn *c, int64_t key_id, const char *id, job_info *out, bool lock)
{
    char k[24];
    jpg_num(k, key_id);
    const char *p[] = {id, k};
    PGresult *r = jpg_q(c,
                        lock ? "SELECT " JOB_COLUMNS " FROM jobs WHERE id = $1 AND ($2::bigint < 0 OR key_id = $2) FOR UPDATE"
                             : "SELECT " JOB_COLUMNS " FROM jobs WHERE id = $1 AND ($2::bigint < 0 OR key_id = $2)",
                        2, p, PGRES_TUPLES_OK);
    if (!r) return -1;
    int rc = PQntuples(r) ? 0 : 1;
    if (!rc) read_job(r, 0, out);
    PQclear(r);
    return rc;
}

int job_pg_get(struct job_pg *pg, int64_t key_id, const char *id, job_info *out)
{
    int i = jpg_take(pg);
    if (i < 0) return -1;
    int rc = get_on(pg->conn[i], key_id, id, out, false);
    jpg_give(pg, i);
    return rc;
}

/* The items as one JSON array parameter: one INSERT for any number. */
static char *items_json(const job_new *n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n->nitems; i++) {
        const job_item_spec *it = &n->items[i];
        json_array_append_new(a, json_pack("{s:s,s:s?,s:i,s:i,s:i,s:s?}", "u", it->url, "m", it->model, "y", it->is_yolo, "o", it->is_ocr, "l", it->is_llm, "x", it->opts));
    }
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return text;
}

static job_create_rc create_on(PGconn *c, const job_new *n, const char *id, job_info *out, const char *items)
{
    char k[24], now_s[24], now_ms[24], since[24], total[24];
    int64_t ms = js_now_ms();
    jpg_num(k, n->key_id);
    jpg_num(now_s, ms / 1000);
    jpg_num(now_ms, ms);
    jpg_num(since, ms / 1000 - IDEMPOTENCY_WINDOW_S);
    jpg_num(total, (int64_t)n->nitems);
    /* One key's creations in turn: its Idempotency-Key and open count hold. */
    const char *pk[] = {k};
    PGresult *r = jpg_q(c, "SELECT pg_advisory_xact_lock(hashtextextended('sight_jobs:' || $1, 0))", 1, pk, PGRES_TUPLES_OK);
    if (!r) return JOB_STORE_ERROR;
    PQclear(r);
    if (n->idem_key) {
        const char *p[] = {k, n->idem_key, since};
        r = jpg_q(c,
                  "SELECT " JOB_COLUMNS ", body_hash FROM jobs WHERE key_id = $1 AND idem_key = $2 AND created_at > $3"
                  " ORDER BY created_ms DESC LIMIT 1",
                  3, p, PGRES_TUPLES_OK);
        if (!r) return JOB_STORE_ERROR;
        if (PQntuples(r)) {
            read_job(r, 0, out);
            bool same = n->body_hash && !strcmp(PQgetvalue(r, 0, 7), n->body_hash);
            PQclear(r);
            return same ? JOB_REPLAYED : JOB_KEY_REUSED;
        }
        PQclear(r);
    }
    if (n->max_open > 0) {
        r = jpg_q(c, "SELECT COUNT(*) FROM jobs WHERE key_id = $1 AND status IN ('queued', 'running')", 1, pk,
                  PGRES_TUPLES_OK);
        if (!r) return JOB_STORE_ERROR;
        int64_t open = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (open >= n->max_open) return JOB_TOO_MANY_OPEN;
    }
    const char *p[] = {id, k, total, n->query, n->params, now_s, now_ms, n->idem_key,
                       n->idem_key ? n->body_hash : NULL, n->webhook_url, n->webhook_secret};
    r = jpg_q(c,
              "INSERT INTO jobs(id, key_id, status, total, query, params, created_at, created_ms, idem_key, body_hash,"
              " webhook_url, webhook_secret) VALUES($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10, $11)",
              11, p, PGRES_COMMAND_OK);
    if (!r) return JOB_STORE_ERROR;
    PQclear(r);
    const char *pi[] = {id, items};
    r = jpg_q(c,
              "INSERT INTO job_items(job_id, idx, url, model, is_yolo, is_ocr, is_llm, opts)"
              " SELECT $1, t.ord - 1, t.e->>'u', t.e->>'m', (t.e->>'y')::int, (t.e->>'o')::int, (t.e->>'l')::int,"
              " t.e->>'x'"
              " FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS t(e, ord)",
              2, pi, PGRES_COMMAND_OK);
    if (!r) return JOB_STORE_ERROR;
    PQclear(r);
    return get_on(c, -1, id, out, false) == 0 ? JOB_CREATED : JOB_STORE_ERROR;
}

job_create_rc job_pg_create(struct job_pg *pg, const job_new *n, const char *id, job_info *out)
{
    char *items = items_json(n);
    int i = items ? jpg_take(pg) : -1;
    if (i < 0) {
        free(items);
        return JOB_STORE_ERROR;
    }
    PGconn *c = pg->conn[i];
    job_create_rc rc = jpg_ok(c, "BEGIN") ? create_on(c, n, id, out, items) : JOB_STORE_ERROR;
    if (!jpg_ok(c, rc == JOB_CREATED ? "COMMIT" : "ROLLBACK") && rc == JOB_CREATED) rc = JOB_STORE_ERROR;
    jpg_give(pg, i);
    free(items);
    return rc;
}

int job_pg_list(struct job_pg *pg, int64_t key_id, const char *before, int limit, job_info **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    PGresult *r = jpg_runf(pg, PGRES_TUPLES_OK,
                           "SELECT " JOB_COLUMNS " FROM jobs WHERE ($1::bigint < 0 OR key_id = $1) AND ($2::text IS NULL"
                           " OR (created_ms, id) < (SELECT created_ms, id FROM jobs WHERE id = $2"
                           " AND ($1::bigint < 0 OR key_id = $1)))"
                           " ORDER BY created_ms DESC, id DESC LIMIT $3",
                           "nsn", key_id, before, (int64_t)limit);
    if (!r) return -1;
    for (int row = 0; row < PQntuples(r); row++) {
        job_info *j = array_push((void **)out, n, &cap, sizeof *j);
        if (!j) break;
        read_job(r, row, j);
    }
    PQclear(r);
    return 0;
}

static int cancel_on(PGconn *c, int64_t key_id, const char *id, job_info *out)
{
    int rc = get_on(c, key_id, id, out, true);
    if (rc != 0 || (strcmp(out->status, "queued") && strcmp(out->status, "running"))) return rc;
    char now[24];
    jpg_num(now, js_now_ms() / 1000);
    const char *p[] = {id, now};
    PGresult *r = jpg_q(c, "UPDATE job_items SET state = 'cancelled', owner = NULL WHERE job_id = $1"
                           " AND state IN ('queued', 'running')",
                        1, p, PGRES_COMMAND_OK);
    if (!r) return -1;
    PQclear(r);
    r = jpg_q(c, "UPDATE jobs SET status = 'cancelled', finished_at = $2, next_seq = next_seq + 1 WHERE id = $1"
                 " RETURNING next_seq - 1",
              2, p, PGRES_TUPLES_OK);
    if (!r) return -1;
    int64_t seq = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    char *line = js_complete_line(seq, "cancelled", out->total, out->succeeded, out->failed), s[24];
    jpg_num(s, seq);
    const char *pe[] = {id, s, line};
    r = line ? jpg_q(c, "INSERT INTO job_events(job_id, seq, line) VALUES($1, $2, $3)", 3, pe, PGRES_COMMAND_OK) : NULL;
    free(line);
    if (!r) return -1;
    PQclear(r);
    rc = get_on(c, key_id, id, out, false);
    return rc == 0 ? jpg_enqueue_webhook(c, out) : rc;
}

int job_pg_cancel(struct job_pg *pg, int64_t key_id, const char *id, job_info *out)
{
    int i = jpg_take(pg);
    if (i < 0) return -1;
    PGconn *c = pg->conn[i];
    int rc = jpg_ok(c, "BEGIN") ? cancel_on(c, key_id, id, out) : -1;
    if (!jpg_ok(c, rc >= 0 ? "COMMIT" : "ROLLBACK")) rc = -1;
    jpg_give(pg, i);
    return rc;
}

int job_pg_events(struct job_pg *pg, const char *id, int64_t after, int max, bool results, char **text, size_t *len,
                  int64_t *last, bool *ended)
{
    *text = NULL;
    *len = 0;
    *last = after;
    *ended = false;
    size_t cap = 0;
    PGresult *r = jpg_runf(pg, PGRES_TUPLES_OK,
                           results ? "SELECT idx, result, url FROM job_items WHERE job_id = $1 AND idx > $2"
                                     " AND (result IS NOT NULL OR state = 'cancelled') ORDER BY idx LIMIT $3"
                                   : "SELECT seq, line FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                           "snn", id, after, (int64_t)max);
    if (!r) return -1;
    int rc = 0;
    for (int row = 0; row < PQntuples(r) && rc == 0; row++) {
        int64_t at = atoll(PQgetvalue(r, row, 0));
        char *made = NULL;
        const char *line = PQgetvalue(r, row, 1);
        if (results && PQgetisnull(r, row, 1)) line = made = js_cancelled_line(at, PQgetvalue(r, row, 2));
        rc = line ? js_append(text, len, &cap, line) : -1;
        if (!results && line && !strncmp(line, COMPLETE_PREFIX, strlen(COMPLETE_PREFIX))) *ended = true;
        free(made);
        *last = at;
    }
    PQclear(r);
    if (rc) {
        free(*text);
        *text = NULL;
        *len = 0;
    }
    return rc;
}
