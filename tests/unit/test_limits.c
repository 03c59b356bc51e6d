/* Limits: value parsing, GCRA exact counts, quotas from the ledger across a
 * UTC day boundary (an injected clock), and the group-commit ledger. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "keys/keystore.h"
#include "limits/limiter.h"
#include "util/clock.h"

static double fake_now;
static const key_limits nolim = {0};
static uint64_t slot;
static double clock_fake(void) { return fake_now; }

static void test_parse(void)
{
    int64_t n, per;
    int q;
    char err[160];
    CHECK_EQ_INT(limit_parse_rate("30/min", &n, &per, err, sizeof err), 0);
    CHECK(n == 30 && per == 60);
    CHECK_EQ_INT(limit_parse_rate("5/s", &n, &per, err, sizeof err), 0);
    CHECK_EQ_INT(limit_parse_rate("2/h", &n, &per, err, sizeof err), 0);
    CHECK(per == 3600);
    CHECK_EQ_INT(limit_parse_rate("none", &n, &per, err, sizeof err), 0);
    CHECK(n == 0);
    const char *bad_rates[] = {"0/min", "ten", "10", "10/week", "-1/s", "/s", "10/", "1e3/s", " 5/s", "5/s ", ""};
    for (size_t i = 0; i < sizeof bad_rates / sizeof *bad_rates; i++)
        CHECK_EQ_INT(limit_parse_rate(bad_rates[i], &n, &per, err, sizeof err), -1);
    CHECK_EQ_INT(limit_parse_quota("1000/day", &n, &q, err, sizeof err), 0);
    CHECK(n == 1000 && q == QUOTA_DAY);
    CHECK_EQ_INT(limit_parse_quota("7/month", &n, &q, err, sizeof err), 0);
    CHECK(q == QUOTA_MONTH);
    CHECK_EQ_INT(limit_parse_quota("5/week", &n, &q, err, sizeof err), -1);
    CHECK(strstr(err, "day or month") != NULL);
    CHECK_EQ_INT(limit_parse_quota("0/day", &n, &q, err, sizeof err), -1);
    CHECK_EQ_INT(limit_parse_positive("4", &n, err, sizeof err), 0);
    CHECK_EQ_INT(limit_parse_positive("0", &n, err, sizeof err), -1);
    CHECK_EQ_INT(limit_parse_positive("x", &n, err, sizeof err), -1);
}

static void test_rate(keystore *ks)
{
    fake_now = 1700000000.0;
    limiter *lm = limiter_new(ks, NULL, false, clock_fake);
    key_limits l = {.rate = 30, .rate_per_s = 60};
    limit_verdict v;
    int ok = 0;
    for (int i = 0; i < 45; i++) {
        if (limiter_enter(lm, 1, &l, &v, &slot) == 0) {
            ok++;
            limiter_leave(lm, 1, slot);
        } else {
            CHECK_STR(v.code, "rate_limited");
            CHECK_EQ_INT(v.retry_after, 2); /* one token every 2 s */
        }
    }
    CHECK_EQ_INT(ok, 30);
    CHECK_STR(v.policy, "\"rate\";q=30;w=60");
    fake_now += 2.0; /* one token back */
    CHECK_EQ_INT(limiter_enter(lm, 1, &l, &v, &slot), 0);
    CHECK_EQ_INT(limiter_enter(lm, 1, &l, &v, &slot), -1);
    /* Burst 5 at 1/s: 5 at once, then one a second. */
    key_limits b = {.rate = 1, .rate_per_s = 1, .burst = 5};
    ok = 0;
    for (int i = 0; i < 8; i++) ok += limiter_enter(lm, 2, &b, &v, &slot) == 0;
    CHECK_EQ_INT(ok, 5);
    /* Concurrency: a refusal costs no rate token. */
    key_limits c = {.max_concurrent = 2};
    uint64_t first;
    CHECK_EQ_INT(limiter_enter(lm, 3, &c, &v, &first), 0);
    CHECK(first != 0);
    CHECK_EQ_INT(limiter_enter(lm, 3, &c, &v, &slot), 0);
    CHECK_EQ_INT(limiter_enter(lm, 3, &c, &v, &slot), -1);
    CHECK_STR(v.code, "concurrency_limited");
    CHECK(slot == 0); /* refused: nothing to leave */
    limiter_leave(lm, 3, first);
    CHECK_EQ_INT(limiter_enter(lm, 3, &c, &v, &slot), 0);
    limiter_free(lm);
}

static void test_quota_rollover(keystore *ks, int64_t id)
{
    /* 2026-03-31 23:59:58 UTC: the last day of a month. */
    fake_now = 1775001598.0;
    char day[11];
    limits_period_start(fake_now, QUOTA_DAY, day);
    CHECK_STR(day, "2026-03-31");
    limits_period_start(fake_now, QUOTA_MONTH, day);
    CHECK_STR(day, "2026-03-01");
    CHECK_EQ_INT(limits_period_left(fake_now, QUOTA_DAY), 2);
    CHECK_EQ_INT(limits_period_left(fake_now, QUOTA_MONTH), 2);

    limiter *lm = limiter_new(ks, NULL, true, clock_fake);
    key_limits l = {.quota_images = 10, .quota_images_per = QUOTA_DAY, .quota_llm_tokens = 100, .quota_llm_per = QUOTA_MONTH};
    limit_verdict v;
    bool llm_ok;
    CHECK_EQ_INT(limiter_reserve(lm, id, &l, 6, &llm_ok, &v), 0);
    CHECK(llm_ok);
    /* Reserved but not committed still counts: 6 + 5 > 10. */
    CHECK_EQ_INT(limiter_reserve(lm, id, &l, 5, &llm_ok, &v), -1);
    CHECK_STR(v.code, "quota_exceeded");
    CHECK_EQ_INT(v.retry_after, 2);
    usage_row r = {.requests = 1, .files = 6, .llm_prompt_tokens = 80, .llm_completion_tokens = 20};
    CHECK_EQ_INT(limiter_commit(lm, id, &l, &r, 6), 0);
    CHECK_STR(r.day, "2026-03-31");
    CHECK_EQ_INT(limiter_reserve(lm, id, &l, 4, &llm_ok, &v), 0); /* exactly 10 */
    CHECK(!llm_ok);                                               /* 100 tokens spent */
    limiter_release(lm, id, &l, 4);
    CHECK_EQ_INT(limiter_reserve(lm, id, &l, 5, &llm_ok, &v), -1);

    fake_now += 2.0; /* 2026-04-01 00:00:00: a new day and a new month */
    CHECK_EQ_INT(limiter_reserve(lm, id, &l, 10, &llm_ok, &v), 0);
    CHECK(llm_ok);
    r = (usage_row){.requests = 1, .files = 10};
    CHECK_EQ_INT(limiter_commit(lm, id, &l, &r, 10), 0);
    CHECK_STR(r.day, "2026-04-01");
    usage_row *rows;
    size_t n;
    CHECK_EQ_INT(keystore_usage_get(ks, id, "2026-03-01", "2026-04-30", &rows, &n), 0);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        CHECK_STR(rows[0].day, "2026-03-31");
        CHECK_EQ_INT(rows[0].files, 6);
        CHECK_EQ_INT(rows[1].files, 10);
    }
    free(rows);
    limiter_free(lm);
}

typedef struct {
    limiter *lm;
    int64_t id;
} thr_arg;

static void *committer(void *p)
{
    thr_arg *a = p;
    for (int i = 0; i < 50; i++) {
        usage_row r = {.requests = 1, .files = 2, .megapixels = 0.5};
        limiter_commit(a->lm, a->id, &nolim, &r, 0);
    }
    return NULL;
}

static void test_group_commit(keystore *ks, int64_t id)
{
    fake_now = 1800000000.0;
    limiter *lm = limiter_new(ks, NULL, true, clock_fake);
    pthread_t t[8];
    thr_arg a = {lm, id};
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, committer, &a);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    char day[11];
    limiter_today(lm, day);
    usage_row *rows;
    size_t n;
    CHECK_EQ_INT(keystore_usage_get(ks, id, day, day, &rows, &n), 0);
    CHECK_EQ_INT(n, 1);
    if (n == 1) {
        CHECK_EQ_INT(rows[0].requests, 400);
        CHECK_EQ_INT(rows[0].files, 800);
        CHECK(rows[0].megapixels > 199.99 && rows[0].megapixels < 200.01);
    }
    free(rows);
    limiter_free(lm);
}

/* A store made by the first schema (keys only) gains limits and the ledger,
 * its keys intact. */
static void test_migration_from_v1(void)
{
    char path[64], err[256];
    snprintf(path, sizeof path, "/tmp/sight-limits-v1-%d.db", (int)getpid());
    unlink(path);
    sqlite3 *db;
    CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_exec(db,
                              "CREATE TABLE api_keys(id INTEGER PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT "
                              "NULL UNIQUE, prefix TEXT NOT NULL, created_at INTEGER NOT NULL, last_used_at INTEGER,"
                              " revoked_at INTEGER);"
                              "INSERT INTO api_keys(name, key_hash, prefix, created_at) VALUES('old', 'h', 'sk_x', 1);"
                              "PRAGMA user_version = 1;",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    keystore *ks = keystore_open_sqlite(path, err, sizeof err);
    CHECK(ks != NULL);
    if (ks) {
        key_info *keys;
        size_t n;
        CHECK_EQ_INT(keystore_list(ks, &keys, &n), 0);
        CHECK_EQ_INT(n, 1);
        if (n == 1) CHECK(!strcmp(keys[0].name, "old") && !limits_any(&keys[0].limits));
        free(keys);
        key_limits l = {.max_concurrent = 3};
        CHECK_EQ_INT(keystore_set_limits(ks, 1, &l), 0);
        usage_row r = {.key_id = 1, .day = "2026-01-02", .requests = 1};
        CHECK_EQ_INT(keystore_usage_add(ks, &r, 1), 0);
        int64_t v = -1;
        CHECK_EQ_INT(keystore_keys_version(ks, &v), 0); /* migrated on to v3: the version row is there */
        CHECK(v > 0);                                   /* set_limits above moved it */
        keystore_close(ks);
    }
    for (const char *sfx = ""; sfx; sfx = !*sfx ? "-wal" : !strcmp(sfx, "-wal") ? "-shm"
                                                                                : NULL) {
        char p[80];
        snprintf(p, sizeof p, "%s%s", path, sfx);
        unlink(p);
    }
}

/* Not a check: what one commit costs on a file (printed for the record). */
static void measure_commit_latency(void)
{
    char path[64], err[256];
    snprintf(path, sizeof path, "/tmp/sight-limits-lat-%d.db", (int)getpid());
    keystore *ks = keystore_open_sqlite(path, err, sizeof err);
    if (!ks) return;
    limiter *lm = limiter_new(ks, NULL, true, NULL);
    double t = clock_s();
    for (int i = 0; i < 200; i++) {
        usage_row r = {.requests = 1, .files = 1};
        limiter_commit(lm, 1, &nolim, &r, 0);
    }
    printf("ledger: %.3f ms per commit, one request at a time (file store, WAL)\n", (clock_s() - t) * 1000 / 200);
    limiter_free(lm);
    keystore_close(ks);
    for (const char *sfx = ""; sfx; sfx = !*sfx ? "-wal" : !strcmp(sfx, "-wal") ? "-shm"
                                                                                : NULL) {
        char p[80];
        snprintf(p, sizeof p, "%s%s", path, sfx);
        unlink(p);
    }
}

int main(void)
{
    char err[256];
    keystore *ks = keystore_open_sqlite(":memory:", err, sizeof err);
    CHECK(ks != NULL);
    if (!ks) return check_report("limits");
    char k[KEYSTORE_KEY_MAX + 1];
    int64_t id;
    CHECK_EQ_INT(keystore_create(ks, "limited", k, sizeof k, &id), 0);
    key_limits l = {.rate = 30, .rate_per_s = 60, .max_concurrent = 2}, got;
    CHECK_EQ_INT(keystore_set_limits(ks, id, &l), 0);
    CHECK_EQ_INT(keystore_verify_limits(ks, k, NULL, &got), KEY_VALID);
    CHECK(got.rate == 30 && got.rate_per_s == 60 && got.max_concurrent == 2);
    CHECK_EQ_INT(keystore_set_limits(ks, 9999, &l), 1);
    test_parse();
    test_rate(ks);
    test_quota_rollover(ks, id);
    test_group_commit(ks, id);
    keystore_close(ks);
    test_migration_from_v1();
    measure_commit_latency();
    return check_report("limits");
}
