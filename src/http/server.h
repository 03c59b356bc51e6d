/* Sight's HTTP server over the front (front/front.h): routing, request ids, health and metrics
 * endpoints, graceful shutdown. The prediction endpoints live in predict.c. */
#ifndef SIGHT_HTTP_SERVER_H
#define SIGHT_HTTP_SERVER_H

#include <jansson.h>

#include "config/config.h"
#include "keys/keystore.h"
#include "limits/limiter.h"
#include "pipeline/pipeline.h"
#include "util/ticker.h"
#include "util/work_queue.h"

struct model_registry;

typedef struct server server;

/* Starts listening. keys, pipe, wq and tk stay owned by the caller and must
 * outlive the server: key checks and the server's store work run on wq, its
 * reaper, store probe and key-version poll on tk. models (copied; may be
 * NULL) says which models serve, shown by /readyz. Returns NULL (with a
 * logged reason) when it cannot bind. */
server *server_start(const sight_config *cfg, keystore *keys, limiter *limits, pipeline *pipe, const json_t *models,
                     struct model_registry *reg, work_queue *wq, ticker *tk);
/* The port actually bound (useful with --listen 127.0.0.1:0). */
unsigned server_port(const server *s);
/* Serves the jobs routes from js (owned by the caller; until then they
 * answer 501). */
struct job_store;
void server_set_jobs(server *s, struct job_store *js);
/* Stops accepting, lets running streams finish for up to the configured
 * shutdown timeout, then ends the rest and frees everything. */
void server_shutdown(server *s);

#endif
