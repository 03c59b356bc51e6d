/* The usage ledger of the SQLite key store: one row per key and UTC day,
 * added to by UPSERT. A batch of changes is one transaction, so the requests
 * that finish together share one commit (the limiter's ledger groups them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/keystore_sqlite_internal.h"
#include "util/array.h"

int usage_prepare(sqlite_ks *s, char *err, size_t err_len)
{
    return ks_prepare(s, &s->usage_upsert,
                      "INSERT INTO usage(key_id, day, requests, files, succeeded, failed, megapixels, bytes_in,"
                      " yolo_runs, ocr_runs, llm_calls, llm_prompt_tokens, llm_completion_tokens)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                      " ON CONFLICT(key_id, day) DO UPDATE SET requests = requests + ?3, files = files + ?4,"
                      " succeeded = succeeded + ?5, failed = failed + ?6, megapixels = megapixels + ?7,"
                      " bytes_in = bytes_in + ?8, yolo_runs = yolo_runs + ?9, ocr_runs = ocr_runs + ?10,"
                      " llm_calls = llm_calls + ?11, llm_prompt_tokens = llm_prompt_tokens + ?12,"
                      " llm_completion_tokens = llm_completion_tokens + ?13",
                      err, err_len) ||
        ks_prepare(s, &s->usage_select,
                   "SELECT day, requests, files, succeeded, failed, megapixels, bytes_in, yolo_runs, ocr_runs,"
                   " llm_calls, llm_prompt_tokens, llm_completion_tokens FROM usage"
                   " WHERE key_id = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day",
                   err, err_len);
}

void usage_finalize(sqlite_ks *s)
{
    sqlite3_finalize(s->usage_upsert);
    sqlite3_finalize(s->usage_select);
}

static int bind_row(sqlite3_stmt *st, const usage_row *r)
{
    int64_t v[] = {r->requests, r->files, r->succeeded, r->failed};
    int64_t w[] = {r->bytes_in, r->yolo_runs, r->ocr_runs, r->llm_calls, r->llm_prompt_tokens, r->llm_completion_tokens};
    if (sqlite3_bind_int64(st, 1, r->key_id) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, r->day, -1, SQLITE_TRANSIENT) != SQLITE_OK)
        return -1;
    for (int i = 0; i < 4; i++)
        if (sqlite3_bind_int64(st, 3 + i, v[i]) != SQLITE_OK) return -1;
    if (sqlite3_bind_double(st, 7, r->megapixels) != SQLITE_OK) return -1;
    for (int i = 0; i < 6; i++)
        if (sqlite3_bind_int64(st, 8 + i, w[i]) != SQLITE_OK) return -1;
    return 0;
}

int ks_usage_add(keystore *base, const usage_row *rows, size_t n)
{
    sqlite_ks *s = (sqlite_ks *)base;
    if (n == 0) return 0;
    pthread_mutex_lock(&s->mu);
    int ok = ks_exec(s->db, "BEGIN IMMEDIATE", NULL, 0) == 0;
    for (size_t i = 0; ok && i < n; i++) {
        ok = bind_row(s->usage_upsert, &rows[i]) == 0 && sqlite3_step(s->usage_upsert) == SQLITE_DONE;
        sqlite3_reset(s->usage_upsert);
    }
    if (ok) ok = ks_exec(s->db, "COMMIT", NULL, 0) == 0;
    if (!ok) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&s->mu);
    return ok ? 0 : -1;
}

int ks_usage_get(keystore *base, int64_t id, const char *from, const char *to, usage_row **out, size_t *n)
{
    sqlite_ks *s = (sqlite_ks *)base;
    sqlite3_stmt *st = s->usage_select;
    usage_row *v = NULL;
    size_t len = 0, cap = 0;
    int rc = SQLITE_ERROR, ok = 1;
    pthread_mutex_lock(&s->mu);
    if (sqlite3_bind_int64(st, 1, id) == SQLITE_OK && sqlite3_bind_text(st, 2, from, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
        sqlite3_bind_text(st, 3, to, -1, SQLITE_TRANSIENT) == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            usage_row *r = array_push((void **)&v, &len, &cap, sizeof *r);
            if (!r) {
                ok = 0;
                break;
            }
            r->key_id = id;
            const char *day = (const char *)sqlite3_column_text(st, 0);
            snprintf(r->day, sizeof r->day, "%s", day ? day : "");
            r->requests = sqlite3_column_int64(st, 1);
            r->files = sqlite3_column_int64(st, 2);
            r->succeeded = sqlite3_column_int64(st, 3);
            r->failed = sqlite3_column_int64(st, 4);
            r->megapixels = sqlite3_column_double(st, 5);
            r->bytes_in = sqlite3_column_int64(st, 6);
            r->yolo_runs = sqlite3_column_int64(st, 7);
            r->ocr_runs = sqlite3_column_int64(st, 8);
            r->llm_calls = sqlite3_column_int64(st, 9);
            r->llm_prompt_tokens = sqlite3_column_int64(st, 10);
            r->llm_completion_tokens = sqlite3_column_int64(st, 11);
        }
    }
    *out = ks_rows_end(s, st, rc, &ok, v, &len);
    *n = len;
    return ok ? 0 : -1;
}
