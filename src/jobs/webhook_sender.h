/* Delivers the jobs' webhook messages (job_store.h), signed as Standard
 * Webhooks says: headers webhook-id, webhook-timestamp and
 * webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>", keyed
 * with the base64-decoded part of the job's secret after "whsec_". A
 * non-2xx answer, or none, is retried under the same webhook-id with
 * backoff (1 s, doubling, at most an hour apart) for up to a day. The URL
 * goes through the same address policy as v2 image URLs (--url-allow),
 * checked on the address actually connected to; redirects are not followed. */
#ifndef SIGHT_JOBS_WEBHOOK_SENDER_H
#define SIGHT_JOBS_WEBHOOK_SENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "jobs/job_store.h"
#include "util/ticker.h"

typedef struct webhook_sender webhook_sender;

/* allow: --url-allow; allow_http: --url-http. Due messages are looked for
 * every 250 ms by a chore of tk, and sent on its work queue. NULL (err) on a
 * bad allowlist. */
webhook_sender *webhook_sender_start(job_store *js, const char *allow, bool allow_http, ticker *tk, char *err,
                                     size_t err_len);
void webhook_sender_stop(webhook_sender *w); /* accepts NULL */

/* The Standard Webhooks signature "v1,<base64>" of id.timestamp.body with
 * secret ("whsec_<base64>"); 0, or -1 for a secret that is not of that form.
 * Also the check jobs_routes.c makes of a new job's secret (body NULL). */
int webhook_sign(const char *secret, const char *id, long long timestamp, const char *body, char *out, size_t out_len);

#endif
