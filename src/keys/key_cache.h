/* Verified keys in memory, so that a request with a known key costs no
 * store query and can be decided from its headers on the HTTP thread.
 *
 * Entries are keyed by the key's SHA-256 (the key itself is never kept),
 * hold the key's id and own limits, and live ttl_ms at most. Only valid keys
 * are cached: an unknown key always goes to the store (and a flood of random
 * keys cannot grow the cache, which is bounded by capacity anyway, the least
 * recently used entry making room).
 *
 * Invalidation: a ticker chore (util/ticker.h, run on the work queue)
 * reads the store's keys_version (keystore.h) every poll_ms; when it moves, every entry is dropped. While
 * it cannot be read (the database restarting) the entries stay until their
 * lifetime ends, so cached keys keep working; a change made meanwhile
 * drops them at the next read that succeeds. A verify that raced with the change cannot put a stale verdict
 * back (each fill carries the generation it started in). So `sightd keys
 * revoke` or `keys update` in another process takes effect within poll_ms
 * plus one store read. Thread-safe. */
#ifndef SIGHT_KEYS_KEY_CACHE_H
#define SIGHT_KEYS_KEY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys/keystore.h"
#include "util/ticker.h"

typedef struct key_cache key_cache;

#define KEY_CACHE_CAPACITY 10000
#define KEY_CACHE_POLL_MS 200

/* ttl_ms 0: nothing is cached (every verify reads the store). Every
 * poll_ms, a chore on tk (a store read, so on its work queue) reads the
 * keys' version; poll_ms 0 or tk NULL: no poll (entries then expire by age
 * alone). NULL when out of memory. */
key_cache *key_cache_new(keystore *ks, size_t capacity, int ttl_ms, int poll_ms, ticker *tk);
/* Stops the poll and frees everything. Accepts NULL. */
void key_cache_free(key_cache *c);

/* Memory only, never waits on the store: true, with the key's id and own
 * limits, when the key was verified valid within the TTL and nothing
 * changed since. */
bool key_cache_get(key_cache *c, const char *key, int64_t *id, key_limits *limits);
/* The store's verdict (may block on it), remembered when valid. */
key_verdict key_cache_verify(key_cache *c, const char *key, int64_t *id, key_limits *limits);
/* Drops every entry (what the watcher does when the version moves). */
void key_cache_clear(key_cache *c);
/* Entries held now (tests). */
size_t key_cache_size(key_cache *c);

#endif
