/* Types shared by the HTTP front's files: the server, a request's state and
 * phases, and the functions the route handlers share. */
#ifndef SIGHT_HTTP_INTERNAL_H
#define SIGHT_HTTP_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "http/form.h"
#include "http/front/front.h"
#include "keys/keystore.h"
#include "limits/limiter.h"
#include "metrics/metrics.h"
#include "pipeline/pipeline.h"
#include "http/routes.h"
#include "http/server.h"

struct server {
    sight_config cfg;
    keystore *keys;
    pipeline *pipe;
    front *front; /* the HTTP engine behind front.h: connections, deadlines, waits */
    unsigned port;
    atomic_int inflight; /* prediction requests being received or streamed */
    atomic_bool shutting_down;
    struct capacity *cap;      /* --max-inflight: requests being received or worked on */
    int abort_fd;              /* eventfd, readable once streams must end now */
    atomic_bool aborting;      /* set just before abort_fd becomes readable */
    struct key_checker *kc;    /* API key checks off the HTTP threads */
    struct store_probe *probe; /* the key store's reachability, for /readyz */
    struct key_cache *cache;   /* verified keys: a known key costs no store query */
    bool tls;
    json_t *models;                   /* what serves detection and OCR, for /readyz */
    limiter *lim;                     /* per-key limits and the usage ledger */
    struct model_registry *reg;       /* detection models by name; NULL: detection off */
    _Atomic(struct job_store *) jobs; /* NULL: jobs unavailable (jobs_routes.c answers 501) */
};

/* Where a request is (http_req.phase). Each call of the handler resumes
 * the request at its phase; a phase either moves it on or waits (for more
 * of the body, or a check running off the HTTP thread with the connection
 * suspended). Every route goes through them in this order, skipping those
 * it has no use for (docs/internals/README.md lists who runs which). */
typedef enum {
    PH_NEW,      /* just allocated, in the handler's first call (the front holds the request before) */
    PH_ADMIT,    /* the first call: the route's admission (shutdown, capacity, type, size) */
    PH_HEAD_KEY, /* a header key checked before any body is read, with its rate and concurrency */
    PH_BODY,     /* the body arrives (or a refused one is read and dropped) */
    PH_KEY,      /* the body is in: a header key (or ?api_key=) not decided yet */
    PH_PARSE,    /* what was kept of the body is parsed */
    PH_FORM_KEY, /* a key from the body (form or JSON api_key) */
    PH_LIMITS,   /* the form's checks and the key's quotas: whether the work may start */
    PH_RESPOND,  /* the answer is being made (a batch collects its events, a GET its store work) */
    PH_DONE      /* a response is queued, or the connection refused: the rest is dropped */
} http_phase;

/* What one phase's step did. */
typedef enum {
    STEP_NEXT,  /* moved on: run the request's next phase now */
    STEP_AGAIN, /* waits: the handler is called again (more body, or on resume) */
    STEP_DONE,  /* answered, or a refusal deferred until the body is read */
    STEP_CLOSE  /* end the connection (a raw refusal, or a response that could not be queued) */
} step;

static inline step step_of(front_result r) { return r == FRONT_OK ? STEP_DONE : STEP_CLOSE; }
static inline front_result step_result(step s) { return s == STEP_CLOSE ? FRONT_CLOSE : FRONT_OK; }

/* A batch's events, folded into its answer (predict_answer.c). */
typedef struct batch_result batch_result;

/* Per-HTTP-request state: the handler's pointer (front.h). */
typedef struct http_req {
    struct server *srv;
    const route *route; /* never NULL once the handler ran (routes.h) */
    http_phase phase;
    char request_id[40];
    double t_start;    /* clock_ms() when the request began (DeepStack's processMs) */
    char ds_model[72]; /* DEEPSTACK_CUSTOM{model}: the model ("" = the default) */
    unsigned status;   /* of the response queued, for metrics */
    bool counted;      /* holds one of srv->inflight */
    /* its place in --max-inflight (capacity.h), until the pipeline's request takes it */
    struct cap_ticket *ticket;

    /* v1 upload */
    struct mp_parser *mp; /* multipart bodies */
    bool mp_failed;       /* the body is not valid multipart */
    bool urlencoded;      /* application/x-www-form-urlencoded: kept whole in raw */
    buf raw;              /* url-encoded or JSON (ROUTE_JSON): capped at MAX_URLENCODED or the body limit */
    bool too_large;       /* over --max-body-size: read on, dropped */
    bool expect_continue; /* the client waits for 100 Continue before sending the body */
    sight_error deferred; /* a refusal to send once the body is read (see refuse()); status 0: none */
    form form;
    int64_t body_bytes;
    char header_key[KEYSTORE_KEY_MAX + 2]; /* from Authorization / X-API-Key */
    bool has_header_key;
    bool close_after;         /* answer with Connection: close (a refusal under TLS) */
    struct kc_job *key_job;   /* the key's check, running or done (auth.c) */
    struct kc_job *limit_job; /* its rate and concurrency, when checked off the HTTP thread */
    struct kc_job *work_job;  /* the route's store work: quotas, a usage report, a jobs call */
    /* batch routes: the events collected so far, the connection suspended between them */
    predict_request *batch_pr;
    front_wait *batch_slot;
    batch_result *batch; /* predict_answer.c */
    bool batch_ended;

    /* per-key limits (limits/limiter.h) */
    int64_t key_id;                   /* once the key is verified (auth.c) */
    key_limits key_own;               /* its own limits, as stored */
    key_limits limits;                /* the key's effective limits */
    bool entered;                     /* holds one of the key's concurrency slots: its key is admitted */
    uint64_t limit_slot;              /* which (limiter_leave) */
    int64_t retry_after;              /* for a 429 of the limiter; 0: --retry-after */
    int64_t reserved;                 /* quota reserved and not yet handed to the request */
    bool llm_refused;                 /* the LLM-token quota is spent */
    char rl_policy[96], rl_state[96]; /* RateLimit-Policy and RateLimit ("" none) */
} http_req;

/* Whether the body has been read (to its end, or dropped). */
static inline bool req_body_read(const http_req *hr) { return hr->phase > PH_BODY; }

/* reply.c: every response goes through these, so each carries X-Request-Id;
 * the error bodies are in the route's dialect (route->error_body). */
front_result reply_body(front_conn *c, http_req *hr, unsigned status, const char *content_type,
                        char *body, size_t len);
front_result reply_error(front_conn *c, http_req *hr, unsigned status, const char *code,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
front_result reply_queue(front_conn *c, http_req *hr, unsigned status, front_resp *r);
/* Refuses a prediction request. Answering before the body is read means
 * closing the connection with the body unread, and a client still sending
 * then sees a reset instead of the answer. So unless the client waits for
 * 100-continue (it has sent nothing yet) or the body is over the limit (not
 * worth reading), the refusal is kept in hr->deferred, the request moved to
 * PH_BODY, the body read to its end and dropped, and the answer goes out
 * then (server.c's handler). */
front_result reply_refuse(front_conn *c, http_req *hr, unsigned status, const char *code,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Refuses now, before any of the body is read, and ends the connection
 * (FRONT_CLOSE): written straight to the socket, then a lingering close
 * that drops what the client still sends for up to a second. Under TLS, or
 * when the client waits for 100-continue, the engine sends it with
 * Connection: close (FRONT_OK). For a limit's 429, which the client must see
 * before it uploads a body for nothing. */
front_result reply_refuse_now(front_conn *c, http_req *hr, unsigned status, const char *code,
                              const char *msg);
/* A refusal of the limiter: 429 with its code and Retry-After (now: reply_refuse_now). */
front_result reply_limited(front_conn *c, http_req *hr, const limit_verdict *v, bool now);

/* auth.c: the one authentication step, whatever carries the key. */
/* The key of the headers (Authorization: Bearer, else X-API-Key), or with
 * query the ?api_key= of the URL after them; NULL if none is sent. */
const char *auth_request_key(front_conn *c, bool query);
/* Checks key: from the key cache, else on a work-queue thread with the
 * connection suspended (STEP_AGAIN: call again with the same key on
 * resume). STEP_NEXT once decided, *valid telling (hr->key_id and
 * hr->key_own set); STEP_DONE or STEP_CLOSE once refused (401 missing or
 * invalid, 503 store; through reply_refuse). tentative (a header key before
 * the body): a key that is not valid is not refused but left for a later
 * check (STEP_NEXT, !*valid), which reuses the verdict. */
step auth_check(front_conn *c, http_req *hr, const char *key, bool tentative, bool *valid);

/* predict.c: the prediction routes (v1/v2, stream/batch, DeepStack's), as
 * one loop over the request's phases; predict_key.c: their key phases. */
front_result predict_handle(front_conn *c, http_req *hr, const route_call *call);
void predict_cleanup(http_req *hr);
/* The batch routes' answer: {"result": {"files": [...], "complete": {...}}, "code": 0}. */
front_result predict_batch_answer(front_conn *c, http_req *hr, json_t *files, json_t *complete);
/* The key phase: authenticates key (now and tentatively: at the head, before
 * the body) and enters the key's rate and concurrency; STEP_NEXT once
 * admitted, or (tentative) left undecided for PH_KEY. */
step predict_key(front_conn *c, http_req *hr, const char *key, bool at_head);

/* The route handlers (routes.c's table). status_routes.c: GET /healthz,
 * /readyz, /metrics and the playground's files; usage.c: GET /api/v1/usage;
 * models.c: GET /api/v1/models; jobs_routes.c: every /api/v1/jobs route. */
front_result healthz_handle(front_conn *c, http_req *hr, const route_call *call);
front_result readyz_handle(front_conn *c, http_req *hr, const route_call *call);
front_result metrics_handle(front_conn *c, http_req *hr, const route_call *call);
front_result static_handle(front_conn *c, http_req *hr, const route_call *call);
front_result usage_handle(front_conn *c, http_req *hr, const route_call *call);
front_result models_handle(front_conn *c, http_req *hr, const route_call *call);
front_result jobs_handle(front_conn *c, http_req *hr, const route_call *call);

/* jobs_stream.c: a job's events (following it when events) or results as
 * NDJSON, after seq or index. */
struct job_store;
front_result jobs_stream_start(front_conn *c, http_req *hr, struct job_store *js, const char *id,
                               bool events, int64_t after);

#endif
