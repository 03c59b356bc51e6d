/* The limits' state in Redis, shared by every node (see limits_redis.c). */
#ifndef SIGHT_LIMITS_LIMITS_REDIS_H
#define SIGHT_LIMITS_LIMITS_REDIS_H

#include "limits/limits_state.h"
#include "limits/redis_client.h"
#include "util/ticker.h"

/* timeout_ms: for connecting and for each command. A chore of tk (on its
 * work queue) pings Redis and refreshes the leases. NULL when out of
 * memory; Redis unreachable at start is not an error. */
limits_state *limits_redis_new(const redis_url *u, int timeout_ms, ticker *tk);

#endif
