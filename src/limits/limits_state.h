/* Where the limiter keeps what is counted: in this process (limits_local.c)
 * or in Redis (limits_redis.c, --redis), shared by every node. The limiter
 * (limiter.c) turns what a backend answers into verdicts and headers; a
 * backend only counts. Each operation is one step, atomic per key. */
#ifndef SIGHT_LIMITS_LIMITS_STATE_H
#define SIGHT_LIMITS_LIMITS_STATE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct limits_state limits_state;

typedef enum { ENTER_ADMITTED = 0,
               ENTER_RATE,
               ENTER_CONCURRENCY } limits_enter_outcome;

typedef struct {
    double now;         /* wall seconds per the limiter's clock (Redis uses its own) */
    double T;           /* GCRA: seconds per request; 0 = no rate */
    double limit;       /* burst * T */
    int64_t max_active; /* 0 = no concurrency cap */
} limits_enter_in;

typedef struct {
    limits_enter_outcome outcome;
    double ahead;  /* GCRA: tat - now after this request (refused: unchanged) */
    uint64_t slot; /* admitted with a cap: what limits_state_ops.leave takes */
} limits_enter_out;

/* Reads the usage ledger: files and LLM tokens in the period (limits.per)
 * that holds today. 0, or -1 when the store failed. */
typedef int (*limits_ledger_fn)(void *ctx, int per, int64_t *files, int64_t *tokens);

typedef struct {
    int64_t nfiles;
    int64_t quota_images, quota_llm;    /* 0 = none */
    int images_per, llm_per;            /* QUOTA_DAY / QUOTA_MONTH */
    char images_from[11], llm_from[11]; /* the periods' first days, YYYY-MM-DD */
    int64_t images_left_s, llm_left_s;  /* seconds to the periods' ends */
    limits_ledger_fn ledger;
    void *ledger_ctx;
} limits_quota_in;

typedef struct {
    bool refused;          /* the files would go over the image quota: nothing reserved */
    int64_t files, tokens; /* use in the period before this request, reservations included */
} limits_quota_out;

typedef struct {
    /* -1: the state cannot be reached (Redis down), out unset. */
    int (*enter)(limits_state *st, int64_t key_id, const limits_enter_in *in, limits_enter_out *out);
    void (*leave)(limits_state *st, int64_t key_id, uint64_t slot);
    /* 0 (out->refused says whether it fits), -1 ledger or Redis failed
     * (*redis_failed tells which). */
    int (*reserve)(limits_state *st, int64_t key_id, const limits_quota_in *in, limits_quota_out *out,
                   bool *redis_failed);
    /* n files reserved in the periods of q are not used after all. */
    void (*release)(limits_state *st, int64_t key_id, const limits_quota_in *q, int64_t n);
    /* The ledger has taken files and tokens for a request that reserved n. */
    void (*commit)(limits_state *st, int64_t key_id, const limits_quota_in *q, int64_t n, int64_t files,
                   int64_t tokens);
    /* Ready to count: NULL, or why not ("redis down"). Never waits: what
     * the backend last found. */
    const char *(*problem)(limits_state *st);
    void (*free)(limits_state *st);
} limits_state_ops;

struct limits_state {
    const limits_state_ops *ops;
};

limits_state *limits_local_new(void);

#endif
