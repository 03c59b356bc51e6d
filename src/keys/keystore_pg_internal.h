/* Shared by the PostgreSQL key store's files (keystore_pg.c: connections
 * and schema; keystore_pg_ops.c: the operations). */
#ifndef SIGHT_KEYS_KEYSTORE_PG_INTERNAL_H
#define SIGHT_KEYS_KEYSTORE_PG_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>

#include "keys/keystore.h"

/* Connections at most: the work queue's threads (key checks, the store
 * probe, the key-version poll), the ledger's writer and the HTTP side
 * share them; a caller waits when all are busy. */
#define PG_POOL 8

typedef struct {
    PGconn *conn; /* NULL: not connected (made on demand) */
    bool busy;
} pg_slot;

typedef struct {
    keystore base; /* first, so a keystore * converts back */
    char *url;
    char masked[512]; /* the URL without its password, for messages */
    pthread_mutex_t mu;
    pthread_cond_t freed;
    pg_slot slot[PG_POOL];
    double down_until; /* monotonic seconds: no new connection is tried before */
    bool down_logged;
} pg_ks;

typedef struct {
    const char *name, *sql;
} pg_statement;

/* Every prepared statement, made on each new connection. */
extern const pg_statement PG_STATEMENTS[];
extern const size_t PG_NSTATEMENTS;
extern const keystore_ops PG_OPS;

/* Runs prepared statement name with text parameters. The result, whose
 * status is want (PGRES_TUPLES_OK or PGRES_COMMAND_OK), or NULL after an
 * error (logged). A connection found broken is replaced and the statement
 * tried once more if retry is set, so a restarted server costs no error. */
PGresult *pg_exec(pg_ks *s, const char *name, int n, const char *const *vals, ExecStatusType want, bool retry);
void pg_close(keystore *base);

#endif
