/* Downloads the images a v2 request names, safely and concurrently.
 *
 * One thread drives a libcurl multi handle, so every URL of every request is
 * in flight at once and a slow server delays only its own file. Safety: only
 * http(s) (http can be switched off) and inline data:image URLs; the address
 * curl is about to connect to is checked in its open-socket callback (so the
 * address checked is the address used: no DNS rebinding window), on every
 * redirect hop; size and time are bounded. */
#ifndef SIGHT_FETCH_FETCHER_H
#define SIGHT_FETCH_FETCHER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef struct {
    const char *allow; /* allowlist, see addr_policy.h */
    bool allow_http;
    int connect_timeout_s, timeout_s;
    int64_t max_bytes;
    int max_redirects;
    const char *resolve; /* test aid: "host:port:addr,..." pins names like curl --resolve */
} fetch_config;

/* Called once per URL from the fetcher's thread (or at once for data: URLs
 * and refusals): on success err is NULL and data (malloc'd, caller's) holds
 * the body; on failure data is NULL and err says why. */
typedef void (*fetch_done_fn)(void *ctx, uint8_t *data, size_t len, const sight_error *err);

typedef struct fetcher fetcher;

fetcher *fetcher_start(const fetch_config *cfg, char *err, size_t err_len);
/* Aborts transfers still running (their callbacks report "cancelled") and joins the thread. */
void fetcher_stop(fetcher *f);

/* Starts fetching url; cancelled (may be NULL) aborts it when set. */
void fetcher_add(fetcher *f, const char *url, const atomic_bool *cancelled, fetch_done_fn done, void *ctx);

/* The file name a URL suggests: the last path segment, else the host. Caller frees. */
char *fetch_filename_from_url(const char *url);

#endif
