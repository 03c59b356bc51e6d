/* The verified-key cache: hits without the store, bounded size (least
 * recently used out), entry lifetime, no caching of unknown keys, and
 * invalidation by the keys' version when another connection (as `sightd
 * keys` would) revokes a key or changes its limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "keys/key_cache.h"
#include "keys/keystore.h"
#include "util/clock.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static keystore *open_db(const char *path)
{
    char err[256];
    keystore *ks = keystore_open_sqlite(path, err, sizeof err);
    if (!ks) fprintf(stderr, "open %s: %s\n", path, err);
    return ks;
}

/* Waits up to ms for the key to drop out of the cache; the time it took, or -1. */
static double dropped_within(key_cache *c, const char *key, int ms)
{
    double t0 = clock_ms();
    int64_t id;
    key_limits l;
    while (clock_ms() - t0 < ms) {
        if (!key_cache_get(c, key, &id, &l)) return clock_ms() - t0;
        sleep_ms(5);
    }
    return -1;
}

int main(void)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/sight-key-cache-%d.db", (int)getpid());
    unlink(path);
    keystore *server = open_db(path), *cli = open_db(path);
    CHECK(server && cli);
    if (!server || !cli) return check_report("key_cache");
    char k1[KEYSTORE_KEY_MAX + 1], k2[KEYSTORE_KEY_MAX + 1];
    int64_t id1, id2, id;
    CHECK_EQ_INT(keystore_create(cli, "one", k1, sizeof k1, &id1), 0);
    CHECK_EQ_INT(keystore_create(cli, "two", k2, sizeof k2, &id2), 0);
    key_limits l, set = {.rate = 7, .rate_per_s = 60};
    CHECK_EQ_INT(keystore_set_limits(cli, id1, &set), 0);

    /* The key-version poll runs as the server runs it: a blocking chore of
     * the ticker, on a work queue. */
    work_queue *wq = wq_start(2, 64);
    ticker *tk = ticker_start(wq);
    CHECK(wq && tk);
    key_cache *c = key_cache_new(server, 16, 60000, 20, tk);
    CHECK(c != NULL);
    if (!c) return check_report("key_cache");
    CHECK(!key_cache_get(c, k1, &id, &l)); /* nothing until verified */
    CHECK_EQ_INT(key_cache_verify(c, k1, &id, &l), KEY_VALID);
    CHECK(id == id1 && l.rate == 7);
    id = 0;
    memset(&l, 0, sizeof l);
    CHECK(key_cache_get(c, k1, &id, &l));
    CHECK(id == id1 && l.rate == 7 && l.rate_per_s == 60);

    /* Unknown keys and garbage are never cached. */
    CHECK_EQ_INT(key_cache_verify(c, "sk_unknownunknownunknownunknownunknownunknown", &id, &l), KEY_UNKNOWN);
    CHECK_EQ_INT(key_cache_verify(c, "garbage", &id, &l), KEY_UNKNOWN);
    CHECK_EQ_INT(key_cache_size(c), 1);

    /* Another connection changes k1's limits: dropped within a few polls. */
    set.rate = 9;
    CHECK_EQ_INT(keystore_set_limits(cli, id1, &set), 0);
    double t = dropped_within(c, k1, 1000);
    CHECK(t >= 0);
    printf("limits change seen after %.0f ms (poll 20 ms)\n", t);
    CHECK_EQ_INT(key_cache_verify(c, k1, &id, &l), KEY_VALID);
    CHECK(l.rate == 9);
    /* Revoked from another connection: dropped, then refused by the store. */
    CHECK_EQ_INT(key_cache_verify(c, k2, &id, &l), KEY_VALID);
    CHECK(key_cache_get(c, k2, &id, &l));
    CHECK_EQ_INT(keystore_revoke(cli, id2), 0);
    t = dropped_within(c, k2, 1000);
    CHECK(t >= 0);
    printf("revocation seen after %.0f ms\n", t);
    CHECK_EQ_INT(key_cache_verify(c, k2, &id, &l), KEY_UNKNOWN);
    CHECK(!key_cache_get(c, k2, &id, &l));
    key_cache_free(c);

    /* Bounded: 4 entries at most, the least recently used goes first. */
    c = key_cache_new(server, 4, 60000, 0, tk);
    char keys[8][KEYSTORE_KEY_MAX + 1];
    for (int i = 0; i < 8; i++) {
        char name[16];
        snprintf(name, sizeof name, "k%d", i);
        CHECK_EQ_INT(keystore_create(cli, name, keys[i], sizeof keys[i], &id), 0);
    }
    for (int i = 0; i < 4; i++) CHECK_EQ_INT(key_cache_verify(c, keys[i], &id, &l), KEY_VALID);
    CHECK(key_cache_get(c, keys[0], &id, &l)); /* 0 is now the most recent: 1 is the oldest */
    CHECK_EQ_INT(key_cache_verify(c, keys[4], &id, &l), KEY_VALID);
    CHECK_EQ_INT(key_cache_size(c), 4);
    CHECK(!key_cache_get(c, keys[1], &id, &l));
    CHECK(key_cache_get(c, keys[0], &id, &l));
    for (int round = 0; round < 50; round++)
        for (int i = 0; i < 8; i++) CHECK_EQ_INT(key_cache_verify(c, keys[i], &id, &l), KEY_VALID);
    CHECK_EQ_INT(key_cache_size(c), 4);
    for (int i = 4; i < 8; i++) CHECK(key_cache_get(c, keys[i], &id, &l));
    key_cache_clear(c);
    CHECK_EQ_INT(key_cache_size(c), 0);
    key_cache_free(c);

    /* Lifetime: gone after ttl even with nothing changed. */
    c = key_cache_new(server, 4, 50, 0, tk);
    CHECK_EQ_INT(key_cache_verify(c, keys[0], &id, &l), KEY_VALID);
    CHECK(key_cache_get(c, keys[0], &id, &l));
    sleep_ms(80);
    CHECK(!key_cache_get(c, keys[0], &id, &l));
    key_cache_free(c);

    ticker_stop(tk);
    wq_free(wq);
    keystore_close(cli);
    keystore_close(server);
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
    return check_report("key_cache");
}
