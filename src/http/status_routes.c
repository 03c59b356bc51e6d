/* The GET routes that answer from what the process holds, never waiting on
 * anything (an HTTP thread runs them): /healthz, /readyz (from the probes'
 * cached answers), /metrics and the playground's embedded files. */
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
#include "http/static_files.h"
#include "keys/store_probe.h"
#include "util/json_out.h"

static front_result reply_text(front_conn *c, http_req *hr, unsigned status, const char *ctype,
                               const char *text)
{
    char *body = strdup(text);
    if (!body) return FRONT_CLOSE;
    return reply_body(c, hr, status, ctype, body, strlen(body));
}

front_result readyz_handle(front_conn *c, http_req *hr, const route_call *call)
{
    (void)call;
    if (atomic_load(&hr->srv->shutting_down))
        return reply_error(c, hr, 503, "shutting_down", "the server is shutting down");
    char why[160];
    if (limiter_ledger_health(hr->srv->lim, why, sizeof why) != 0)
        return reply_error(c, hr, 503, "ledger_unavailable", "%s", why);
    int64_t n;
    /* The store's reachability as checked within the last second by its
     * probe thread: a load balancer's probes cost no query each. */
    if (store_probe_get(hr->srv->probe, &n) != 0)
        return reply_error(c, hr, 503, "key_store_unavailable", "the API key store cannot be read");
    /* --redis: what the last command found, the limiter's probe PING at
     * most a second ago; not ready only when limited keys would be refused
     * (deny). */
    const char *redis, *redis_why;
    if (!limiter_ready(hr->srv->lim, &redis, &redis_why))
        return reply_error(c, hr, 503, "limits_unavailable", "the limits' Redis cannot be reached (%s)", redis_why);
    size_t len;
    json_t *models = hr->srv->models ? json_incref(hr->srv->models) : json_object();
    char *body = json_line(json_pack("{s:s,s:I,s:o,s:s}", "status", "ready", "active_keys", (json_int_t)n, "models", models, "redis", redis), &len);
    return body ? reply_body(c, hr, 200, "application/json", body, len) : FRONT_CLOSE;
}

/* The playground's embedded files: no-cache with a strong ETag, so a browser
 * revalidates (304) and always sees the files of the running binary. */
front_result static_handle(front_conn *c, http_req *hr, const route_call *call)
{
    const char *url = call->url;
    const static_file *f = static_file_find(url);
    if (!f) return reply_error(c, hr, 404, "not_found", "no such endpoint: GET %.200s", url);
    const char *inm = front_header(c, "If-None-Match");
    bool fresh = static_file_etag_matches(f, inm);
    front_resp *r = fresh ? front_resp_buffer(NULL, 0, FRONT_BODY_STATIC)
                          : front_resp_buffer((void *)f->data, f->len, FRONT_BODY_STATIC);
    if (!r) return FRONT_CLOSE;
    if (!fresh) front_resp_header(r, "Content-Type", f->content_type);
    front_resp_header(r, "ETag", f->etag);
    front_resp_header(r, "Cache-Control", "no-cache");
    front_resp_header(r, "X-Content-Type-Options", "nosniff");
    if (!strncmp(f->content_type, "text/html", 9)) {
        /* Nothing from elsewhere: the page works offline and runs only its own script. */
        front_resp_header(r, "Content-Security-Policy",
                          "default-src 'self'; img-src 'self' blob: data: http: https:; media-src 'self' blob:; connect-src 'self'; "
                          "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
        front_resp_header(r, "Referrer-Policy", "no-referrer");
    }
    return reply_queue(c, hr, fresh ? 304 : 200, r);
}

front_result healthz_handle(front_conn *c, http_req *hr, const route_call *call)
{
    (void)call;
    return reply_text(c, hr, 200, "application/json", "{\"status\":\"ok\"}\n");
}

front_result metrics_handle(front_conn *c, http_req *hr, const route_call *call)
{
    (void)call;
    size_t len;
    char *body = metrics_render(&len);
    return body ? reply_body(c, hr, 200, "text/plain; version=0.0.4; charset=utf-8", body, len) : FRONT_CLOSE;
}
