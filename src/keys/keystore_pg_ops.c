/* PostgreSQL backend of the key store: the operations. Every value travels
 * as a bound parameter of a prepared statement; keys are stored as in the
 * SQLite store (SHA-256 hex and an 8-character prefix). */
#include "keys/key_text.h"
#include "keys/keystore_pg_internal.h"
#include "util/array.h"
#include "util/buf.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOUCH_INTERVAL 60 /* seconds between last_used_at writes per key */
#define LIMIT_COLUMNS \
    "rate, rate_per, burst, max_concurrent, quota_images, quota_images_per, quota_llm_tokens, quota_llm_per"
#define USAGE_COLUMNS                                                                                              \
    "requests, files, succeeded, failed, megapixels, bytes_in, yolo_runs, ocr_runs, llm_calls, llm_prompt_tokens," \
    " llm_completion_tokens"

const pg_statement PG_STATEMENTS[] = {
    {"create", "INSERT INTO api_keys(name, key_hash, prefix, created_at) VALUES($1, $2, $3, $4) RETURNING id"},
    {"list", "SELECT id, name, prefix, created_at, COALESCE(last_used_at, 0), COALESCE(revoked_at, 0), " LIMIT_COLUMNS " FROM api_keys ORDER BY id"},
    {"revoke", "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"},
    {"verify", "SELECT id, key_hash, revoked_at IS NULL, COALESCE(last_used_at, 0), " LIMIT_COLUMNS " FROM api_keys WHERE key_hash = $1"},
    {"touch", "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)"},
    {"count", "SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL"},
    {"set_limits", "UPDATE api_keys SET rate = $1, rate_per = $2, burst = $3, max_concurrent = $4, quota_images = $5,"
                   " quota_images_per = $6, quota_llm_tokens = $7, quota_llm_per = $8 WHERE id = $9"},
    /* A whole group commit in one statement (its own transaction): one
     * round trip however many rows. Rows come as parallel arrays. */
    {"usage_add",
     "INSERT INTO usage AS u(key_id, day, " USAGE_COLUMNS ")"
     " SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],"
     " $7::float8[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[])"
     " ON CONFLICT (key_id, day) DO UPDATE SET requests = u.requests + EXCLUDED.requests,"
     " files = u.files + EXCLUDED.files, succeeded = u.succeeded + EXCLUDED.succeeded,"
     " failed = u.failed + EXCLUDED.failed, megapixels = u.megapixels + EXCLUDED.megapixels,"
     " bytes_in = u.bytes_in + EXCLUDED.bytes_in, yolo_runs = u.yolo_runs + EXCLUDED.yolo_runs,"
     " ocr_runs = u.ocr_runs + EXCLUDED.ocr_runs, llm_calls = u.llm_calls + EXCLUDED.llm_calls,"
     " llm_prompt_tokens = u.llm_prompt_tokens + EXCLUDED.llm_prompt_tokens,"
     " llm_completion_tokens = u.llm_completion_tokens + EXCLUDED.llm_completion_tokens"},
    {"usage_get", "SELECT day, " USAGE_COLUMNS " FROM usage WHERE key_id = $1 AND day >= $2 AND day <= $3 ORDER BY day"},
    {"keys_version", "SELECT version FROM keys_version WHERE id = 1"},
};
const size_t PG_NSTATEMENTS = sizeof PG_STATEMENTS / sizeof PG_STATEMENTS[0];

typedef struct {
    char s[24];
} num;

static num I(int64_t v)
{
    num n;
    snprintf(n.s, sizeof n.s, "%lld", (long long)v);
    return n;
}

static int64_t col(const PGresult *r, int row, int c) { return strtoll(PQgetvalue(r, row, c), NULL, 10); }

/* The eight limit columns, in LIMIT_COLUMNS order, from column first. */
static void read_limits(const PGresult *r, int row, int first, key_limits *l)
{
    l->rate = col(r, row, first);
    l->rate_per_s = col(r, row, first + 1);
    l->burst = col(r, row, first + 2);
    l->max_concurrent = col(r, row, first + 3);
    l->quota_images = col(r, row, first + 4);
    l->quota_images_per = (int)col(r, row, first + 5);
    l->quota_llm_tokens = col(r, row, first + 6);
    l->quota_llm_per = (int)col(r, row, first + 7);
}

/* PQcmdTuples as a number: rows an UPDATE changed. */
static int changed(PGresult *r) { return atoi(PQcmdTuples(r)); }

static int pg_create(keystore *base, const char *name, char *key_out, size_t key_out_len, int64_t *id_out)
{
    pg_ks *s = (pg_ks *)base;
    if (key_out && key_out_len) key_out[0] = '\0';
    if (!key_name_ok(name) || !key_out || key_out_len < KEY_LEN + 1) return -1;
    char key[KEY_LEN + 1], hash[65], prefix[KEY_PREFIX_LEN + 1];
    if (key_generate(key, hash, prefix) != 0) return -1;
    num t = I((int64_t)time(NULL));
    const char *p[] = {name, hash, prefix, t.s};
    /* No retry: an INSERT whose answer was lost may have happened. */
    PGresult *r = pg_exec(s, "create", 4, p, PGRES_TUPLES_OK, false);
    int rc = r && PQntuples(r) == 1 ? 0 : -1;
    if (rc == 0) {
        if (id_out) *id_out = col(r, 0, 0);
        memcpy(key_out, key, KEY_LEN + 1);
    }
    PQclear(r);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

static int pg_list(keystore *base, key_info **out, size_t *n)
{
    pg_ks *s = (pg_ks *)base;
    *out = NULL;
    *n = 0;
    PGresult *r = pg_exec(s, "list", 0, NULL, PGRES_TUPLES_OK, true);
    if (!r) return -1;
    int rows = PQntuples(r);
    key_info *v = calloc(rows ? (size_t)rows : 1, sizeof *v);
    if (!v) {
        PQclear(r);
        return -1;
    }
    for (int i = 0; i < rows; i++) {
        key_info *k = &v[i];
        k->id = col(r, i, 0);
        snprintf(k->name, sizeof k->name, "%s", PQgetvalue(r, i, 1));
        snprintf(k->prefix, sizeof k->prefix, "%s", PQgetvalue(r, i, 2));
        k->created_at = col(r, i, 3);
        k->last_used_at = col(r, i, 4);
        k->revoked_at = col(r, i, 5);
        read_limits(r, i, 6, &k->limits);
    }
    PQclear(r);
    *out = v;
    *n = (size_t)rows;
    return 0;
}

static int pg_revoke(keystore *base, int64_t id)
{
    num t = I((int64_t)time(NULL)), k = I(id);
    const char *p[] = {t.s, k.s};
    PGresult *r = pg_exec((pg_ks *)base, "revoke", 2, p, PGRES_COMMAND_OK, true);
    int rc = r ? (changed(r) > 0 ? 0 : 1) : -1;
    PQclear(r);
    return rc;
}

static key_verdict pg_verify(keystore *base, const char hash[65], int64_t *id_out, key_limits *limits_out)
{
    pg_ks *s = (pg_ks *)base;
    const char *p[] = {hash};
    PGresult *r = pg_exec(s, "verify", 1, p, PGRES_TUPLES_OK, true);
    if (!r) return KEY_ERROR;
    key_verdict v = KEY_UNKNOWN;
    int64_t id = 0, last = 0;
    key_limits lim = {0};
    if (PQntuples(r) == 1) {
        const char *stored = PQgetvalue(r, 0, 1);
        /* Found by hash already; the constant-time compare keeps the
         * decision free of timing leaks whatever the index does. */
        bool same = PQgetlength(r, 0, 1) == 64 && CRYPTO_memcmp(stored, hash, 64) == 0;
        id = col(r, 0, 0);
        last = col(r, 0, 3);
        v = same && PQgetvalue(r, 0, 2)[0] == 't' ? KEY_VALID : KEY_UNKNOWN;
        read_limits(r, 0, 4, &lim);
    }
    PQclear(r);
    int64_t t = (int64_t)time(NULL);
    if (v == KEY_VALID && last < t - TOUCH_INTERVAL) {
        /* At most one write per key a minute (several servers may race;
         * the WHERE clause keeps it one); a failure is ignored. */
        num a = I(t), b = I(id), c = I(t - TOUCH_INTERVAL);
        const char *q[] = {a.s, b.s, c.s};
        PQclear(pg_exec(s, "touch", 3, q, PGRES_COMMAND_OK, false));
    }
    *id_out = id;
    *limits_out = lim;
    return v;
}

static int pg_count_active(keystore *base, int64_t *n)
{
    PGresult *r = pg_exec((pg_ks *)base, "count", 0, NULL, PGRES_TUPLES_OK, true);
    if (!r) return -1;
    *n = col(r, 0, 0);
    PQclear(r);
    return 0;
}

static int pg_set_limits(keystore *base, int64_t id, const key_limits *l)
{
    num v[9] = {I(l->rate), I(l->rate_per_s), I(l->burst), I(l->max_concurrent), I(l->quota_images),
                I(l->quota_images_per), I(l->quota_llm_tokens), I(l->quota_llm_per), I(id)};
    const char *p[9];
    for (int i = 0; i < 9; i++) p[i] = v[i].s;
    PGresult *r = pg_exec((pg_ks *)base, "set_limits", 9, p, PGRES_COMMAND_OK, true);
    int rc = r ? (changed(r) > 0 ? 0 : 1) : -1;
    PQclear(r);
    return rc;
}

static int pg_keys_version(keystore *base, int64_t *out)
{
    PGresult *r = pg_exec((pg_ks *)base, "keys_version", 0, NULL, PGRES_TUPLES_OK, true);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        return -1;
    }
    *out = col(r, 0, 0);
    PQclear(r);
    return 0;
}

/* ---- the ledger ---- */

static bool day_ok(const char *d)
{
    for (int i = 0; i < 10; i++)
        if (!(i == 4 || i == 7 ? d[i] == '-' : isdigit((unsigned char)d[i]))) return false;
    return d[10] == '\0';
}

/* Column c of every row as a PostgreSQL array literal, "{a,b,...}". Only
 * numbers and checked days go in, so nothing needs quoting. */
static int array_literal(buf *b, const usage_row *rows, size_t n, int c)
{
    if (buf_addc(b, '{')) return -1;
    for (size_t i = 0; i < n; i++) {
        const usage_row *r = &rows[i];
        int64_t v[] = {r->key_id, 0, r->requests, r->files, r->succeeded, r->failed, 0, r->bytes_in, r->yolo_runs,
                       r->ocr_runs, r->llm_calls, r->llm_prompt_tokens, r->llm_completion_tokens};
        char tmp[40];
        int len = c == 1 ? snprintf(tmp, sizeof tmp, "%s", r->day)
            : c == 6     ? snprintf(tmp, sizeof tmp, "%.17g", r->megapixels)
                         : snprintf(tmp, sizeof tmp, "%lld", (long long)v[c]);
        if ((i && buf_addc(b, ',')) || buf_add(b, tmp, (size_t)len)) return -1;
    }
    return buf_addc(b, '}');
}

/* Rows for one key and day added together: one INSERT may not touch a row
 * twice. *out (the caller frees it) holds the sums. */
static int merge(const usage_row *rows, size_t n, usage_row **out, size_t *m)
{
    usage_row *v = NULL;
    size_t len = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        const usage_row *r = &rows[i];
        if (!day_ok(r->day)) {
            free(v);
            return -1;
        }
        usage_row *t = NULL;
        for (size_t j = 0; j < len && !t; j++)
            if (v[j].key_id == r->key_id && !strcmp(v[j].day, r->day)) t = &v[j];
        if (!t) {
            if (!(t = array_push((void **)&v, &len, &cap, sizeof *t))) {
                free(v);
                return -1;
            }
            *t = *r;
            continue;
        }
        t->requests += r->requests;
        t->files += r->files;
        t->succeeded += r->succeeded;
        t->failed += r->failed;
        t->megapixels += r->megapixels;
        t->bytes_in += r->bytes_in;
        t->yolo_runs += r->yolo_runs;
        t->ocr_runs += r->ocr_runs;
        t->llm_calls += r->llm_calls;
        t->llm_prompt_tokens += r->llm_prompt_tokens;
        t->llm_completion_tokens += r->llm_completion_tokens;
    }
    *out = v;
    *m = len;
    return 0;
}

static int pg_usage_add(keystore *base, const usage_row *rows, size_t n)
{
    if (n == 0) return 0;
    usage_row *m = NULL;
    size_t nm = 0;
    if (merge(rows, n, &m, &nm) != 0) return -1;
    buf cols[13];
    const char *p[13];
    int ok = 1;
    for (int c = 0; c < 13; c++) {
        buf_init(&cols[c], SIZE_MAX);
        if (ok && array_literal(&cols[c], m, nm, c) != 0) ok = 0;
        p[c] = buf_str(&cols[c]);
    }
    free(m);
    /* No retry here: the ledger retries the whole group, and a statement
     * whose answer was lost is not to be sent twice blindly. */
    PGresult *r = ok ? pg_exec((pg_ks *)base, "usage_add", 13, p, PGRES_COMMAND_OK, false) : NULL;
    for (int c = 0; c < 13; c++) buf_free(&cols[c]);
    PQclear(r);
    return r ? 0 : -1;
}

static int pg_usage_get(keystore *base, int64_t id, const char *from, const char *to, usage_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    num k = I(id);
    const char *p[] = {k.s, from, to};
    PGresult *r = pg_exec((pg_ks *)base, "usage_get", 3, p, PGRES_TUPLES_OK, true);
    if (!r) return -1;
    int rows = PQntuples(r);
    usage_row *v = calloc(rows ? (size_t)rows : 1, sizeof *v);
    if (!v) {
        PQclear(r);
        return -1;
    }
    for (int i = 0; i < rows; i++) {
        usage_row *u = &v[i];
        u->key_id = id;
        snprintf(u->day, sizeof u->day, "%s", PQgetvalue(r, i, 0));
        u->requests = col(r, i, 1);
        u->files = col(r, i, 2);
        u->succeeded = col(r, i, 3);
        u->failed = col(r, i, 4);
        u->megapixels = strtod(PQgetvalue(r, i, 5), NULL);
        u->bytes_in = col(r, i, 6);
        u->yolo_runs = col(r, i, 7);
        u->ocr_runs = col(r, i, 8);
        u->llm_calls = col(r, i, 9);
        u->llm_prompt_tokens = col(r, i, 10);
        u->llm_completion_tokens = col(r, i, 11);
    }
    PQclear(r);
    *out = v;
    *n = (size_t)rows;
    return 0;
}

const keystore_ops PG_OPS = {
    .close = pg_close,
    .create = pg_create,
    .list = pg_list,
    .revoke = pg_revoke,
    .verify = pg_verify,
    .count_active = pg_count_active,
    .set_limits = pg_set_limits,
    .usage_add = pg_usage_add,
    .usage_get = pg_usage_get,
    .keys_version = pg_keys_version,
};
