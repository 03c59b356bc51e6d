/* The job store's webhook messages (both backends): one row per ended job
 * with a webhook, written in the transaction that ended the job, so that
 * neither a crash nor a restart loses it; retried under the same id until
 * delivered or a day old (webhook_sender.c). */
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/job_store_pg_internal.h"
#include "util/array.h"


void job_webhook_clear(job_webhook *w)
{
    free(w->url);
    free(w->secret);
    free(w->body);
    memset(w, 0, sizeof *w);
}

char *js_webhook_body(const job_info *j, char id[40])
{
    unsigned char rnd[12];
    if (RAND_bytes(rnd, sizeof rnd) != 1) return NULL;
    int n = snprintf(id, 40, "msg_");
    for (int i = 0; i < 12; i++) n += snprintf(id + n, (size_t)(40 - n), "%02x", rnd[i]);
    char type[32];
    snprintf(type, sizeof type, "job.%s", j->status);
    json_t *o = json_pack("{s:s,s:{s:s,s:s,s:I,s:I,s:I,s:I,s:o}}", "type", type, "data", "id", j->id, "status", j->status,
                          "total", (json_int_t)j->total, "succeeded", (json_int_t)j->succeeded, "failed",
                          (json_int_t)j->failed, "created_at", (json_int_t)j->created_at, "finished_at",
                          j->finished_at ? json_integer(j->finished_at) : json_null());
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

int js_sqlite_enqueue_webhook(job_store *js, const char *job_id)
{
    sqlite3_stmt *st = js_prep(js, "SELECT id, status, total, succeeded, failed, created_at, finished_at FROM jobs"
                                   " WHERE id = ?1 AND webhook_url IS NOT NULL");
    if (!st) return -1;
    js_bind_text(st, 1, job_id);
    int rc = sqlite3_step(st);
    job_info j = {0};
    if (rc == SQLITE_ROW) {
        snprintf(j.id, sizeof j.id, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(j.status, sizeof j.status, "%s", (const char *)sqlite3_column_text(st, 1));
        j.total = sqlite3_column_int64(st, 2);
        j.succeeded = sqlite3_column_int64(st, 3);
        j.failed = sqlite3_column_int64(st, 4);
        j.created_at = sqlite3_column_int64(st, 5);
        j.finished_at = sqlite3_column_int64(st, 6);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return rc == SQLITE_DONE ? 0 : -1;
    char id[40];
    char *body = js_webhook_body(&j, id);
    st = body ? js_prep(js, "INSERT INTO job_webhooks(id, job_id, url, secret, body, next_at, created_at)"
                            " SELECT ?1, id, webhook_url, webhook_secret, ?2, ?3, ?4 FROM jobs WHERE id = ?5")
              : NULL;
    rc = -1;
    if (st) {
        int64_t now = js_now_ms();
        js_bind_text(st, 1, id);
        js_bind_text(st, 2, body);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_int64(st, 4, now / 1000);
        js_bind_text(st, 5, job_id);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
    }
    free(body);
    return rc;
}

int jpg_enqueue_webhook(PGconn *c, const job_info *j)
{
    char id[40], now[24], now_s[24];
    char *body = js_webhook_body(j, id);
    if (!body) return -1;
    int64_t t = js_now_ms();
    jpg_num(now, t);
    jpg_num(now_s, t / 1000);
    const char *p[] = {id, body, now, now_s, j->id};
    PGresult *r = jpg_q(c,
                        "INSERT INTO job_webhooks(id, job_id, url, secret, body, next_at, created_at)"
                        " SELECT $1, id, webhook_url, webhook_secret, $2, $3, $4 FROM jobs WHERE id = $5"
                        " AND webhook_url IS NOT NULL",
                        5, p, PGRES_COMMAND_OK);
    free(body);
    PQclear(r);
    return r ? 0 : -1;
}

static int sqlite_due(job_store *js, int max, int64_t hold_ms, job_webhook **out, size_t *n)
{
    size_t cap = 0;
    int64_t now = js_now_ms();
    pthread_mutex_lock(&js->mu);
    int rc = -1;
    if (js_exec(js, "BEGIN IMMEDIATE") == 0) {
        sqlite3_stmt *sel = js_prep(js, "SELECT id, url, secret, body, attempts, created_at FROM job_webhooks"
                                        " WHERE state = 'pending' AND next_at <= ?1 LIMIT ?2");
        sqlite3_stmt *upd = js_prep(js, "UPDATE job_webhooks SET attempts = attempts + 1, next_at = ?1 WHERE id = ?2");
        if (sel && upd) {
            sqlite3_bind_int64(sel, 1, now);
            sqlite3_bind_int(sel, 2, max);
            while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
                job_webhook *w = array_push((void **)out, n, &cap, sizeof *w);
                if (!w) break;
                memset(w, 0, sizeof *w);
                snprintf(w->id, sizeof w->id, "%s", (const char *)sqlite3_column_text(sel, 0));
                w->url = strdup((const char *)sqlite3_column_text(sel, 1));
                w->secret = strdup((const char *)sqlite3_column_text(sel, 2));
                w->body = strdup((const char *)sqlite3_column_text(sel, 3));
                w->attempts = sqlite3_column_int64(sel, 4) + 1;
                w->created_at = sqlite3_column_int64(sel, 5);
                sqlite3_bind_int64(upd, 1, now + hold_ms);
                js_bind_text(upd, 2, w->id);
                int u = sqlite3_step(upd);
                sqlite3_reset(upd);
                if (u != SQLITE_DONE || !w->url || !w->secret || !w->body) break;
            }
            rc = rc == SQLITE_DONE ? 0 : -1;
        }
        sqlite3_finalize(sel);
        sqlite3_finalize(upd);
        if (rc == 0 && js_exec(js, "COMMIT") != 0) rc = -1;
        if (rc) sqlite3_exec(js->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&js->mu);
    return rc;
}

int job_pg_webhooks_due(struct job_pg *pg, int max, int64_t hold_ms, job_webhook **out, size_t *n)
{
    size_t cap = 0;
    int64_t t = js_now_ms();
    PGresult *r = jpg_runf(pg, PGRES_TUPLES_OK,
                           "WITH c AS (SELECT id FROM job_webhooks WHERE state = 'pending' AND next_at <= $1 LIMIT $2"
                           " FOR UPDATE SKIP LOCKED) UPDATE job_webhooks w SET attempts = w.attempts + 1, next_at = $3"
                           " FROM c WHERE w.id = c.id RETURNING w.id, w.url, w.secret, w.body, w.attempts, w.created_at",
                           "nnn", t, (int64_t)max, t + hold_ms);
    if (!r) return -1;
    int rc = 0;
    for (int row = 0; row < PQntuples(r) && rc == 0; row++) {
        job_webhook *w = array_push((void **)out, n, &cap, sizeof *w);
        if (!w) {
            rc = -1;
            break;
        }
        memset(w, 0, sizeof *w);
        snprintf(w->id, sizeof w->id, "%s", PQgetvalue(r, row, 0));
        w->url = strdup(PQgetvalue(r, row, 1));
        w->secret = strdup(PQgetvalue(r, row, 2));
        w->body = strdup(PQgetvalue(r, row, 3));
        w->attempts = atoll(PQgetvalue(r, row, 4));
        w->created_at = atoll(PQgetvalue(r, row, 5));
        if (!w->url || !w->secret || !w->body) rc = -1;
    }
    PQclear(r);
    return rc;
}

int job_store_webhooks_due(job_store *js, int max, int64_t hold_ms, job_webhook **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = js->pg ? job_pg_webhooks_due(js->pg, max, hold_ms, out, n) : sqlite_due(js, max, hold_ms, out, n);
    if (rc) {
        for (size_t i = 0; i < *n; i++) job_webhook_clear(&(*out)[i]);
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int job_store_webhook_after(job_store *js, const char *id, bool delivered, bool give_up, int64_t next_ms)
{
    const char *state = delivered ? "delivered" : give_up ? "failed"
                                                          : "pending";
    if (js->pg) {
        char nx[24];
        jpg_num(nx, next_ms);
        const char *p[] = {state, nx, id};
        PGresult *r = jpg_run(js->pg, "UPDATE job_webhooks SET state = $1, next_at = $2 WHERE id = $3", 3, p,
                              PGRES_COMMAND_OK);
        PQclear(r);
        return r ? 0 : -1;
    }
    pthread_mutex_lock(&js->mu);
    sqlite3_stmt *st = js_prep(js, "UPDATE job_webhooks SET state = ?1, next_at = ?2 WHERE id = ?3");
    int rc = -1;
    if (st) {
        js_bind_text(st, 1, state);
        sqlite3_bind_int64(st, 2, next_ms);
        js_bind_text(st, 3, id);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&js->mu);
    return rc;
}
