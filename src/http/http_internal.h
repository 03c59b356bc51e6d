/* Types shared by the HTTP front's files (server.c, predict.c, reply.c). */
#ifndef SIGHT_HTTP_INTERNAL_H
#define SIGHT_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "http/conn_guard.h"
#include "http/form.h"
#include "keys/keystore.h"
#include "limits/limiter.h"
#include "metrics/metrics.h"
#include "pipeline/pipeline.h"
#include "http/server.h"

struct server {
    sight_config cfg;
    keystore *keys;
    pipeline *pipe;
    struct MHD_Daemon *daemon;
    unsigned port;
    atomic_int inflight; /* prediction requests being received or streamed */
    atomic_bool shutting_down;
    struct capacity *cap;      /* --max-inflight: requests being received or worked on */
    int abort_fd;              /* eventfd, readable once streams must end now */
    conn_guard *guard;         /* header and body deadlines */
    atomic_bool aborting;      /* set just before abort_fd becomes readable */
    struct conn_waiter *cw;    /* resumes suspended streams and batches */
    struct key_checker *kc;    /* API key checks off the HTTP threads */
    struct store_probe *probe; /* the key store's reachability, for /readyz */
    struct key_cache *cache;   /* verified keys: a known key costs no store query */
    struct acceptor *acc;      /* the listening socket and its accept thread */
    atomic_int open_conns;     /* connections the daemon holds (on_connection) */
    bool tls;
    char *tls_cert_pem, *tls_key_pem; /* kept for the daemon's life */
    json_t *models;                   /* what serves detection and OCR, for /readyz */
    limiter *lim;                     /* per-key limits and the usage ledger */
    struct model_registry *reg;       /* detection models by name; NULL: detection off */
    _Atomic(struct job_store *) jobs; /* NULL: jobs unavailable (jobs_routes.c answers 501) */
};

/* What a request's URL asks for (server.c's route_of). */
typedef enum {
    ROUTE_PREDICT_V1,
    ROUTE_PREDICT_V2,
    ROUTE_BATCH_V1,
    ROUTE_BATCH_V2,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_WEB,
    ROUTE_USAGE,
    ROUTE_DEEPSTACK, /* POST /v1/vision/detection and /v1/vision/custom/{model} */
    ROUTE_MODELS,    /* GET /api/v1/models */
    ROUTE_JOBS,      /* /api/v1/jobs and below (jobs_routes.c) */
    ROUTE_OTHER
} http_route;

/* The prediction routes (the four and DeepStack's): POST only, with a body. */
static inline bool route_is_predict(http_route r)
{
    return r == ROUTE_PREDICT_V1 || r == ROUTE_PREDICT_V2 || r == ROUTE_BATCH_V1 || r == ROUTE_BATCH_V2 ||
        r == ROUTE_DEEPSTACK;
}

/* Per-HTTP-request state, kept in libmicrohttpd's request closure. */
typedef struct http_req {
    struct server *srv;
    http_route route;
    char request_id[40];
    double t_start;        /* clock_ms() when the request began (DeepStack's processMs) */
    char ds_model[72];     /* /v1/vision/custom/{model}: the model ("" = the default) */
    cg_conn *conn;         /* the connection's deadline tracking (may be NULL) */
    unsigned status;       /* of the response queued, for metrics */
    bool responded;        /* a response is queued: swallow the rest of the upload */
    bool counted;          /* holds one of srv->inflight */
    bool started;          /* the handler has run (the request line alone may have arrived) */
    char target_error[80]; /* what is wrong with the raw request target ("" if nothing) */
    uintptr_t target_at;   /* where libmicrohttpd had the raw target, and its length */
    size_t target_len;
    /* its place in --max-inflight (capacity.h), until the pipeline's request takes it */
    struct cap_ticket *ticket;

    /* v1 upload */
    struct mp_parser *mp; /* multipart bodies */
    bool mp_failed;       /* the body is not valid multipart */
    bool urlencoded;      /* application/x-www-form-urlencoded: kept whole in raw */
    bool json_body;       /* v2: application/json, kept whole in raw */
    bool batch;           /* answer once with every result instead of streaming */
    buf raw;              /* capped at MAX_URLENCODED or the body limit */
    bool too_large;       /* over --max-body-size: read on, dropped */
    bool expect_continue; /* the client waits for 100 Continue before sending the body */
    sight_error deferred; /* a refusal to send once the body is read (see refuse()); status 0: none */
    form form;
    bool body_read;
    int64_t body_bytes;
    char header_key[KEYSTORE_KEY_MAX + 2]; /* from Authorization / X-API-Key */
    bool has_header_key;
    bool close_after;         /* answer with Connection: close (a refusal under TLS) */
    struct kc_job *key_job;   /* the key's check, running or done */
    struct kc_job *limit_job; /* its rate and concurrency, when checked off the HTTP thread */
    struct kc_job *quota_job; /* its quotas, likewise (predict.c's decide) */
    bool head_wait;           /* suspended for the header key's check (or its limits') before any body is read */
    bool key_ok;
    bool parsed;
    /* batch routes: the lines collected so far, the connection suspended between them */
    predict_request *batch_pr;
    struct cw_slot *batch_slot;
    buf batch_text;
    bool batch_ended;

    /* per-key limits (limits/limiter.h) */
    int64_t key_id;                   /* once the key is verified */
    key_limits limits;                /* the key's effective limits */
    bool entered;                     /* holds one of the key's concurrency slots */
    uint64_t limit_slot;              /* which (limiter_leave) */
    int64_t retry_after;              /* for a 429 of the limiter; 0: --retry-after */
    int64_t reserved;                 /* quota reserved and not yet handed to the request */
    bool llm_refused;                 /* the LLM-token quota is spent */
    char rl_policy[96], rl_state[96]; /* RateLimit-Policy and RateLimit ("" none) */
} http_req;

/* reply.c: every response goes through these, so each carries X-Request-Id. */
enum MHD_Result reply_body(struct MHD_Connection *c, http_req *hr, unsigned status, const char *content_type,
                           char *body, size_t len);
enum MHD_Result reply_error(struct MHD_Connection *c, http_req *hr, unsigned status, const char *code,
                            const char *fmt, ...) __attribute__((format(printf, 5, 6)));
enum MHD_Result reply_queue(struct MHD_Connection *c, http_req *hr, unsigned status, struct MHD_Response *r);
/* Refuses a prediction request. Answering before the body is read means
 * closing the connection with the body unread, and a client still sending
 * then sees a reset instead of the answer. So unless the client waits for
 * 100-continue (it has sent nothing yet) or the body is over the limit (not
 * worth reading), the refusal is kept in hr->deferred, the body read to its
 * end and dropped, and the answer goes out then (server.c's handler). */
enum MHD_Result reply_refuse(struct MHD_Connection *c, http_req *hr, unsigned status, const char *code,
                             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Refuses now, before any of the body is read, and ends the connection
 * (MHD_NO): written straight to the socket, then a lingering close that
 * drops what the client still sends for up to a second. Under TLS, or when
 * the client waits for 100-continue, libmicrohttpd sends it with
 * Connection: close (MHD_YES). For a limit's 429, which the client must see
 * before it uploads a body for nothing. */
enum MHD_Result reply_refuse_now(struct MHD_Connection *c, http_req *hr, unsigned status, const char *code,
                                 const char *msg);

/* predict.c: the four prediction routes (v1/v2, stream/batch) share it. */
enum MHD_Result predict_handle(struct MHD_Connection *c, http_req *hr, const char *upload_data,
                               size_t *upload_data_size, bool first_call);
void predict_cleanup(http_req *hr);

/* predict_key.c: the request's API key and the key's limits. */
void predict_header_key(struct MHD_Connection *c, http_req *hr);
/* The header key at the handler's first call (hr->head_wait while it waits). */
enum MHD_Result predict_key_at_head(struct MHD_Connection *c, http_req *hr);
/* Checks key (the form's, or a header key not decided at the head):
 * MHD_YES with *ok once valid and admitted; MHD_YES with !*ok while waiting
 * (the handler is called again on resume) or once refused. */
enum MHD_Result predict_check_key(struct MHD_Connection *c, http_req *hr, const char *key, bool *ok);
/* A refusal of the limiter: 429 with its code and Retry-After. */
enum MHD_Result predict_refuse_limited(struct MHD_Connection *c, http_req *hr, const limit_verdict *v);

/* deepstack.c: the answer to POST /v1/vision/detection from its file's
 * done or error line, and DeepStack's error body. */
enum MHD_Result deepstack_reply(struct MHD_Connection *c, http_req *hr, const json_t *ev);
char *deepstack_error_body(unsigned status, const char *message, size_t *len);

/* usage.c: GET /api/v1/usage; the key of a GET (headers or ?api_key=). */
enum MHD_Result usage_handle(struct MHD_Connection *c, http_req *hr);
const char *get_request_key(struct MHD_Connection *c);
/* The GET's key: 1 valid (from the key cache, or checked on a key_check
 * thread); 0 refused (401/503 queued, *ret); -1 waiting with the connection
 * suspended (*ret MHD_YES; the handler is called again on resume). */
int get_key_check(struct MHD_Connection *c, http_req *hr, int64_t *id, key_limits *own, enum MHD_Result *ret);

/* status_routes.c: GET /healthz, /readyz, /metrics and the playground's files. */
enum MHD_Result healthz_handle(struct MHD_Connection *c, http_req *hr);
enum MHD_Result readyz_handle(struct MHD_Connection *c, http_req *hr);
enum MHD_Result metrics_handle(struct MHD_Connection *c, http_req *hr);
enum MHD_Result static_handle(struct MHD_Connection *c, http_req *hr, const char *url);

/* models.c: GET /api/v1/models. */
enum MHD_Result models_handle(struct MHD_Connection *c, http_req *hr);

/* jobs_routes.c: every /api/v1/jobs route; jobs_stream.c: a job's events
 * (following it when events) or results as NDJSON, after seq or index. */
struct job_store;
enum MHD_Result jobs_handle(struct MHD_Connection *c, http_req *hr, const char *url, const char *method,
                            const char *upload_data, size_t *upload_data_size, bool first);
enum MHD_Result jobs_stream_start(struct MHD_Connection *c, http_req *hr, struct job_store *js, const char *id,
                                  bool events, int64_t after);

#endif
