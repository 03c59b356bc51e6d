/* The limiter's calls that may wait (limiter_enter_may_block,
 * limiter_reserve_may_block: a Redis round trip, a read of the usage
 * ledger), run on a work-queue thread while the request waits with its
 * connection suspended (kc_wait), as its key check does. The job owns what
 * it got: a slot or a reservation the request never takes (it ended first)
 * is given back when the job is released. */
#ifndef SIGHT_HTTP_LIMIT_JOBS_H
#define SIGHT_HTTP_LIMIT_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include "http/key_check.h"
#include "limits/limiter.h"

/* limiter_enter for the key; NULL as kc_submit_call (the caller runs it inline). */
kc_job *lj_enter(key_checker *k, limiter *lm, int64_t key_id, const key_limits *eff);
/* Once kc_wait said done: limiter_enter's result and verdict; *slot is
 * the request's from here (limiter_leave). */
int lj_enter_result(kc_job *j, limit_verdict *v, uint64_t *slot);

/* limiter_reserve for nfiles; NULL as lj_enter. */
kc_job *lj_reserve(key_checker *k, limiter *lm, int64_t key_id, const key_limits *eff, int64_t nfiles);
/* Once done: limiter_reserve's result, *llm_ok and verdict; a reservation
 * (0) is the request's from here (limiter_release). */
int lj_reserve_result(kc_job *j, bool *llm_ok, limit_verdict *v);

#endif
