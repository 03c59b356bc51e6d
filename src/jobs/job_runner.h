/* Runs job items on this node: one thread claims items from the job store
 * under a lease, hands each to the pipeline as a one-file v2 request (the
 * same fetcher, address policy and stages as a stream), renews the leases
 * while they run, and commits each outcome (job_store_finish). It holds at
 * most `slots` items at once (about the workers), so that a stream
 * request finds a worker about to be free rather than the whole job ahead
 * of it. It also purges ended jobs past their retention. */
#ifndef SIGHT_JOBS_JOB_RUNNER_H
#define SIGHT_JOBS_JOB_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include "jobs/job_store.h"
#include "keys/keystore.h"
#include "limits/limiter.h"
#include "pipeline/pipeline.h"

typedef struct {
    job_store *js;
    pipeline *pipe;
    int slots;           /* items in flight at once */
    int64_t lease_ms;    /* --job-lease */
    int64_t retention_s; /* --job-retention */
    bool metering;       /* items' use goes to the usage ledger */
    /* Quotas count items as they run: each takes one image of its key's
     * quota before it starts (refused: that item's quota_exceeded error);
     * once the item's commit has put its use in the ledger, the limiter's
     * counters (Redis's, with --redis) take it (limiter_counted). NULL: no
     * quotas (--metering=false: no ledger, so jobs_routes.c refuses jobs
     * to keys with quotas). */
    limiter *lim;
    keystore *ks;
} job_runner_config;

typedef struct job_runner job_runner;

job_runner *job_runner_start(const job_runner_config *cfg);
/* Cancels the items in flight and gives their leases back (queued again,
 * for this node after a restart or for another), then joins the thread.
 * Call before the pipeline stops. Accepts NULL. */
void job_runner_stop(job_runner *r);

#endif
