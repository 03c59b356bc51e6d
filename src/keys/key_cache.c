#include "keys/key_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys/sha256_hex.h"
#include "util/clock.h"
#include "util/log.h"

/* Entries live in one array, linked by index: a hash chain per bucket and
 * one recency list (head: most recently used). -1 ends a list. */
typedef struct {
    char hash[65]; /* the key's SHA-256, hex */
    int64_t id;
    key_limits limits;
    double expires; /* clock_ms() */
    int32_t chain, newer, older;
} entry;

struct key_cache {
    keystore *ks;
    pthread_mutex_t mu;
    entry *e;
    int32_t cap, used; /* entries [0, used) have been handed out since the last clear */
    int32_t *bucket;
    uint32_t mask; /* buckets - 1 */
    int32_t free_list, newest, oldest, n;
    uint64_t gen; /* moves on every clear: a fill begun before it is dropped */
    int ttl_ms, poll_ms;

    /* the version poll */
    ticker *tk;
    tk_chore *poll;
    int64_t version;
    bool have_version;
};

static uint32_t bucket_of(const key_cache *c, const char *hash)
{
    uint32_t h = 0;
    for (int i = 0; i < 8; i++) h = h << 4 | (uint32_t)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
    return h & c->mask;
}

static void clear_locked(key_cache *c)
{
    for (uint32_t i = 0; i <= c->mask; i++) c->bucket[i] = -1;
    c->used = c->n = 0;
    c->free_list = c->newest = c->oldest = -1;
    c->gen++;
}

static void unlink_lru(key_cache *c, int32_t i)
{
    entry *x = &c->e[i];
    if (x->newer >= 0) c->e[x->newer].older = x->older;
    else c->newest = x->older;
    if (x->older >= 0) c->e[x->older].newer = x->newer;
    else c->oldest = x->newer;
}

static void push_newest(key_cache *c, int32_t i)
{
    entry *x = &c->e[i];
    x->newer = -1;
    x->older = c->newest;
    if (c->newest >= 0) c->e[c->newest].newer = i;
    c->newest = i;
    if (c->oldest < 0) c->oldest = i;
}

/* The entry for hash, and the link that points at it (for removal). */
static int32_t find(key_cache *c, const char *hash, int32_t **link)
{
    int32_t *l = &c->bucket[bucket_of(c, hash)];
    while (*l >= 0 && memcmp(c->e[*l].hash, hash, 64) != 0) l = &c->e[*l].chain;
    if (link) *link = l;
    return *l;
}

static void remove_at(key_cache *c, int32_t *link)
{
    int32_t i = *link;
    *link = c->e[i].chain;
    unlink_lru(c, i);
    c->e[i].chain = c->free_list;
    c->free_list = i;
    c->n--;
}

static void insert_locked(key_cache *c, const char *hash, int64_t id, const key_limits *l)
{
    int32_t *link;
    if (find(c, hash, &link) >= 0) remove_at(c, link);
    if (c->n == c->cap) {
        /* Full: the least recently used makes room. */
        int32_t *old;
        find(c, c->e[c->oldest].hash, &old);
        remove_at(c, old);
    }
    int32_t i;
    if (c->free_list >= 0) {
        i = c->free_list;
        c->free_list = c->e[i].chain;
    } else {
        i = c->used++;
    }
    entry *x = &c->e[i];
    memcpy(x->hash, hash, 65);
    x->id = id;
    x->limits = *l;
    x->expires = clock_ms() + c->ttl_ms;
    uint32_t b = bucket_of(c, hash);
    x->chain = c->bucket[b];
    c->bucket[b] = i;
    push_newest(c, i);
    c->n++;
}

/* The ticker's chore, every poll_ms on the work queue: reads the keys'
 * version; a move drops everything. */
static void poll_version(void *arg)
{
    key_cache *c = arg;
    int64_t v = 0;
    int rc = keystore_keys_version(c->ks, &v);
    pthread_mutex_lock(&c->mu);
    /* A failed read (the database restarting) keeps the verdicts: no key
     * can change while the store cannot be written either, and they still
     * expire by their lifetime. The next read compares with the last
     * version seen, so a change made meanwhile still drops them. */
    if (rc == 0 && (!c->have_version || v != c->version)) {
        if (c->n) log_debug("key cache: keys changed (version %lld -> %lld), %d verdict(s) dropped",
                            (long long)c->version, (long long)v, (int)c->n);
        clear_locked(c);
    }
    if (rc == 0) {
        c->have_version = true;
        c->version = v;
    }
    pthread_mutex_unlock(&c->mu);
}

key_cache *key_cache_new(keystore *ks, size_t capacity, int ttl_ms, int poll_ms, ticker *tk)
{
    if (capacity < 1) capacity = 1;
    if (capacity > (1u << 24)) capacity = 1u << 24;
    key_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    uint32_t nb = 1;
    while (nb < 2 * capacity) nb <<= 1;
    c->e = malloc(capacity * sizeof *c->e);
    c->bucket = malloc(nb * sizeof *c->bucket);
    if (!c->e || !c->bucket) goto fail;
    c->ks = ks;
    c->cap = (int32_t)capacity;
    c->mask = nb - 1;
    c->ttl_ms = ttl_ms;
    c->poll_ms = poll_ms;
    pthread_mutex_init(&c->mu, NULL);
    clear_locked(c);
    /* Read before any fill: a change after this is one the poll sees. */
    c->have_version = keystore_keys_version(ks, &c->version) == 0;
    if (poll_ms > 0 && ttl_ms > 0 && tk) {
        if (!(c->poll = ticker_add(tk, poll_ms / 1000.0, true, poll_version, c))) {
            pthread_mutex_destroy(&c->mu);
            goto fail;
        }
        c->tk = tk;
    }
    return c;
fail:
    free(c->e);
    free(c->bucket);
    free(c);
    return NULL;
}

void key_cache_free(key_cache *c)
{
    if (!c) return;
    ticker_remove(c->tk, c->poll);
    pthread_mutex_destroy(&c->mu);
    free(c->e);
    free(c->bucket);
    free(c);
}

/* The key's hash as the store keeps it; false for what cannot be a key
 * (the store refuses those without a query, so there is nothing to cache). */
static bool hash_of(const char *key, char hash[65])
{
    if (!key) return false;
    size_t len = strnlen(key, KEYSTORE_KEY_MAX + 1);
    if (len == 0 || len > KEYSTORE_KEY_MAX) return false;
    sha256_hex(key, len, hash);
    return hash[0] != '\0';
}

bool key_cache_get(key_cache *c, const char *key, int64_t *id, key_limits *limits)
{
    char hash[65];
    if (c->ttl_ms <= 0 || !hash_of(key, hash)) return false;
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    int32_t *link;
    int32_t i = find(c, hash, &link);
    if (i >= 0 && c->e[i].expires <= clock_ms()) {
        remove_at(c, link);
    } else if (i >= 0) {
        hit = true;
        *id = c->e[i].id;
        *limits = c->e[i].limits;
        unlink_lru(c, i);
        push_newest(c, i);
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

key_verdict key_cache_verify(key_cache *c, const char *key, int64_t *id, key_limits *limits)
{
    char hash[65];
    bool cacheable = c->ttl_ms > 0 && hash_of(key, hash);
    uint64_t gen = 0;
    if (cacheable) {
        pthread_mutex_lock(&c->mu);
        gen = c->gen;
        pthread_mutex_unlock(&c->mu);
    }
    int64_t kid = 0;
    key_limits own = {0};
    key_verdict v = keystore_verify_limits(c->ks, key, &kid, &own);
    if (v == KEY_VALID && cacheable) {
        pthread_mutex_lock(&c->mu);
        /* A change seen since this verify began may be one it missed. */
        if (c->gen == gen) insert_locked(c, hash, kid, &own);
        pthread_mutex_unlock(&c->mu);
    }
    if (v == KEY_VALID) {
        *id = kid;
        *limits = own;
    }
    return v;
}

void key_cache_clear(key_cache *c)
{
    pthread_mutex_lock(&c->mu);
    clear_locked(c);
    pthread_mutex_unlock(&c->mu);
}

size_t key_cache_size(key_cache *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = (size_t)c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}
