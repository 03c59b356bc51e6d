/* API key checks, and other store or Redis work of a request, off
 * the HTTP engine's threads. A verify reads the key store (SQLite may wait on
 * its lock behind a `sightd keys` writer; PostgreSQL is a round trip), which
 * must not stall the other connections an HTTP thread serves. The jobs run
 * on the server's work queue (util/work_queue.h); the request waits for the
 * verdict with its connection suspended, and the job's completion resumes
 * it. */
#ifndef SIGHT_HTTP_KEY_CHECK_H
#define SIGHT_HTTP_KEY_CHECK_H

#include "http/front/front.h"
#include <stdbool.h>
#include <stdint.h>

#include "keys/key_cache.h"
#include "keys/keystore.h"
#include "util/work_queue.h"

typedef struct key_checker key_checker;
typedef struct kc_job kc_job;

/* Verifies through cache (key_cache.h), which remembers valid keys; runs
 * the jobs on wq. */
key_checker *kc_start(keystore *ks, key_cache *cache, work_queue *wq);
/* Waits for every job submitted to end (each resumes its connection);
 * later submits get NULL. Before the daemon stops, and before wq stops. */
void kc_stop(key_checker *k);
/* After the daemon stopped (every job released). */
void kc_free(key_checker *k);

/* Starts checking key (copied). NULL when out of memory or stopped: the
 * caller checks inline. */
kc_job *kc_submit(key_checker *k, const char *key);
/* Runs fn(ks, ctx) on a checker thread instead: any store work of a request
 * (the usage report). The job owns ctx (ctx_free'd with it), so a request
 * that ends first leaves nothing dangling. NULL as kc_submit (ctx freed). */
typedef void (*kc_fn)(keystore *ks, void *ctx);
kc_job *kc_submit_call(key_checker *k, kc_fn fn, void *ctx, void (*ctx_free)(void *));
/* The call job's ctx, to read its results once kc_wait said done. */
void *kc_ctx(kc_job *j);
/* The verdict when done; false while running. If not done, the
 * connection is suspended and resumed when the job ends: the handler is then
 * called again. */
bool kc_wait(kc_job *j, front_conn *c);
/* Results, once kc_wait said done. */
key_verdict kc_verdict(const kc_job *j);
/* A valid key's id and own limits. */
void kc_key(const kc_job *j, int64_t *id, key_limits *limits);
/* The request no longer needs it (it ended, or took the result). */
void kc_release(kc_job *j);

#endif
