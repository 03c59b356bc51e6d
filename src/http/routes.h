/* The route table: every URL the front serves, with what the dispatcher
 * (server.c), the metrics and the error bodies (reply.c) need to know of
 * it. The one place that lists the routes. */
#ifndef SIGHT_HTTP_ROUTES_H
#define SIGHT_HTTP_ROUTES_H

#include "http/front/front.h"
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "metrics/metrics.h"

struct http_req;

/* What the handler is called with (front.h's handler call's arguments). */
typedef struct {
    const char *url, *method;
    const char *upload;  /* a chunk of the body (routes with ROUTE_BODY) */
    size_t *upload_size; /* its length; the handler sets it to what it left unread (0) */
} route_call;

typedef front_result (*route_fn)(front_conn *c, struct http_req *hr, const route_call *call);
/* An error body in the route's dialect; may change *status (DeepStack knows no 422). */
typedef char *(*error_body_fn)(unsigned *status, const char *code, const char *message, size_t *len);
/* A batch route's one answer from its files' results (in request order) and the complete line. */
typedef front_result (*batch_answer_fn)(front_conn *c, struct http_req *hr, json_t *files,
                                        json_t *complete);

typedef enum {
    MATCH_EXACT,  /* path, exactly */
    MATCH_PREFIX, /* path and anything after it (/v1/vision/custom/{model}) */
    MATCH_TREE,   /* path exactly, or path "/" and anything after (/api/v1/jobs/...) */
    MATCH_STATIC, /* one of the playground's embedded files (static_files.h) */
    MATCH_ANY     /* the last entry: no route, 404 */
} route_match;

/* Where its API key comes from, and who checks it. */
typedef enum {
    KEY_NONE,  /* no key */
    KEY_FIRST, /* a header or ?api_key=, checked by the dispatcher before the handler runs */
    KEY_OWN    /* the handler runs the authentication step itself: the key may be in the body */
} route_key;

enum {
    ROUTE_BODY = 1,       /* the handler takes the body as it arrives; others' is read and dropped */
    ROUTE_PREDICT = 2,    /* prediction: its refusals before the body close the connection */
    ROUTE_JSON = 4,       /* v2: a JSON body of URLs (else a multipart or url-encoded form) */
    ROUTE_ANY_METHOD = 8, /* the handler decides which methods it takes (its 405 too) */
    ROUTE_DEEPSTACK = 16, /* DeepStack's form and its /v1/vision/custom/{model} */
};

typedef struct route {
    const char *path;
    route_match match;
    /* The methods taken (a comma list: what the Allow header of a 405 says). */
    const char *allow;
    metrics_route metric;
    route_fn handler; /* NULL: no such endpoint (404) */
    unsigned flags;
    route_key key;
    const char *key_hint;         /* where the key may be sent, for the 401 missing_api_key */
    error_body_fn error_body;     /* its error dialect */
    batch_answer_fn batch_answer; /* prediction routes that answer once; NULL: NDJSON stream */
} route;

/* The route for url; never NULL (the not-found entry, whose handler is NULL). */
const route *route_find(const char *url);
/* Whether method is one of the route's (ROUTE_ANY_METHOD: all). */
bool route_allows(const route *r, const char *method);

#endif
