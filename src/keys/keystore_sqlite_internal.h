/* Shared by the SQLite key store's files (keystore_sqlite.c: keys and
 * limits; keystore_usage.c: the usage ledger). */
#ifndef SIGHT_KEYS_KEYSTORE_SQLITE_INTERNAL_H
#define SIGHT_KEYS_KEYSTORE_SQLITE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "keys/keystore.h"

#define BUSY_TIMEOUT_MS 5000
/* The limit columns, in read_limits' order. */
#define LIMIT_COLUMNS \
    "rate, rate_per, burst, max_concurrent, quota_images, quota_images_per, quota_llm_tokens, quota_llm_per"

typedef struct {
    keystore base; /* first, so a keystore * converts back */
    pthread_mutex_t mu;
    sqlite3 *db;
    sqlite3_stmt *insert, *list, *revoke, *verify, *touch, *count, *set_limits, *version;
    sqlite3_stmt *usage_upsert, *usage_select;
} sqlite_ks;

int ks_exec(sqlite3 *db, const char *sql, char *err, size_t err_len);
int ks_prepare(sqlite_ks *s, sqlite3_stmt **st, const char *sql, char *err, size_t err_len);
/* Ends a read of rows begun under s->mu: it succeeded when every row was kept
 * (*ok) and the rows ran out (step_rc SQLITE_DONE). Resets st and unlocks;
 * returns rows, or on failure frees them and returns NULL with *ok and *len 0. */
void *ks_rows_end(sqlite_ks *s, sqlite3_stmt *st, int step_rc, int *ok, void *rows, size_t *len);

int usage_prepare(sqlite_ks *s, char *err, size_t err_len);
void usage_finalize(sqlite_ks *s);
int ks_usage_add(keystore *base, const usage_row *rows, size_t n);
int ks_usage_get(keystore *base, int64_t id, const char *from, const char *to, usage_row **out, size_t *n);

#endif
