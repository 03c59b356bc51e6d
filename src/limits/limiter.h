/* Per-key limits: a request rate (GCRA, the token bucket's exact form),
 * concurrent requests, and quotas of images and LLM tokens per UTC day or
 * month, counted from the usage ledger (ledger.h) plus what admitted
 * requests have reserved but not yet committed.
 *
 * What is counted lives behind limits_state.h: in this process's memory
 * (each node limits on its own), or in Redis (limiter_use_redis), shared
 * by every node. Use is durable in the key store's ledger either way.
 * The clock is injectable so day and month boundaries can be tested (the
 * Redis state takes rates' time from Redis). */
#ifndef SIGHT_LIMITS_LIMITER_H
#define SIGHT_LIMITS_LIMITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys/keystore.h"
#include "util/ticker.h"
#include "util/work_queue.h"

typedef struct limiter limiter;

/* Wall-clock seconds since the epoch (UTC). */
typedef double (*limiter_clock)(void);

typedef struct {
    unsigned status; /* 0 admitted, else 429 (or 503 when the store failed) */
    const char *code;
    char message[200];
    int64_t retry_after; /* seconds until a retry can succeed */
    /* draft-ietf-httpapi-ratelimit-headers-09 values; "" when the key has no rate */
    char policy[96], state[96];
} limit_verdict;

/* defaults apply to each limit a key does not set itself. now NULL: the
 * real clock. metering false: nothing is written to the ledger (quotas then
 * count only what was reserved in this process). */
limiter *limiter_new(keystore *ks, const key_limits *defaults, bool metering, limiter_clock now);
void limiter_free(limiter *lm);

/* Counts in Redis (redis://[:PASSWORD@]HOST:PORT[/DB]) instead of this
 * process, so that every node shares the limits. deny: while Redis cannot
 * answer, keys with a limit get 503 limits_unavailable (else they are
 * admitted; both counted in sight_limits_redis_errors_total). 0, or -1
 * with err set (a bad URL). Call before the first request. Leaves and
 * releases then run on wq (which must outlive the limiter, or be stopped
 * before limiter_free); tk pings Redis and refreshes the leases. */
int limiter_use_redis(limiter *lm, const char *url, bool deny, work_queue *wq, ticker *tk, char *err,
                      size_t err_len);

/* Whether the limits can be checked: false (with *why, a code) when Redis
 * is down and deny is set. *redis: "none", "up" or "down". Never waits: it
 * reads what the last command to Redis found, and a ticker chore pings
 * Redis every second so that it stays current without traffic. */
bool limiter_ready(limiter *lm, const char **redis, const char **why);

/* The limits that apply to a key: its own, else the server's default. */
void limiter_effective(const limiter *lm, const key_limits *own, key_limits *out);

/* Concurrency, then rate (a request refused for concurrency costs no rate
 * token). 0: admitted, and holding one of the key's slots (*slot) until
 * limiter_leave; -1: refused, v filled. v's headers are filled either way. */
int limiter_enter(limiter *lm, int64_t key_id, const key_limits *eff, limit_verdict *v, uint64_t *slot);
/* Never waits: with --redis the slot is given back on the work queue
 * (drained by limiter_free). */
void limiter_leave(limiter *lm, int64_t key_id, uint64_t slot);
/* Whether limiter_enter (or limiter_reserve) may wait for eff: a Redis round
 * trip, a read of the ledger in the key store. Then the caller runs it where
 * waiting stalls nobody else (the HTTP front: a key_check job on the work queue); when
 * false it returns at once. */
bool limiter_enter_may_block(const limiter *lm, const key_limits *eff);
bool limiter_reserve_may_block(const limiter *lm, const key_limits *eff);

/* Quotas, once the number of files is known: refuses the whole request if
 * nfiles would go over the image quota (-1, v filled), else reserves them
 * (0; until limiter_commit or limiter_release). 1: admitted unchecked,
 * nothing reserved (Redis down, --limits-on-redis-error allow).
 * *llm_ok: the LLM-token quota is not spent. */
int limiter_reserve(limiter *lm, int64_t key_id, const key_limits *eff, int64_t nfiles, bool *llm_ok,
                    limit_verdict *v);
/* Never waits, as limiter_leave. */
void limiter_release(limiter *lm, int64_t key_id, const key_limits *eff, int64_t reserved);
/* Adds use to the ledger for today (UTC; row->day and key_id are filled
 * here) and returns once it is durable; then releases the reservation.
 * 0, or -1 when the commit failed (logged). */
int limiter_commit(limiter *lm, int64_t key_id, const key_limits *eff, usage_row *row, int64_t reserved);

/* Use the caller has already made durable in the ledger itself (a job
 * item's usage row, committed in the item's own transaction): the shared
 * counters take it, as limiter_commit's do, and the reservation is
 * released. Never writes the ledger. Never waits, as limiter_leave. */
void limiter_counted(limiter *lm, int64_t key_id, const key_limits *eff, int64_t files, int64_t tokens,
                     int64_t reserved);

/* Today (UTC) per the limiter's clock, YYYY-MM-DD. */
void limiter_today(const limiter *lm, char out[11]);
bool limiter_metering(const limiter *lm);
/* The ledger's bound (ledger.h): how long a request waits for its commit,
 * and how long commits may fail before limiter_ledger_health reports it. */
void limiter_set_ledger_timeout(limiter *lm, double timeout_s);
/* 0, or -1 with why filled while the ledger cannot be written. */
int limiter_ledger_health(limiter *lm, char *why, size_t len);

/* The calendar helpers, exposed for tests: the first day of t's period and
 * the seconds from t to the period's end. */
void limits_period_start(double t, int per, char out[11]);
int64_t limits_period_left(double t, int per);

#endif
