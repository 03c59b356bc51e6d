/* The one authentication step. Every route that takes a key checks it here,
 * whatever carried it (a header, ?api_key=, a form field, a JSON body's
 * api_key): from the key cache (key_cache.h) at once on the HTTP thread,
 * else on a work-queue thread with the connection suspended. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/http_internal.h"
#include "http/key_check.h"
#include "keys/key_cache.h"

const char *auth_request_key(front_conn *c, bool query)
{
    const char *auth = front_header(c, "Authorization");
    if (auth && !strncasecmp(auth, "Bearer ", 7)) {
        auth += 7;
        while (*auth == ' ') auth++;
        return auth;
    }
    const char *v = front_header(c, "X-API-Key");
    return v || !query ? v : front_query(c, "api_key");
}

step auth_check(front_conn *c, http_req *hr, const char *key, bool tentative, bool *valid)
{
    server *s = hr->srv;
    *valid = false;
    if (!key || !*key)
        return step_of(reply_refuse(c, hr, 401, "missing_api_key", "no API key: send %s",
                                    hr->route->key_hint ? hr->route->key_hint : "X-API-Key"));
    key_verdict v;
    if (!hr->key_job && key_cache_get(s->cache, key, &hr->key_id, &hr->key_own)) {
        metrics_key_lookup(true);
        v = KEY_VALID;
    } else {
        if (!hr->key_job) hr->key_job = kc_submit(s->kc, key);
        if (!hr->key_job) {
            /* Out of memory or stopping: at the head, decided once the body
             * is in; after it, inline. */
            if (tentative) return STEP_NEXT;
            v = keystore_verify_limits(s->keys, key, &hr->key_id, &hr->key_own);
        } else {
            if (!kc_wait(hr->key_job, c)) return STEP_AGAIN;
            v = kc_verdict(hr->key_job);
            kc_key(hr->key_job, &hr->key_id, &hr->key_own);
        }
    }
    *valid = v == KEY_VALID;
    /* At the head an unknown key, or a store error, is answered as before,
     * once the body is read: this is about limits, not about telling a
     * caller without a key anything sooner. */
    if (*valid || tentative) return STEP_NEXT;
    if (v == KEY_UNKNOWN) return step_of(reply_refuse(c, hr, 401, "invalid_api_key", "the API key is unknown or revoked"));
    return step_of(reply_refuse(c, hr, 503, "key_store_unavailable", "the API key store cannot be read; try again"));
}
