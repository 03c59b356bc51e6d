/* Key store: round trip, key format, what is stored, refusals, revocation seen
 * across connections, last_used_at, names, paths, errors and concurrency. */
#include "check.h"
#include "keys/keystore.h"
#include "keys/sha256_hex.h"

#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];

static void path_in_tmp(char *out, size_t len, const char *name) { snprintf(out, len, "%s/%s", tmpdir, name); }

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static keystore *open_ok(const char *path)
{
    char err[256];
    keystore *ks = keystore_open_sqlite(path, err, sizeof err);
    if (!ks) fprintf(stderr, "open %s: %s\n", path, err);
    return ks;
}

/* Reads a whole file; returns NULL (and *n 0) if it does not exist. */
static unsigned char *slurp(const char *path, size_t *n)
{
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    *n = len;
    return buf;
}

/* Whether needle occurs in any of the database's files (db, -wal, -shm). */
static int db_files_contain(const char *db, const char *needle)
{
    static const char *SUFFIX[] = {"", "-wal", "-shm"};
    int found = 0;
    for (size_t i = 0; i < 3; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s%s", db, SUFFIX[i]);
        size_t n;
        unsigned char *b = slurp(p, &n);
        if (b && memmem(b, n, needle, strlen(needle))) found = 1;
        free(b);
    }
    return found;
}

/* A raw connection, as another process would have. */
static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = raw_open(path);
    int rc = db ? sqlite3_exec(db, sql, NULL, NULL, NULL) : SQLITE_ERROR;
    sqlite3_close(db);
    return rc;
}

/* Text of the first column of the first row (id bound to ?1 if the query
 * has one), or "". */
static void raw_query_text(const char *path, const char *sql, int64_t id, char *out, size_t len)
{
    out[0] = '\0';
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st = NULL;
    if (db && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        (sqlite3_bind_parameter_count(st) == 0 || sqlite3_bind_int64(st, 1, id) == SQLITE_OK) &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static int64_t raw_query_int(const char *path, const char *sql, int64_t id)
{
    char buf[64];
    raw_query_text(path, sql, id, buf, sizeof buf);
    return buf[0] ? strtoll(buf, NULL, 10) : -1;
}

static size_t list_count(keystore *ks)
{
    key_info *v = NULL;
    size_t n = 0;
    if (keystore_list(ks, &v, &n) != 0) n = (size_t)-1;
    free(v);
    return n;
}

static void test_sha256(void)
{
    char h[65];
    sha256_hex("abc", 3, h);
    CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_hex("", 0, h);
    CHECK_STR(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(m, strlen(m), h);
    CHECK_STR(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static int in_alphabet(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static void test_round_trip(void)
{
    char db[512];
    path_in_tmp(db, sizeof db, "rt.db");
    keystore *ks = open_ok(db);
    CHECK(ks != NULL);
    if (!ks) return;

    int64_t n = -1;
    CHECK_EQ_INT(keystore_count_active(ks, &n), 0);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(list_count(ks), 0);

    char k1[KEYSTORE_KEY_MAX + 1], k2[KEYSTORE_KEY_MAX + 1];
    int64_t id1 = 0, id2 = 0;
    int64_t before = (int64_t)time(NULL);
    CHECK_EQ_INT(keystore_create(ks, "laptop", k1, sizeof k1, &id1), 0);
    CHECK_EQ_INT(keystore_create(ks, "ci runner", k2, sizeof k2, &id2), 0);
    CHECK(id1 > 0 && id2 > id1);
    CHECK(strcmp(k1, k2) != 0);

    /* Format: "sk_" + 43 URL-safe base64 characters. */
    CHECK_EQ_INT(strlen(k1), 46);
    CHECK(strncmp(k1, "sk_", 3) == 0);
    int alpha_ok = 1;
    for (size_t i = 3; i < strlen(k1); i++) alpha_ok &= in_alphabet(k1[i]);
    CHECK(alpha_ok);

    key_info *v = NULL;
    size_t cnt = 0;
    CHECK_EQ_INT(keystore_list(ks, &v, &cnt), 0);
    CHECK_EQ_INT(cnt, 2);
    if (cnt == 2) {
        CHECK_EQ_INT(v[0].id, id1);
        CHECK_STR(v[0].name, "laptop");
        CHECK_EQ_INT(strlen(v[0].prefix), 8);
        CHECK(strncmp(v[0].prefix, k1, 8) == 0);
        CHECK(v[0].created_at >= before && v[0].created_at <= (int64_t)time(NULL));
        CHECK_EQ_INT(v[0].last_used_at, 0);
        CHECK_EQ_INT(v[0].revoked_at, 0);
        CHECK_EQ_INT(v[1].id, id2);
        CHECK_STR(v[1].name, "ci runner");
        CHECK(strncmp(v[1].prefix, k2, 8) == 0);
    }
    free(v);

    int64_t vid = 0;
    CHECK_EQ_INT(keystore_verify(ks, k1, &vid), KEY_VALID);
    CHECK_EQ_INT(vid, id1);
    CHECK_EQ_INT(keystore_verify(ks, k2, &vid), KEY_VALID);
    CHECK_EQ_INT(vid, id2);
    CHECK_EQ_INT(keystore_verify(ks, k2, NULL), KEY_VALID);
    CHECK_EQ_INT(keystore_count_active(ks, &n), 0);
    CHECK_EQ_INT(n, 2);

    /* Revoke. */
    CHECK_EQ_INT(keystore_revoke(ks, id1), 0);
    CHECK_EQ_INT(keystore_revoke(ks, id1), 1);    /* already revoked */
    CHECK_EQ_INT(keystore_revoke(ks, 999999), 1); /* no such key */
    vid = -7;
    CHECK_EQ_INT(keystore_verify(ks, k1, &vid), KEY_UNKNOWN);
    CHECK_EQ_INT(vid, -7); /* untouched unless valid */
    CHECK_EQ_INT(keystore_verify(ks, k2, NULL), KEY_VALID);
    CHECK_EQ_INT(keystore_count_active(ks, &n), 0);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(keystore_list(ks, &v, &cnt), 0);
    CHECK_EQ_INT(cnt, 2);
    if (cnt == 2) {
        CHECK(v[0].revoked_at > 0);
        CHECK_EQ_INT(v[1].revoked_at, 0);
    }
    free(v);

    /* Short output buffer: refused, no row. */
    char small[46];
    CHECK_EQ_INT(keystore_create(ks, "short", small, sizeof small, NULL), -1);
    CHECK_EQ_INT(list_count(ks), 2);
    keystore_close(ks);

    /* Survives reopening. */
    ks = open_ok(db);
    CHECK(ks != NULL);
    if (!ks) return;
    CHECK_EQ_INT(keystore_verify(ks, k2, NULL), KEY_VALID);
    CHECK_EQ_INT(keystore_verify(ks, k1, NULL), KEY_UNKNOWN);
    keystore_close(ks);
}

/* Over many keys every one of the 64 characters shows up, and the last
 * character carries only 4 bits (32 bytes = 256 bits = 42*6 + 4). */
static void test_key_alphabet(void)
{
    char db[512];
    path_in_tmp(db, sizeof db, "alpha.db");
    keystore *ks = open_ok(db);
    CHECK(ks != NULL);
    if (!ks) return;
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int seen[64] = {0}, bad = 0;
    for (int i = 0; i < 60; i++) {
        char k[KEYSTORE_KEY_MAX + 1];
        if (keystore_create(ks, "a", k, sizeof k, NULL) != 0 || strlen(k) != 46) {
            bad++;
            continue;
        }
        for (int j = 3; j < 46; j++) {
            const char *p = strchr(A, k[j]);
            if (!p || !k[j]) {
                bad++;
                continue;
            }
            seen[p - A] = 1;
            if (j == 45 && (p - A) % 4 != 0) bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    int all = 1;
    for (int i = 0; i < 64; i++) all &= seen[i];
    CHECK(all);
    keystore_close(ks);
}

static void test_storage(void)
{
    char db[512];
    path_in_tmp(db, sizeof db, "store.db");
    keystore *ks = open_ok(db);
    CHECK(ks != NULL);
    if (!ks) return;
    char k[KEYSTORE_KEY_MAX + 1], h[65], stored[128], prefix[32];
    int64_t id = 0;
    CHECK_EQ_INT(keystore_create(ks, "stored", k, sizeof k, &id), 0);
    sha256_hex(k, strlen(k), h);
    raw_query_text(db, "SELECT key_hash FROM api_keys WHERE id = ?", id, stored, sizeof stored);
    CHECK_STR(stored, h);
    raw_query_text(db, "SELECT prefix FROM api_keys WHERE id = ?", id, prefix, sizeof prefix);
    CHECK(strlen(prefix) == 8 && strncmp(prefix, k, 8) == 0);
    CHECK_EQ_INT(raw_query_int(db, "PRAGMA user_version", 0), 5);
    char mode[32];
    raw_query_text(db, "PRAGMA journal_mode", 0, mode, sizeof mode);
    CHECK_STR(mode, "wal");

    /* Neither the key nor its random part is anywhere in the files, while
     * open (db + WAL) and after close (checkpointed into the db). */
    CHECK(!db_files_contain(db, k));
    CHECK(!db_files_contain(db, k + 3));
    CHECK(!db_files_contain(db, k + 8));
    keystore_close(ks);
    CHECK(!db_files_contain(db, k));
    CHECK(!db_files_contain(db, k + 8));
    /* The hash is there, which shows the scan reads the right bytes. */
    CHECK(db_files_contain(db, h));

    struct stat st;
    CHECK(stat(db, &st) == 0 && (st.st_mode & 0777) == 0600);
}

static void test_refusals(void)
{
    char db[512];
    path_in_tmp(db, sizeof db, "refuse.db");
    keystore *ks = open_ok(db);
    CHECK(ks != NULL);
    if (!ks) return;
    char k[KEYSTORE_KEY_MAX + 1];
    CHECK_EQ_INT(keystore_create(ks, "x", k, sizeof k, NULL), 0);

    CHECK_EQ_INT(keystore_verify(ks, NULL, NULL), KEY_UNKNOWN);
    CHECK_EQ_INT(keystore_verify(ks, "", NULL), KEY_UNKNOWN);
    CHECK_EQ_INT(keystore_verify(ks, "sk_", NULL), KEY_UNKNOWN);
    CHECK_EQ_INT(keystore_verify(ks, k + 3, NULL), KEY_UNKNOWN); /* without "sk_" */

    char t[2 * KEYSTORE_KEY_MAX];
    snprintf(t, sizeof t, "%s", k);
    t[5] = t[5] == 'A' ? 'B' : 'A'; /* one character changed */
    CHECK_EQ_INT(keystore_verify(ks, t, NULL), KEY_UNKNOWN);
    snprintf(t, sizeof t, "%s", k);
    t[45] = '\0'; /* truncated */
    CHECK_EQ_INT(keystore_verify(ks, t, NULL), KEY_UNKNOWN);
    snprintf(t, sizeof t, "%sA", k); /* extended */
    CHECK_EQ_INT(keystore_verify(ks, t, NULL), KEY_UNKNOWN);
    snprintf(t, sizeof t, "SK_%s", k + 3); /* wrong case */
    CHECK_EQ_INT(keystore_verify(ks, t, NULL), KEY_UNKNOWN);
    snprintf(t, sizeof t, " %s", k); /* not trimmed for the caller */
    CHECK_EQ_INT(keystore_verify(ks, t, NULL), KEY_UNKNOWN);

    /* Too long: the valid key padded to KEYSTORE_KEY_MAX + 1 characters. */
    memset(t, 'A', sizeof t);
    memcpy(t, k, strlen(k));
    t[KEYSTORE_KEY_MAX + 1] = '\0';
    CHECK_EQ_INT(keystore_verify(ks, t, NULL), KEY_UNKNOWN);
    t[KEYSTORE_KEY_MAX] = '\0'; /* exactly the maximum: looked up, still unknown */
    CHECK_EQ_INT(keystore_verify(ks, t, NULL), KEY_UNKNOWN);

    CHECK_EQ_INT(keystore_verify(ks, k, NULL), KEY_VALID);
    keystore_close(ks);
}

static void test_names(void)
{
    char db[512];
    path_in_tmp(db, sizeof db, "names.db");
    keystore *ks = open_ok(db);
    CHECK(ks != NULL);
    if (!ks) return;
    char k[KEYSTORE_KEY_MAX + 1];
    char long_name[102];
    memset(long_name, 'n', 101);
    long_name[101] = '\0';

    const char *bad[] = {"", "a\nb", "tab\there", "bell\a", "del\x7f", "esc\x1b[31m", "\xff\xfe",
                         "trunc\xc3", "overlong\xc0\xaf", "c1\xc2\x85", "surrogate\xed\xa0\x80", long_name};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        k[0] = 'x';
        int rc = keystore_create(ks, bad[i], k, sizeof k, NULL);
        if (rc != -1) fprintf(stderr, "name #%zu accepted\n", i);
        CHECK_EQ_INT(rc, -1);
        CHECK_EQ_INT(k[0], '\0');
    }
    CHECK_EQ_INT(keystore_create(ks, NULL, k, sizeof k, NULL), -1);
    CHECK_EQ_INT(list_count(ks), 0);

    long_name[100] = '\0'; /* exactly 100 bytes */
    CHECK_EQ_INT(keystore_create(ks, long_name, k, sizeof k, NULL), 0);
    CHECK_EQ_INT(keystore_create(ks, "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x94\x91", k, sizeof k, NULL), 0);
    CHECK_EQ_INT(keystore_create(ks, "Quote \"and\" 'sym' <>&;", k, sizeof k, NULL), 0);
    key_info *v = NULL;
    size_t n = 0;
    CHECK_EQ_INT(keystore_list(ks, &v, &n), 0);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK_STR(v[0].name, long_name);
        CHECK_STR(v[1].name, "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x94\x91");
    }
    free(v);
    keystore_close(ks);
}

/* `sightd keys revoke` runs as another process with its own connection: the
 * running server must refuse the key on the very next verify. */
static void test_cross_connection(void)
{
    char db[512];
    path_in_tmp(db, sizeof db, "cross.db");
    keystore *server = open_ok(db);
    keystore *cli = open_ok(db);
    CHECK(server && cli);
    if (!server || !cli) {
        keystore_close(server);
        keystore_close(cli);
        return;
    }
    char k[KEYSTORE_KEY_MAX + 1];
    int64_t id = 0;
    CHECK_EQ_INT(keystore_create(cli, "made by cli", k, sizeof k, &id), 0);
    CHECK_EQ_INT(keystore_verify(server, k, NULL), KEY_VALID); /* creation seen at once too */
    CHECK_EQ_INT(keystore_verify(server, k, NULL), KEY_VALID);
    CHECK_EQ_INT(keystore_revoke(cli, id), 0);
    CHECK_EQ_INT(keystore_verify(server, k, NULL), KEY_UNKNOWN);
    int64_t n = -1;
    CHECK_EQ_INT(keystore_count_active(server, &n), 0);
    CHECK_EQ_INT(n, 0);

    /* And a plain sqlite3 connection, as any other tool would use. */
    char k2[KEYSTORE_KEY_MAX + 1];
    CHECK_EQ_INT(keystore_create(server, "second", k2, sizeof k2, &id), 0);
    CHECK_EQ_INT(keystore_verify(server, k2, NULL), KEY_VALID);
    CHECK_EQ_INT(raw_exec(db, "UPDATE api_keys SET revoked_at = 1 WHERE revoked_at IS NULL"), SQLITE_OK);
    CHECK_EQ_INT(keystore_verify(server, k2, NULL), KEY_UNKNOWN);
    keystore_close(cli);
    keystore_close(server);
}

/* The keys' version moves for every change a cached verdict depends on,
 * made by any connection, and for nothing else. */
static void test_keys_version(void)
{
    char db[512];
    path_in_tmp(db, sizeof db, "version.db");
    keystore *server = open_ok(db);
    keystore *cli = open_ok(db);
    CHECK(server && cli);
    if (!server || !cli) {
        keystore_close(server);
        keystore_close(cli);
        return;
    }
    int64_t v0 = -1, v = -1;
    CHECK_EQ_INT(keystore_keys_version(server, &v0), 0);
    char k[KEYSTORE_KEY_MAX + 1];
    int64_t id = 0;
    CHECK_EQ_INT(keystore_create(cli, "v", k, sizeof k, &id), 0);
    CHECK_EQ_INT(keystore_keys_version(server, &v), 0);
    CHECK(v != v0);
    /* Verify (which may write last_used_at) and the ledger leave it. */
    int64_t before = v;
    CHECK_EQ_INT(keystore_verify(server, k, NULL), KEY_VALID);
    usage_row r = {.key_id = id, .day = "2026-01-02", .requests = 1};
    CHECK_EQ_INT(keystore_usage_add(server, &r, 1), 0);
    CHECK_EQ_INT(raw_exec(db, "UPDATE api_keys SET last_used_at = 5"), SQLITE_OK);
    CHECK_EQ_INT(keystore_keys_version(server, &v), 0);
    CHECK(v == before);
    key_limits l = {.rate = 3, .rate_per_s = 60};
    CHECK_EQ_INT(keystore_set_limits(cli, id, &l), 0);
    CHECK_EQ_INT(keystore_keys_version(server, &v), 0);
    CHECK(v != before);
    before = v;
    CHECK_EQ_INT(keystore_revoke(cli, id), 0);
    CHECK_EQ_INT(keystore_keys_version(server, &v), 0);
    CHECK(v != before);
    before = v;
    /* A plain sqlite3 connection's change counts too (the triggers). */
    CHECK_EQ_INT(raw_exec(db, "DELETE FROM api_keys"), SQLITE_OK);
    CHECK_EQ_INT(keystore_keys_version(server, &v), 0);
    CHECK(v != before);
    keystore_close(cli);
    keystore_close(server);
}

static void test_last_used(void)
{
    char db[512];
    path_in_tmp(db, sizeof db, "used.db");
    keystore *ks = open_ok(db);
    CHECK(ks != NULL);
    if (!ks) return;
    char k[KEYSTORE_KEY_MAX + 1];
    int64_t id = 0;
    CHECK_EQ_INT(keystore_create(ks, "u", k, sizeof k, &id), 0);
    CHECK_EQ_INT(raw_query_int(db, "SELECT COALESCE(last_used_at, 0) FROM api_keys WHERE id = ?", id), 0);

    int64_t t0 = (int64_t)time(NULL);
    CHECK_EQ_INT(keystore_verify(ks, k, NULL), KEY_VALID);
    key_info *v = NULL;
    size_t n = 0;
    CHECK_EQ_INT(keystore_list(ks, &v, &n), 0);
    CHECK(n == 1 && v[0].last_used_at >= t0 && v[0].last_used_at <= (int64_t)time(NULL));
    free(v);

    /* Used 30 s ago: not rewritten. Used 120 s ago: rewritten. */
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE api_keys SET last_used_at = %lld", (long long)(t0 - 30));
    CHECK_EQ_INT(raw_exec(db, sql), SQLITE_OK);
    CHECK_EQ_INT(keystore_verify(ks, k, NULL), KEY_VALID);
    CHECK_EQ_INT(raw_query_int(db, "SELECT last_used_at FROM api_keys WHERE id = ?", id), t0 - 30);
    snprintf(sql, sizeof sql, "UPDATE api_keys SET last_used_at = %lld", (long long)(t0 - 120));
    CHECK_EQ_INT(raw_exec(db, sql), SQLITE_OK);
    CHECK_EQ_INT(keystore_verify(ks, k, NULL), KEY_VALID);
    CHECK(raw_query_int(db, "SELECT last_used_at FROM api_keys WHERE id = ?", id) >= t0);

    /* A failing update (another connection holds the write lock) does not
     * fail the verify. */
    snprintf(sql, sizeof sql, "UPDATE api_keys SET last_used_at = %lld", (long long)(t0 - 120));
    CHECK_EQ_INT(raw_exec(db, sql), SQLITE_OK);
    sqlite3 *locker = raw_open(db);
    CHECK(locker != NULL);
    CHECK_EQ_INT(sqlite3_exec(locker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ_INT(keystore_verify(ks, k, NULL), KEY_VALID);
    sqlite3_exec(locker, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(locker);
    CHECK_EQ_INT(raw_query_int(db, "SELECT last_used_at FROM api_keys WHERE id = ?", id), t0 - 120);
    CHECK_EQ_INT(keystore_verify(ks, k, NULL), KEY_VALID); /* and the next verify catches up */
    CHECK(raw_query_int(db, "SELECT last_used_at FROM api_keys WHERE id = ?", id) >= t0);
    keystore_close(ks);
}

/* A version 3 file gets the jobs tables (version 4) and the items' options
 * column (version 5); one from a build that made them unversioned, with rows
 * in them, keeps its rows. */
static void test_jobs_migration(void)
{
    char db[512];
    path_in_tmp(db, sizeof db, "upgrade.db");
    keystore *ks = open_ok(db);
    CHECK(ks != NULL);
    keystore_close(ks);
    CHECK_EQ_INT(raw_exec(db, "DROP TABLE job_events; DROP TABLE job_items; DROP TABLE job_webhooks;"
                              " PRAGMA user_version = 3;"),
                 SQLITE_OK);
    CHECK_EQ_INT(raw_exec(db, "INSERT INTO jobs(id, key_id, status, total, created_at, created_ms)"
                              " VALUES('job_old', 1, 'completed', 0, 1, 1000)"),
                 SQLITE_OK);
    CHECK_EQ_INT(raw_query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'job_items'", 0), 0);
    ks = open_ok(db);
    CHECK(ks != NULL);
    keystore_close(ks);
    CHECK_EQ_INT(raw_query_int(db, "PRAGMA user_version", 0), 5);
    CHECK_EQ_INT(raw_query_int(db, "SELECT count(*) FROM pragma_table_info('job_items') WHERE name = 'opts'", 0), 1);
    CHECK_EQ_INT(raw_query_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                   " ('job_items', 'job_events', 'job_webhooks', 'job_items_claim')",
                               0),
                 4);
    CHECK_EQ_INT(raw_query_int(db, "SELECT count(*) FROM jobs WHERE id = 'job_old'", 0), 1);

    /* A version 4 file (jobs, no options) gets the column and keeps its items. */
    CHECK_EQ_INT(raw_exec(db, "ALTER TABLE job_items DROP COLUMN opts; PRAGMA user_version = 4;"
                              " INSERT INTO job_items(job_id, idx, url, is_yolo, is_ocr, is_llm)"
                              " VALUES('job_old', 0, 'http://x/a.png', 1, 0, 0)"),
                 SQLITE_OK);
    ks = open_ok(db);
    CHECK(ks != NULL);
    keystore_close(ks);
    CHECK_EQ_INT(raw_query_int(db, "PRAGMA user_version", 0), 5);
    CHECK_EQ_INT(raw_query_int(db, "SELECT count(*) FROM job_items WHERE job_id = 'job_old' AND opts IS NULL", 0), 1);
}

static void test_paths(void)
{
    char db[512], dir[512], err[256];
    struct stat st;

    /* Missing parent directory: created 0700, file 0600. */
    path_in_tmp(dir, sizeof dir, "newdir");
    path_in_tmp(db, sizeof db, "newdir/keys.db");
    keystore *ks = open_ok(db);
    CHECK(ks != NULL);
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
    CHECK(stat(db, &st) == 0 && (st.st_mode & 0777) == 0600);
    char k[KEYSTORE_KEY_MAX + 1];
    CHECK(ks && keystore_create(ks, "w", k, sizeof k, NULL) == 0);
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", db);
    CHECK(stat(wal, &st) == 0 && (st.st_mode & 0777) == 0600); /* SQLite copies the db's mode */
    keystore_close(ks);

    /* Two missing levels: an error, not a crash. */
    path_in_tmp(db, sizeof db, "no/such/keys.db");
    err[0] = '\0';
    CHECK(keystore_open_sqlite(db, err, sizeof err) == NULL);
    CHECK(err[0] != '\0');

    /* Not a database. */
    path_in_tmp(db, sizeof db, "garbage.db");
    FILE *f = fopen(db, "wb");
    if (f) {
        for (int i = 0; i < 4096; i++) fputc('x', f);
        fclose(f);
    }
    err[0] = '\0';
    CHECK(keystore_open_sqlite(db, err, sizeof err) == NULL);
    CHECK(err[0] != '\0');

    /* A schema from a newer build is refused rather than misread. */
    path_in_tmp(db, sizeof db, "future.db");
    ks = open_ok(db);
    CHECK(ks != NULL);
    keystore_close(ks);
    CHECK_EQ_INT(raw_exec(db, "PRAGMA user_version = 6"), SQLITE_OK);
    err[0] = '\0';
    CHECK(keystore_open_sqlite(db, err, sizeof err) == NULL);
    CHECK(strstr(err, "newer") != NULL);

    CHECK(keystore_open_sqlite("", err, sizeof err) == NULL);
    CHECK(keystore_open_sqlite("", NULL, 0) == NULL); /* no err buffer is fine */
}

/* The store breaking under a running server gives KEY_ERROR / -1 on every
 * operation, without leaks (valgrind sees these paths). */
static void test_db_errors(void)
{
    char db[512];
    path_in_tmp(db, sizeof db, "broken.db");
    keystore *ks = open_ok(db);
    CHECK(ks != NULL);
    if (!ks) return;
    char k[KEYSTORE_KEY_MAX + 1];
    int64_t id = 0, n = 0;
    CHECK_EQ_INT(keystore_create(ks, "b", k, sizeof k, &id), 0);
    CHECK_EQ_INT(raw_exec(db, "DROP TABLE api_keys"), SQLITE_OK);
    CHECK_EQ_INT(keystore_verify(ks, k, NULL), KEY_ERROR);
    CHECK_EQ_INT(keystore_verify(ks, "sk_nothing", NULL), KEY_ERROR);
    CHECK_EQ_INT(keystore_verify(ks, "garbage", NULL), KEY_UNKNOWN); /* never reaches the db */
    key_info *v = (key_info *)1;
    size_t cnt = 5;
    CHECK_EQ_INT(keystore_list(ks, &v, &cnt), -1);
    CHECK(v == NULL);
    CHECK_EQ_INT(cnt, 0);
    CHECK_EQ_INT(keystore_count_active(ks, &n), -1);
    CHECK_EQ_INT(keystore_revoke(ks, id), -1);
    CHECK_EQ_INT(keystore_create(ks, "c", k, sizeof k, NULL), -1);
    CHECK_EQ_INT(k[0], '\0');
    keystore_close(ks);
}

/* ---- concurrency ---- */

#define VERIFY_THREADS 8
#define VERIFIES_EACH 2000

typedef struct {
    keystore *ks;
    const char *key;
    int64_t id;
    int bad; /* verifies that did not return KEY_VALID with the right id */
} verifier_arg;

typedef struct {
    keystore *ks, *other;
    atomic_int *stop;
    int rounds, bad;
} churn_arg;

static void *verifier(void *p)
{
    verifier_arg *a = p;
    for (int i = 0; i < VERIFIES_EACH; i++) {
        int64_t id = 0;
        if (keystore_verify(a->ks, a->key, &id) != KEY_VALID || id != a->id) a->bad++;
    }
    return NULL;
}

/* Creates keys on the shared handle and revokes them through a second
 * connection, so verifies race both the mutex and SQLite's file locking. */
static void *churn(void *p)
{
    churn_arg *a = p;
    while (!atomic_load(a->stop) || a->rounds < 5) {
        char k[KEYSTORE_KEY_MAX + 1];
        int64_t id = 0;
        if (keystore_create(a->ks, "churn", k, sizeof k, &id) != 0) {
            a->bad++;
            continue;
        }
        if (keystore_verify(a->ks, k, NULL) != KEY_VALID) a->bad++;
        if (keystore_revoke(a->other, id) != 0) a->bad++;
        if (keystore_verify(a->ks, k, NULL) != KEY_UNKNOWN) a->bad++;
        a->rounds++;
    }
    return NULL;
}

static void test_concurrency(void)
{
    char db[512];
    path_in_tmp(db, sizeof db, "conc.db");
    keystore *ks = open_ok(db), *other = open_ok(db);
    CHECK(ks && other);
    if (!ks || !other) {
        keystore_close(ks);
        keystore_close(other);
        return;
    }
    char k[KEYSTORE_KEY_MAX + 1];
    int64_t id = 0;
    CHECK_EQ_INT(keystore_create(ks, "shared", k, sizeof k, &id), 0);

    atomic_int stop = 0;
    churn_arg ca = {ks, other, &stop, 0, 0};
    verifier_arg va[VERIFY_THREADS];
    pthread_t ct, vt[VERIFY_THREADS];
    int started = 0;
    CHECK_EQ_INT(pthread_create(&ct, NULL, churn, &ca), 0);
    for (int i = 0; i < VERIFY_THREADS; i++) {
        va[i] = (verifier_arg){ks, k, id, 0};
        if (pthread_create(&vt[i], NULL, verifier, &va[i]) == 0) started++;
    }
    CHECK_EQ_INT(started, VERIFY_THREADS);
    int bad = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(vt[i], NULL);
        bad += va[i].bad;
    }
    atomic_store(&stop, 1);
    pthread_join(ct, NULL);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(ca.bad, 0);
    CHECK(ca.rounds >= 5);

    int64_t n = -1;
    CHECK_EQ_INT(keystore_count_active(ks, &n), 0);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(list_count(ks), (size_t)ca.rounds + 1);
    keystore_close(other);
    keystore_close(ks);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/sight-keystore-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    umask(022);

    test_sha256();
    test_round_trip();
    test_key_alphabet();
    test_storage();
    test_refusals();
    test_names();
    test_cross_connection();
    test_keys_version();
    test_last_used();
    test_jobs_migration();
    test_paths();
    test_db_errors();
    test_concurrency();

    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_report("test_keystore");
}
