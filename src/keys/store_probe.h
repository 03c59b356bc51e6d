/* The key store's reachability for /readyz: a ticker chore (on the work
 * queue: it reads the store) counts the active keys once a second and
 * keeps the answer, so a probe costs no query of its own and never waits
 * on a database that is down. */
#ifndef SIGHT_KEYS_STORE_PROBE_H
#define SIGHT_KEYS_STORE_PROBE_H

#include <stdint.h>

#include "keys/keystore.h"
#include "util/ticker.h"

typedef struct store_probe store_probe;

/* Checks once before returning (so a new server's first probe has an
 * answer), then every interval_s as a chore of tk. NULL: out of memory. */
store_probe *store_probe_start(keystore *ks, double interval_s, ticker *tk);
/* 0 with *active_keys (the last successful count) while a check succeeded
 * within the last few seconds (store_probe.c says why a grace), else -1:
 * a store down, or a check stuck on a dead connection. */
int store_probe_get(store_probe *p, int64_t *active_keys);
void store_probe_stop(store_probe *p);

#endif
