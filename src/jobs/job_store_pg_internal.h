/* Shared by the PostgreSQL job store's files (job_store_pg.c: connections,
 * schema, jobs; job_store_pg_run.c: items, leases, outcomes, purge). */
#ifndef SIGHT_JOBS_JOB_STORE_PG_INTERNAL_H
#define SIGHT_JOBS_JOB_STORE_PG_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>

#include "jobs/job_store_internal.h"

#define POOL 4

struct job_pg {
    char *url;
    pthread_mutex_t mu;
    pthread_cond_t freed;
    PGconn *conn[POOL];
    bool busy[POOL];
};

/* A pooled connection's index (connected), or -1; give it back with jpg_give. */
int jpg_take(struct job_pg *pg);
void jpg_give(struct job_pg *pg, int i);
/* sql with text parameters: the result when its status is want, else NULL (logged). */
PGresult *jpg_q(PGconn *c, const char *sql, int n, const char *const *p, ExecStatusType want);
/* jpg_q on a pooled connection taken and given back around it; NULL also
 * when no connection can be had. */
PGresult *jpg_run(struct job_pg *pg, const char *sql, int n, const char *const *p, ExecStatusType want);
/* jpg_run with its parameters given by types, one letter each: 'n' an
 * int64_t (sent as its decimal text), 's' a string (NULL: SQL NULL). So a
 * call site states its values once instead of formatting each into a
 * buffer of its own. At most JPG_MAX_ARGS. */
#define JPG_MAX_ARGS 8
PGresult *jpg_runf(struct job_pg *pg, ExecStatusType want, const char *sql, const char *types, ...);
bool jpg_ok(PGconn *c, const char *sql);
void jpg_num(char *buf, int64_t v); /* buf: 24 bytes */
/* Inside the transaction that ended job j: its webhook message, if any. 0 or -1. */
int jpg_enqueue_webhook(PGconn *c, const job_info *j);

#endif
