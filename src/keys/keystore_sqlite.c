/* SQLite backend of the key store.
 *
 * One connection, guarded by one mutex: verify is a single indexed lookup, so
 * serialising it costs far less than the inference it guards, and it keeps
 * the shared prepared statements, sqlite3_changes() and
 * sqlite3_last_insert_rowid() coherent without per-thread connections.
 *
 * Nothing is cached: every verify reads the table in a fresh read transaction
 * (statements are reset right after use, which ends it), so a key revoked by
 * another process is refused on the next request. WAL lets those reads run
 * while `sightd keys` writes from another connection. */
#include "keys/keystore.h"
#include "keys/key_text.h"
#include "keys/keystore_sqlite_internal.h"
#include "util/array.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOUCH_INTERVAL 60 /* seconds between last_used_at writes per key */
/* The last_used_at write is best effort and runs under the mutex every
 * verify waits on, so it must not wait long for another writer. */
#define TOUCH_BUSY_TIMEOUT_MS 50
#define SCHEMA_VERSION 5


static int64_t now(void) { return (int64_t)time(NULL); }

/* ---- operations ---- */

static void ks_close(keystore *base)
{
    sqlite_ks *s = (sqlite_ks *)base;
    if (!s) return;
    /* sqlite3_finalize(NULL) is a no-op, so this also undoes a partial open. */
    sqlite3_finalize(s->insert);
    sqlite3_finalize(s->list);
    sqlite3_finalize(s->revoke);
    sqlite3_finalize(s->verify);
    sqlite3_finalize(s->touch);
    sqlite3_finalize(s->count);
    sqlite3_finalize(s->set_limits);
    sqlite3_finalize(s->version);
    usage_finalize(s);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int ks_create(keystore *base, const char *name, char *key_out, size_t key_out_len, int64_t *id_out)
{
    sqlite_ks *s = (sqlite_ks *)base;
    if (key_out && key_out_len) key_out[0] = '\0';
    if (!key_name_ok(name) || !key_out || key_out_len < KEY_LEN + 1) return -1;

    char key[KEY_LEN + 1], hash[65], prefix[KEY_PREFIX_LEN + 1];
    int rc = -1;
    if (key_generate(key, hash, prefix) == 0) {
        pthread_mutex_lock(&s->mu);
        sqlite3_stmt *st = s->insert;
        if (sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
            sqlite3_bind_text(st, 2, hash, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
            sqlite3_bind_text(st, 3, prefix, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
            sqlite3_bind_int64(st, 4, now()) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE) {
            if (id_out) *id_out = sqlite3_last_insert_rowid(s->db);
            rc = 0;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        pthread_mutex_unlock(&s->mu);
    }
    if (rc == 0) memcpy(key_out, key, KEY_LEN + 1);
    OPENSSL_cleanse(key, sizeof key); /* the only copy left is the caller's */
    return rc;
}

static int64_t col_int_or_zero(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, i);
}

/* The eight limit columns, in LIMIT_COLUMNS order, from column first. */
static void read_limits(sqlite3_stmt *st, int first, key_limits *l)
{
    l->rate = sqlite3_column_int64(st, first);
    l->rate_per_s = sqlite3_column_int64(st, first + 1);
    l->burst = sqlite3_column_int64(st, first + 2);
    l->max_concurrent = sqlite3_column_int64(st, first + 3);
    l->quota_images = sqlite3_column_int64(st, first + 4);
    l->quota_images_per = sqlite3_column_int(st, first + 5);
    l->quota_llm_tokens = sqlite3_column_int64(st, first + 6);
    l->quota_llm_per = sqlite3_column_int(st, first + 7);
}

static int ks_list(keystore *base, key_info **out, size_t *n)
{
    sqlite_ks *s = (sqlite_ks *)base;
    key_info *v = NULL;
    size_t len = 0, cap = 0;
    int rc, ok = 1;

    pthread_mutex_lock(&s->mu);
    while ((rc = sqlite3_step(s->list)) == SQLITE_ROW) {
        key_info *k = array_push((void **)&v, &len, &cap, sizeof *k);
        if (!k) {
            ok = 0;
            break;
        }
        const char *name = (const char *)sqlite3_column_text(s->list, 1);
        const char *prefix = (const char *)sqlite3_column_text(s->list, 2);
        k->id = sqlite3_column_int64(s->list, 0);
        snprintf(k->name, sizeof k->name, "%s", name ? name : "");
        snprintf(k->prefix, sizeof k->prefix, "%s", prefix ? prefix : "");
        k->created_at = sqlite3_column_int64(s->list, 3);
        k->last_used_at = col_int_or_zero(s->list, 4);
        k->revoked_at = col_int_or_zero(s->list, 5);
        read_limits(s->list, 6, &k->limits);
    }
    *out = ks_rows_end(s, s->list, rc, &ok, v, &len);
    *n = len;
    return ok ? 0 : -1;
}

void *ks_rows_end(sqlite_ks *s, sqlite3_stmt *st, int step_rc, int *ok, void *rows, size_t *len)
{
    if (*ok && step_rc != SQLITE_DONE) *ok = 0;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->mu);
    if (*ok) return rows;
    free(rows);
    *len = 0;
    return NULL;
}

static int ks_revoke(keystore *base, int64_t id)
{
    sqlite_ks *s = (sqlite_ks *)base;
    int rc = -1;
    pthread_mutex_lock(&s->mu);
    if (sqlite3_bind_int64(s->revoke, 1, now()) == SQLITE_OK &&
        sqlite3_bind_int64(s->revoke, 2, id) == SQLITE_OK && sqlite3_step(s->revoke) == SQLITE_DONE)
        rc = sqlite3_changes(s->db) > 0 ? 0 : 1;
    sqlite3_reset(s->revoke);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static key_verdict ks_verify(keystore *base, const char hash[65], int64_t *id_out, key_limits *limits_out)
{
    sqlite_ks *s = (sqlite_ks *)base;

    key_verdict v = KEY_ERROR;
    int64_t id = 0, t = now();
    key_limits lim = {0};
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = s->verify;
    if (sqlite3_bind_text(st, 1, hash, 64, SQLITE_TRANSIENT) == SQLITE_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *stored = sqlite3_column_text(st, 1);
            /* The lookup found the row by hash already; comparing again in
             * constant time keeps the decision itself free of timing leaks
             * whatever the index does. */
            int same = stored && sqlite3_column_bytes(st, 1) == 64 && CRYPTO_memcmp(stored, hash, 64) == 0;
            id = sqlite3_column_int64(st, 0);
            v = same && sqlite3_column_type(st, 2) == SQLITE_NULL ? KEY_VALID : KEY_UNKNOWN;
            read_limits(st, 3, &lim);
        } else if (rc == SQLITE_DONE) {
            v = KEY_UNKNOWN;
        }
    }
    sqlite3_reset(st); /* ends the read transaction, so the next verify sees fresh data */
    sqlite3_clear_bindings(st);

    if (v == KEY_VALID) {
        /* At most one write per key per TOUCH_INTERVAL (the WHERE clause), and
         * any failure (busy, read-only file) is ignored: the key is valid. */
        sqlite3_busy_timeout(s->db, TOUCH_BUSY_TIMEOUT_MS);
        if (sqlite3_bind_int64(s->touch, 1, t) == SQLITE_OK && sqlite3_bind_int64(s->touch, 2, id) == SQLITE_OK &&
            sqlite3_bind_int64(s->touch, 3, t - TOUCH_INTERVAL) == SQLITE_OK)
            (void)sqlite3_step(s->touch);
        sqlite3_reset(s->touch);
        sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    }
    pthread_mutex_unlock(&s->mu);

    *id_out = id;
    *limits_out = lim;
    return v;
}

/* The one number a one-row statement answers. The reset ends the read, so
 * the next one sees other processes' commits. 0 ok, -1 error. */
static int read_int64(sqlite_ks *s, sqlite3_stmt *st, int64_t *out)
{
    int rc = -1;
    pthread_mutex_lock(&s->mu);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int ks_count_active(keystore *base, int64_t *n)
{
    return read_int64((sqlite_ks *)base, ((sqlite_ks *)base)->count, n);
}

static int ks_set_limits(keystore *base, int64_t id, const key_limits *l)
{
    sqlite_ks *s = (sqlite_ks *)base;
    sqlite3_stmt *st = s->set_limits;
    int64_t v[8] = {l->rate, l->rate_per_s, l->burst, l->max_concurrent, l->quota_images, l->quota_images_per,
                    l->quota_llm_tokens, l->quota_llm_per};
    int rc = -1, ok = 1;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < 8 && ok; i++) ok = sqlite3_bind_int64(st, i + 1, v[i]) == SQLITE_OK;
    if (ok && sqlite3_bind_int64(st, 9, id) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE)
        rc = sqlite3_changes(s->db) > 0 ? 0 : 1;
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int ks_keys_version(keystore *base, int64_t *v)
{
    return read_int64((sqlite_ks *)base, ((sqlite_ks *)base)->version, v);
}

static const keystore_ops SQLITE_OPS = {
    .close = ks_close,
    .create = ks_create,
    .list = ks_list,
    .revoke = ks_revoke,
    .verify = ks_verify,
    .count_active = ks_count_active,
    .set_limits = ks_set_limits,
    .usage_add = ks_usage_add,
    .usage_get = ks_usage_get,
    .keys_version = ks_keys_version,
};

/* ---- open ---- */

/* Creates the parent directory (one level) and an empty 0600 database file
 * if they are missing. Creating the file ourselves instead of changing the
 * umask keeps this safe in a threaded process (umask is process-wide);
 * SQLite gives the -wal and -shm files the database file's mode. */
static int prepare_path(const char *path, char *err, size_t err_len)
{
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        size_t dlen = (size_t)(slash - path);
        char *dir = malloc(dlen + 1);
        if (!dir) {
            err_printf(err, err_len, "out of memory");
            return -1;
        }
        memcpy(dir, path, dlen);
        dir[dlen] = '\0';
        int r = mkdir(dir, 0700);
        int e = errno;
        if (r != 0 && e != EEXIST) err_printf(err, err_len, "cannot create directory %s: %s", dir, strerror(e));
        free(dir);
        if (r != 0 && e != EEXIST) return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        close(fd);
    } else if (errno != EEXIST) {
        err_printf(err, err_len, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int ks_exec(sqlite3 *db, const char *sql, char *err, size_t err_len)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK) return 0;
    err_printf(err, err_len, "%s", sqlite3_errmsg(db));
    return -1;
}

/* Schema creation and future migrations, keyed on PRAGMA user_version. The
 * check and the change share one write transaction, so two processes opening
 * a new file at once cannot both migrate. */
static int migrate(sqlite3 *db, const char *path, char *err, size_t err_len)
{
    if (ks_exec(db, "BEGIN IMMEDIATE", err, err_len)) return -1;

    sqlite3_stmt *st = NULL;
    int version = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    if (version < 0) err_printf(err, err_len, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);

    int rc = -1;
    if (version == 0) {
        rc = ks_exec(db,
                     "CREATE TABLE IF NOT EXISTS api_keys("
                     " id INTEGER PRIMARY KEY,"
                     " name TEXT NOT NULL,"
                     " key_hash TEXT NOT NULL UNIQUE," /* UNIQUE also indexes verify's lookup */
                     " prefix TEXT NOT NULL,"
                     " created_at INTEGER NOT NULL,"
                     " last_used_at INTEGER,"
                     " revoked_at INTEGER);"
                     "PRAGMA user_version = 1;",
                     err, err_len);
        if (rc == 0) version = 1;
    }
    /* 1 -> 2: limits per key (0 = none) and the usage ledger. */
    if (version == 1) {
        rc = ks_exec(db,
                     "ALTER TABLE api_keys ADD COLUMN rate INTEGER NOT NULL DEFAULT 0;"
                     "ALTER TABLE api_keys ADD COLUMN rate_per INTEGER NOT NULL DEFAULT 0;"
                     "ALTER TABLE api_keys ADD COLUMN burst INTEGER NOT NULL DEFAULT 0;"
                     "ALTER TABLE api_keys ADD COLUMN max_concurrent INTEGER NOT NULL DEFAULT 0;"
                     "ALTER TABLE api_keys ADD COLUMN quota_images INTEGER NOT NULL DEFAULT 0;"
                     "ALTER TABLE api_keys ADD COLUMN quota_images_per INTEGER NOT NULL DEFAULT 0;"
                     "ALTER TABLE api_keys ADD COLUMN quota_llm_tokens INTEGER NOT NULL DEFAULT 0;"
                     "ALTER TABLE api_keys ADD COLUMN quota_llm_per INTEGER NOT NULL DEFAULT 0;"
                     "CREATE TABLE IF NOT EXISTS usage("
                     " key_id INTEGER NOT NULL, day TEXT NOT NULL,"
                     " requests INTEGER NOT NULL DEFAULT 0, files INTEGER NOT NULL DEFAULT 0,"
                     " succeeded INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,"
                     " megapixels REAL NOT NULL DEFAULT 0, bytes_in INTEGER NOT NULL DEFAULT 0,"
                     " yolo_runs INTEGER NOT NULL DEFAULT 0, ocr_runs INTEGER NOT NULL DEFAULT 0,"
                     " llm_calls INTEGER NOT NULL DEFAULT 0, llm_prompt_tokens INTEGER NOT NULL DEFAULT 0,"
                     " llm_completion_tokens INTEGER NOT NULL DEFAULT 0,"
                     " PRIMARY KEY(key_id, day)) WITHOUT ROWID;"
                     "PRAGMA user_version = 2;",
                     err, err_len);
        if (rc == 0) version = 2;
    }
    /* 2 -> 3: the keys' version (keystore.h keys_version), bumped by
     * triggers so that every writer, `sightd keys` in another process
     * included, moves it. Only the columns verify reads count: the
     * last_used_at touch does not. */
    if (version == 2) {
        rc = ks_exec(db,
                     "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
                     "INSERT OR IGNORE INTO meta(name, value) VALUES('keys_version', 0);"
                     "CREATE TRIGGER IF NOT EXISTS keys_version_insert AFTER INSERT ON api_keys BEGIN"
                     " UPDATE meta SET value = value + 1 WHERE name = 'keys_version'; END;"
                     "CREATE TRIGGER IF NOT EXISTS keys_version_delete AFTER DELETE ON api_keys BEGIN"
                     " UPDATE meta SET value = value + 1 WHERE name = 'keys_version'; END;"
                     "CREATE TRIGGER IF NOT EXISTS keys_version_update AFTER UPDATE OF key_hash, revoked_at, " LIMIT_COLUMNS " ON api_keys BEGIN"
                     " UPDATE meta SET value = value + 1 WHERE name = 'keys_version'; END;"
                     "PRAGMA user_version = 3;",
                     err, err_len);
        if (rc == 0) version = 3;
    }
    /* 3 -> 4: jobs (jobs/job_store.h), their items, events and webhook
     * messages. IF NOT EXISTS: builds before this version created the same
     * tables themselves, unversioned. */
    if (version == 3) {
        rc = ks_exec(db,
                     "CREATE TABLE IF NOT EXISTS jobs("
                     " id TEXT PRIMARY KEY, key_id INTEGER NOT NULL, status TEXT NOT NULL,"
                     " total INTEGER NOT NULL, succeeded INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,"
                     " query TEXT, params TEXT, created_at INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
                     " finished_at INTEGER, next_seq INTEGER NOT NULL DEFAULT 1,"
                     " idem_key TEXT, body_hash TEXT, webhook_url TEXT, webhook_secret TEXT);"
                     "CREATE TABLE IF NOT EXISTS job_webhooks("
                     " id TEXT PRIMARY KEY, job_id TEXT NOT NULL, url TEXT NOT NULL, secret TEXT NOT NULL,"
                     " body TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,"
                     " next_at INTEGER NOT NULL, created_at INTEGER NOT NULL);"
                     "CREATE INDEX IF NOT EXISTS job_webhooks_due ON job_webhooks(state, next_at);"
                     "CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs(key_id, created_ms, id);"
                     "CREATE INDEX IF NOT EXISTS jobs_by_idem ON jobs(key_id, idem_key);"
                     "CREATE TABLE IF NOT EXISTS job_items("
                     " job_id TEXT NOT NULL, idx INTEGER NOT NULL, url TEXT NOT NULL, model TEXT,"
                     " is_yolo INTEGER NOT NULL, is_ocr INTEGER NOT NULL, is_llm INTEGER NOT NULL,"
                     " state TEXT NOT NULL DEFAULT 'queued'," /* queued, running, done, error, cancelled */
                     " attempt INTEGER NOT NULL DEFAULT 0, owner TEXT, lease_until INTEGER NOT NULL DEFAULT 0,"
                     " result TEXT, PRIMARY KEY(job_id, idx)) WITHOUT ROWID;"
                     "CREATE INDEX IF NOT EXISTS job_items_claim ON job_items(state, lease_until);"
                     "CREATE TABLE IF NOT EXISTS job_events("
                     " job_id TEXT NOT NULL, seq INTEGER NOT NULL, line TEXT NOT NULL,"
                     " PRIMARY KEY(job_id, seq)) WITHOUT ROWID;"
                     "PRAGMA user_version = 4;",
                     err, err_len);
        if (rc == 0) version = 4;
    }
    /* 4 -> 5: a job item's per-file options (slice, video keys), as JSON text. */
    if (version == 4) {
        rc = ks_exec(db,
                     "ALTER TABLE job_items ADD COLUMN opts TEXT;"
                     "PRAGMA user_version = 5;",
                     err, err_len);
    } else if (version == SCHEMA_VERSION) {
        rc = 0;
    } else if (version > SCHEMA_VERSION) {
        err_printf(err, err_len, "%s: schema version %d is newer than this sightd supports (%d)", path, version,
                   SCHEMA_VERSION);
    }
    if (rc == 0) rc = ks_exec(db, "COMMIT", err, err_len);
    if (rc != 0) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int ks_prepare(sqlite_ks *s, sqlite3_stmt **st, const char *sql, char *err, size_t err_len)
{
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK) return 0;
    err_printf(err, err_len, "%s", sqlite3_errmsg(s->db));
    return -1;
}

keystore *keystore_open_sqlite(const char *path, char *err, size_t err_len)
{
    err_printf(err, err_len, "%s", "");
    if (!path || !*path) {
        err_printf(err, err_len, "empty key database path");
        return NULL;
    }
    if (!sqlite3_threadsafe()) {
        err_printf(err, err_len, "SQLite was built without thread support");
        return NULL;
    }
    sqlite_ks *s = calloc(1, sizeof *s);
    if (!s) {
        err_printf(err, err_len, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        err_printf(err, err_len, "cannot create mutex");
        free(s);
        return NULL;
    }
    s->base.ops = &SQLITE_OPS;

    /* ":memory:" is SQLite's in-memory database, not a file to create. */
    if (strcmp(path, ":memory:") != 0 && prepare_path(path, err, err_len) != 0) goto fail;

    /* A handle comes back even on failure; ks_close releases it. */
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE, NULL) !=
        SQLITE_OK) {
        err_printf(err, err_len, "%s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    /* Before anything else, so that the pragmas below also wait for a
     * concurrent `sightd keys` instead of failing. */
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    /* WAL with synchronous=NORMAL: a commit is in the WAL file (the OS's
     * cache) when it returns, so it survives the process being killed; only
     * a power loss can take the last commits. That keeps the ledger's group
     * commit at no fsync per batch. */
    if (ks_exec(s->db, "PRAGMA journal_mode = WAL", err, err_len) ||
        ks_exec(s->db, "PRAGMA synchronous = NORMAL", err, err_len) || migrate(s->db, path, err, err_len)) goto fail;

    if (ks_prepare(s, &s->insert,
                   "INSERT INTO api_keys(name, key_hash, prefix, created_at) VALUES(?1, ?2, ?3, ?4)", err, err_len) ||
        ks_prepare(s, &s->list,
                   "SELECT id, name, prefix, created_at, last_used_at, revoked_at, " LIMIT_COLUMNS
                   " FROM api_keys ORDER BY id",
                   err, err_len) ||
        ks_prepare(s, &s->revoke, "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL", err,
                   err_len) ||
        ks_prepare(s, &s->verify, "SELECT id, key_hash, revoked_at, " LIMIT_COLUMNS " FROM api_keys WHERE key_hash = ?1",
                   err, err_len) ||
        ks_prepare(s, &s->set_limits,
                   "UPDATE api_keys SET rate = ?1, rate_per = ?2, burst = ?3, max_concurrent = ?4, quota_images = ?5,"
                   " quota_images_per = ?6, quota_llm_tokens = ?7, quota_llm_per = ?8 WHERE id = ?9",
                   err, err_len) ||
        usage_prepare(s, err, err_len) ||
        ks_prepare(s, &s->touch,
                   "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?3)",
                   err, err_len) ||
        ks_prepare(s, &s->count, "SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL", err, err_len) ||
        ks_prepare(s, &s->version, "SELECT value FROM meta WHERE name = 'keys_version'", err, err_len))
        goto fail;
    return &s->base;

fail:
    ks_close(&s->base);
    return NULL;
}
