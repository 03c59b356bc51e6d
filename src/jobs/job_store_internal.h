/* Shared by the job store's files (job_store.c: schema, jobs; job_run.c:
 * items, events, results). */
#ifndef SIGHT_JOBS_JOB_STORE_INTERNAL_H
#define SIGHT_JOBS_JOB_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "jobs/job_store.h"

struct job_store {
    pthread_mutex_t mu;
    sqlite3 *db;
};

/* A statement prepared on js->db, or NULL (logged). */
sqlite3_stmt *js_prep(job_store *js, const char *sql);
/* Runs sql without results; 0 or -1. */
int js_exec(job_store *js, const char *sql);
/* Binds text or NULL. */
int js_bind_text(sqlite3_stmt *st, int i, const char *s);
/* Appends line (a JSON object's text) and '\n' to *text; 0 or -1. */
int js_append(char **text, size_t *len, size_t *cap, const char *line);
int64_t js_now_ms(void);

#endif
