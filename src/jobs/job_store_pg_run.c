/* The PostgreSQL job store's work side (job_store_pg.c has the rest). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/job_store_pg_internal.h"
#include "util/array.h"

static char *dup_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

/* Lapsed leases and new items alike; SKIP LOCKED: nodes claiming at once
 * take different items and never wait on each other. */
int job_pg_claim(struct job_pg *pg, const char *owner, int max, int64_t lease_ms, job_item **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    int64_t t = js_now_ms();
    PGresult *r = jpg_runf(pg, PGRES_TUPLES_OK,
                           "WITH c AS (SELECT job_id, idx FROM job_items WHERE state = 'queued'"
                           "  OR (state = 'running' AND lease_until < $1) LIMIT $2 FOR UPDATE SKIP LOCKED),"
                           " u AS (UPDATE job_items i SET state = 'running', attempt = i.attempt + 1, owner = $3,"
                           "  lease_until = $4 FROM c WHERE i.job_id = c.job_id AND i.idx = c.idx RETURNING i.*),"
                           " s AS (UPDATE jobs SET status = 'running' WHERE status = 'queued'"
                           "  AND id IN (SELECT job_id FROM u))"
                           " SELECT u.job_id, u.idx, u.url, u.model, u.is_yolo, u.is_ocr, u.is_llm, u.attempt, j.key_id,"
                           " j.query, j.params, u.opts FROM u JOIN jobs j ON j.id = u.job_id",
                           "nnsn", t, (int64_t)max, owner, t + lease_ms);
    if (!r) return -1;
    int rc = 0;
    for (int row = 0; row < PQntuples(r) && rc == 0; row++) {
        job_item *it = array_push((void **)out, n, &cap, sizeof *it);
        if (!it) {
            rc = -1;
            break;
        }
        memset(it, 0, sizeof *it);
        snprintf(it->job_id, sizeof it->job_id, "%s", PQgetvalue(r, row, 0));
        it->index = atoll(PQgetvalue(r, row, 1));
        it->url = dup_or_null(r, row, 2);
        it->model = dup_or_null(r, row, 3);
        it->is_yolo = atoi(PQgetvalue(r, row, 4));
        it->is_ocr = atoi(PQgetvalue(r, row, 5));
        it->is_llm = atoi(PQgetvalue(r, row, 6));
        it->attempt = atoll(PQgetvalue(r, row, 7));
        it->key_id = atoll(PQgetvalue(r, row, 8));
        it->query = dup_or_null(r, row, 9);
        it->params = dup_or_null(r, row, 10);
        it->opts = dup_or_null(r, row, 11);
        if (!it->url) rc = -1;
    }
    PQclear(r);
    if (rc) {
        /* Claimed but not taken: the leases lapse and others take them. */
        for (size_t k = 0; k < *n; k++) job_item_clear(&(*out)[k]);
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int job_pg_lease(struct job_pg *pg, const job_item *it, int64_t lease_ms, bool release)
{
    char idx[24], att[24], until[24];
    jpg_num(idx, it->index);
    jpg_num(att, it->attempt);
    jpg_num(until, js_now_ms() + lease_ms);
    const char *p[] = {it->job_id, idx, att, until};
    PGresult *r = jpg_run(pg,
                          release ? "UPDATE job_items SET state = 'queued', owner = NULL, lease_until = 0 WHERE job_id = $1"
                                    " AND idx = $2 AND attempt = $3 AND state = 'running' AND $4::bigint > 0"
                                  : "UPDATE job_items SET lease_until = $4 WHERE job_id = $1 AND idx = $2 AND attempt = $3"
                                    " AND state = 'running'",
                          4, p, PGRES_COMMAND_OK);
    if (!r) return -1;
    int rc = atoi(PQcmdTuples(r)) > 0 ? 0 : 1;
    PQclear(r);
    return rc;
}

static int exec_ok(PGconn *c, const char *sql, int n, const char *const *p)
{
    PGresult *r = jpg_q(c, sql, n, p, PGRES_COMMAND_OK);
    PQclear(r);
    return r ? 0 : -1;
}

static int insert_event(PGconn *c, const char *job_id, int64_t seq, const char *line)
{
    char s[24];
    jpg_num(s, seq);
    const char *p[] = {job_id, s, line};
    return line ? exec_ok(c, "INSERT INTO job_events(job_id, seq, line) VALUES($1, $2, $3)", 3, p) : -1;
}

static int add_usage(PGconn *c, const usage_row *u)
{
    char v[12][32];
    int64_t w[] = {u->key_id, u->requests, u->files, u->succeeded, u->failed,
                   u->bytes_in, u->yolo_runs, u->ocr_runs, u->llm_calls, u->llm_prompt_tokens,
                   u->llm_completion_tokens};
    for (int i = 0; i < 11; i++) jpg_num(v[i], w[i]);
    snprintf(v[11], sizeof v[11], "%.6f", u->megapixels);
    const char *p[] = {v[0], u->day, v[1], v[2], v[3], v[4], v[11], v[5], v[6], v[7], v[8], v[9], v[10]};
    return exec_ok(c,
                   "INSERT INTO usage(key_id, day, requests, files, succeeded, failed, megapixels, bytes_in, yolo_runs,"
                   " ocr_runs, llm_calls, llm_prompt_tokens, llm_completion_tokens)"
                   " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                   " ON CONFLICT(key_id, day) DO UPDATE SET requests = usage.requests + $3, files = usage.files + $4,"
                   " succeeded = usage.succeeded + $5, failed = usage.failed + $6,"
                   " megapixels = usage.megapixels + $7, bytes_in = usage.bytes_in + $8,"
                   " yolo_runs = usage.yolo_runs + $9, ocr_runs = usage.ocr_runs + $10,"
                   " llm_calls = usage.llm_calls + $11, llm_prompt_tokens = usage.llm_prompt_tokens + $12,"
                   " llm_completion_tokens = usage.llm_completion_tokens + $13",
                   13, p);
}

/* Inside the transaction: 0 committed-to-be, 1 not this attempt's, -1 error. */
static int finish_on(PGconn *c, const job_item *it, const char *const *lines, size_t nlines, bool succeeded,
                     const usage_row *usage, bool *ended)
{
    char idx[24], att[24], nl[24], okc[24], badc[24];
    jpg_num(idx, it->index);
    jpg_num(att, it->attempt);
    jpg_num(nl, (int64_t)nlines);
    jpg_num(okc, succeeded);
    jpg_num(badc, !succeeded);
    const char *p[] = {succeeded ? "done" : "error", lines[nlines - 1], it->job_id, idx, att};
    PGresult *r = jpg_q(c,
                        "UPDATE job_items SET state = $1, result = $2, owner = NULL WHERE job_id = $3 AND idx = $4"
                        " AND attempt = $5 AND state = 'running'",
                        5, p, PGRES_COMMAND_OK);
    if (!r) return -1;
    int held = atoi(PQcmdTuples(r)) > 0;
    PQclear(r);
    if (!held) return 1;
    /* The job's row lock: this item's seq range, and commits in seq order. */
    const char *pj[] = {it->job_id, nl, okc, badc};
    r = jpg_q(c,
              "UPDATE jobs SET next_seq = next_seq + $2, succeeded = succeeded + $3, failed = failed + $4"
              " WHERE id = $1 RETURNING next_seq - $2, total, succeeded, failed",
              4, pj, PGRES_TUPLES_OK);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        return -1;
    }
    int64_t seq = atoll(PQgetvalue(r, 0, 0)), total = atoll(PQgetvalue(r, 0, 1)), ok = atoll(PQgetvalue(r, 0, 2)),
            bad = atoll(PQgetvalue(r, 0, 3));
    PQclear(r);
    for (size_t i = 0; i < nlines; i++) {
        char *line = js_with_seq(lines[i], seq + (int64_t)i);
        int rc = insert_event(c, it->job_id, seq + (int64_t)i, line);
        free(line);
        if (rc) return -1;
    }
    if (usage) {
        usage_row u = *usage;
        u.key_id = it->key_id;
        js_today(u.day);
        if (add_usage(c, &u)) return -1;
    }
    *ended = ok + bad >= total;
    if (!*ended) return 0;
    char now[24];
    jpg_num(now, js_now_ms() / 1000);
    const char *pc[] = {it->job_id, now};
    if (exec_ok(c, "UPDATE jobs SET status = 'completed', finished_at = $2, next_seq = next_seq + 1 WHERE id = $1", 2,
                pc))
        return -1;
    char *line = js_complete_line(seq + (int64_t)nlines, "completed", total, ok, bad);
    int rc = insert_event(c, it->job_id, seq + (int64_t)nlines, line);
    free(line);
    if (rc) return -1;
    job_info j = {.total = total, .succeeded = ok, .failed = bad, .finished_at = js_now_ms() / 1000};
    snprintf(j.id, sizeof j.id, "%s", it->job_id);
    snprintf(j.status, sizeof j.status, "completed");
    const char *pid[] = {it->job_id};
    PGresult *cr = jpg_q(c, "SELECT created_at FROM jobs WHERE id = $1", 1, pid, PGRES_TUPLES_OK);
    if (!cr || PQntuples(cr) != 1) {
        PQclear(cr);
        return -1;
    }
    j.created_at = atoll(PQgetvalue(cr, 0, 0));
    PQclear(cr);
    return jpg_enqueue_webhook(c, &j);
}

int job_pg_finish(struct job_pg *pg, const job_item *it, const char *const *lines, size_t nlines, bool succeeded,
                  const usage_row *usage, bool *job_ended)
{
    *job_ended = false;
    int i = jpg_take(pg);
    if (i < 0) return -1;
    PGconn *c = pg->conn[i];
    int rc = jpg_ok(c, "BEGIN") ? finish_on(c, it, lines, nlines, succeeded, usage, job_ended) : -1;
    if (!jpg_ok(c, rc == 0 ? "COMMIT" : "ROLLBACK") && rc == 0) rc = -1;
    if (rc) *job_ended = false;
    jpg_give(pg, i);
    return rc;
}

int64_t job_pg_purge(struct job_pg *pg, int64_t cutoff)
{
    PGresult *r = jpg_runf(pg, PGRES_TUPLES_OK,
                           "WITH d AS (DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < $1 RETURNING id),"
                           " e AS (DELETE FROM job_events WHERE job_id IN (SELECT id FROM d)),"
                           " f AS (DELETE FROM job_items WHERE job_id IN (SELECT id FROM d)),"
                           " w AS (DELETE FROM job_webhooks WHERE job_id IN (SELECT id FROM d))"
                           " SELECT COUNT(*) FROM d",
                           "n", cutoff);
    if (!r) return -1;
    int64_t n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}
