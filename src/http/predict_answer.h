/* predict_answer.c: a prediction request's answer once its work is built. */
#ifndef SIGHT_HTTP_PREDICT_ANSWER_H
#define SIGHT_HTTP_PREDICT_ANSWER_H

#include "http/http_internal.h"

/* Answers 200 and streams pr's events as the pipeline produces them (takes pr). */
front_result predict_start_stream(front_conn *c, http_req *hr, predict_request *pr);
/* Submits pr as a batch (takes pr) and moves the request to PH_RESPOND. */
step predict_start_batch(front_conn *c, http_req *hr, predict_request *pr);
/* PH_RESPOND: collects the batch's events, the connection suspended while
 * none is queued (STEP_AGAIN), then answers with the route's batch_answer. */
step predict_batch_continue(front_conn *c, http_req *hr);
/* What a batch collected (hr->batch); NULL is fine. */
void predict_batch_free(batch_result *b);

#endif
