/* API key store behind a small interface, so another backend (PostgreSQL, for
 * several servers sharing one set of keys) can replace SQLite without touching
 * callers.
 *
 * Keys are shown once at creation and stored only as SHA-256 hashes.
 * Verification always reads the store; a server caches its answers in memory
 * (key_cache.h) and drops them when keys_version moves, so a revocation or a
 * change of limits is seen within a poll interval. All functions are
 * thread-safe. */
#ifndef SIGHT_KEYS_KEYSTORE_H
#define SIGHT_KEYS_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "keys/limit_spec.h"

typedef struct keystore keystore;

typedef struct {
    int64_t id;
    char name[128];
    char prefix[16];      /* first 8 characters of the key, e.g. "sk_AbCdE", for recognising it */
    int64_t created_at;   /* unix seconds */
    int64_t last_used_at; /* 0 = never */
    int64_t revoked_at;   /* 0 = active */
    key_limits limits;    /* the key's own; 0 = none (the server's default applies) */
} key_info;

/* One key's use on one UTC day (the ledger's row), or a change to add to it. */
typedef struct {
    int64_t key_id;
    char day[11]; /* YYYY-MM-DD */
    int64_t requests, files, succeeded, failed;
    double megapixels;
    int64_t bytes_in, yolo_runs, ocr_runs, llm_calls, llm_prompt_tokens, llm_completion_tokens;
} usage_row;

typedef enum {
    KEY_VALID = 0,
    KEY_UNKNOWN, /* no such key, or revoked */
    KEY_ERROR,   /* the store failed (I/O, corruption); callers answer 503 */
} key_verdict;

/* Backend vtable: a later backend fills one of these. */
typedef struct {
    void (*close)(keystore *ks);
    /* name: 1..100 bytes of printable UTF-8. Writes the new key (NUL-terminated;
     * KEYSTORE_KEY_MAX + 1 bytes is always enough) and, if id_out, its id.
     * 0 ok, -1 invalid name, short buffer or store error (no row then). */
    int (*create)(keystore *ks, const char *name, char *key_out, size_t key_out_len, int64_t *id_out);
    /* All keys, revoked ones included, ordered by id; the caller free()s *out.
     * 0 ok, -1 error (*out NULL, *n 0). */
    int (*list)(keystore *ks, key_info **out, size_t *n);
    int (*revoke)(keystore *ks, int64_t id); /* 0 ok, 1 no such active key, -1 error */
    /* Looks up a key by its hash (key_hash_for_lookup: keystore_verify_limits
     * hashes it, and refuses what cannot be a key, for every backend). Sets
     * *id_out and *limits_out for KEY_VALID. The limits come with the same
     * lookup, so a change is seen at once. */
    key_verdict (*verify)(keystore *ks, const char hash[65], int64_t *id_out, key_limits *limits_out);
    int (*count_active)(keystore *ks, int64_t *n); /* 0 ok, -1 error */
    /* Replaces key id's limits. 0 ok, 1 no such key, -1 error. */
    int (*set_limits)(keystore *ks, int64_t id, const key_limits *l);
    /* Adds every row (a change per key and day) in one transaction, so a
     * group of requests costs one commit. 0 ok (durable), -1 error (nothing added). */
    int (*usage_add)(keystore *ks, const usage_row *rows, size_t n);
    /* Key id's rows for days from..to (YYYY-MM-DD, inclusive), ascending, only
     * days with use; the caller free()s *out. 0 ok, -1 error. */
    int (*usage_get)(keystore *ks, int64_t id, const char *from, const char *to, usage_row **out, size_t *n);
    /* The keys' version: a number that moves whenever a key is created,
     * revoked or has its limits changed, by any process sharing the store
     * (`sightd keys` included), and never otherwise (last_used_at and the
     * usage ledger leave it). A cheap read, polled a few times a second by
     * key_cache.c's watcher, which drops every cached verdict when it moves.
     * SQLite: a meta row bumped by triggers on api_keys; a shared backend
     * does the same in its own schema. 0 ok, -1 error (the cache is then
     * dropped too). */
    int (*keys_version)(keystore *ks, int64_t *version);
} keystore_ops;

struct keystore {
    const keystore_ops *ops;
};

/* Opens (creating parent directory, file and schema as needed) a SQLite store.
 * Returns NULL and fills err on failure. */
keystore *keystore_open_sqlite(const char *path, char *err, size_t err_len);

/* Opens a PostgreSQL store (libpq URL postgresql://user:pass@host:port/db),
 * applying the schema's migrations under an advisory lock, so several
 * servers may start at once. */
keystore *keystore_open_pg(const char *url, char *err, size_t err_len);

/* keystore_open_pg for a postgresql:// or postgres:// URL, else
 * keystore_open_sqlite. err never holds a password. */
keystore *keystore_open(const char *url_or_path, char *err, size_t err_len);

/* Key text: "sk_" followed by 43 URL-safe base64 characters (32 random bytes). */
#define KEYSTORE_KEY_MAX 64

static inline void keystore_close(keystore *ks)
{
    if (ks) ks->ops->close(ks);
}
static inline int keystore_create(keystore *ks, const char *name, char *key_out, size_t len, int64_t *id)
{
    return ks->ops->create(ks, name, key_out, len, id);
}
static inline int keystore_list(keystore *ks, key_info **out, size_t *n) { return ks->ops->list(ks, out, n); }
static inline int keystore_revoke(keystore *ks, int64_t id) { return ks->ops->revoke(ks, id); }
/* Hashes key (refusing what cannot be one of ours without asking the store)
 * and looks it up in ks. id and l (either may be NULL) are set only for
 * KEY_VALID. */
key_verdict keystore_verify_limits(keystore *ks, const char *key, int64_t *id, key_limits *l);
static inline key_verdict keystore_verify(keystore *ks, const char *key, int64_t *id)
{
    return keystore_verify_limits(ks, key, id, NULL);
}
static inline int keystore_set_limits(keystore *ks, int64_t id, const key_limits *l)
{
    return ks->ops->set_limits(ks, id, l);
}
static inline int keystore_usage_add(keystore *ks, const usage_row *rows, size_t n)
{
    return ks->ops->usage_add(ks, rows, n);
}
static inline int keystore_usage_get(keystore *ks, int64_t id, const char *from, const char *to, usage_row **out,
                                     size_t *n)
{
    return ks->ops->usage_get(ks, id, from, to, out, n);
}
static inline int keystore_count_active(keystore *ks, int64_t *n) { return ks->ops->count_active(ks, n); }
/* A backend without the op reads as failing: a cache then keeps nothing
 * longer than one poll. */
static inline int keystore_keys_version(keystore *ks, int64_t *v)
{
    return ks->ops->keys_version ? ks->ops->keys_version(ks, v) : -1;
}

#endif
