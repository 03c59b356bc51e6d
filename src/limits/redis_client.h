/* A small Redis client for the limits' shared state (--redis), on hiredis
 * 0.14 (Debian bookworm): a pool of blocking connections, each used by one
 * thread at a time, with short connect and command timeouts and a circuit
 * breaker, so that a slow or stopped Redis costs a request at most one
 * timeout and then fails fast until a probe finds it back. */
#ifndef SIGHT_LIMITS_REDIS_CLIENT_H
#define SIGHT_LIMITS_REDIS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

typedef struct {
    char host[256];
    int port;
    char user[128];     /* "" = the default user (AUTH with the password alone) */
    char password[256]; /* "" = no AUTH */
    int db;             /* SELECT; 0 = the default */
} redis_url;

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], user and password
 * percent-decoded, HOST a name, IPv4 or [IPv6]. 0, or -1 with err set (the
 * message never contains the password). */
int redis_url_parse(const char *url, redis_url *out, char *err, size_t err_len);

typedef struct redis_client redis_client;

/* A Lua script, loaded by EVALSHA (EVAL when Redis answers NOSCRIPT). */
typedef struct {
    const char *body;
    char sha[41]; /* filled by redis_script_init */
} redis_script;
void redis_script_init(redis_script *s);

/* timeout_ms applies to connecting and to each command. Connects lazily: no
 * Redis at start is not an error (the first requests find it down). */
redis_client *redis_client_new(const redis_url *u, int timeout_ms);
void redis_client_free(redis_client *rc);

/* Runs s with keys and args (strings). Returns the reply (freeReplyObject)
 * or NULL when Redis cannot answer now: down (breaker open), timed out,
 * closed, or an error reply (logged). */
redisReply *redis_client_eval(redis_client *rc, const redis_script *s, int nkeys, const char **keys, int nargs,
                              const char **args);

/* PING (fails at once while the breaker is open): true when Redis answers. */
bool redis_client_ping(redis_client *rc);
/* Whether the last command reached Redis (no command yet: true). */
bool redis_client_up(redis_client *rc);
/* Where it connects, for logs: "HOST:PORT/DB" (never the password). */
const char *redis_client_where(const redis_client *rc);

#endif
