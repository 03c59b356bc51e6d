/* API key checks off libmicrohttpd's threads. A verify reads SQLite (and may
 * wait on its lock behind a `sightd keys` writer), which must not stall the
 * other connections an HTTP thread serves. A small fixed pool runs the
 * checks; the request waits for the verdict with its connection suspended. */
#ifndef SIGHT_HTTP_KEY_CHECK_H
#define SIGHT_HTTP_KEY_CHECK_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "keys/keystore.h"

typedef struct key_checker key_checker;
typedef struct kc_job kc_job;

key_checker *kc_start(keystore *ks, int threads);
/* Finishes the queued checks (resuming their connections) and joins; later
 * submits get NULL. Before the daemon stops. */
void kc_stop(key_checker *k);
/* After the daemon stopped (every job released). */
void kc_free(key_checker *k);

/* Starts checking key (copied); NULL key: count the active keys instead
 * (/readyz). NULL when out of memory or stopped: the caller checks inline. */
kc_job *kc_submit(key_checker *k, const char *key);
/* The verdict (or count) when done; false while running. If not done, the
 * connection is suspended and resumed when the job ends: the handler is then
 * called again. */
bool kc_wait(kc_job *j, struct MHD_Connection *c);
/* Results, once kc_wait said done. */
key_verdict kc_verdict(const kc_job *j);
/* A valid key's id and own limits. */
void kc_key(const kc_job *j, int64_t *id, key_limits *limits);
int kc_count(const kc_job *j, int64_t *n);
/* The request no longer needs it (it ended, or took the result). */
void kc_release(kc_job *j);

#endif
