#include "limits/redis_client.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <openssl/evp.h>

#include "util/clock.h"
#include "util/log.h"

/* Connections: as many as threads call at once, up to POOL_MAX; a caller
 * past that waits for one (a limit check is one short round trip). */
#define POOL_MAX 16
/* The breaker: after a failure, no attempt for BACKOFF_MIN_MS, doubling up
 * to BACKOFF_MAX_MS while probes keep failing. */
#define BACKOFF_MIN_MS 250.0
#define BACKOFF_MAX_MS 2000.0

struct redis_client {
    redis_url url;
    char where[300];
    int timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    redisContext *idle[POOL_MAX]; /* connected, free */
    int nidle, nbusy;
    /* The breaker, under mu. */
    bool down;
    bool probing;       /* one caller is trying Redis again; the others fail fast */
    double retry_at_ms; /* clock_ms() before which nobody tries */
    double backoff_ms;
    atomic_bool up;
};

static int hexval(int c) { return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10
                                                                     : -1; }

/* Percent-decodes s[0..n) into out (size cap). -1 when bad or too long. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap) return -1;
        out[o++] = (char)c;
    }
    out[o] = 0;
    return 0;
}

int redis_url_parse(const char *url, redis_url *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    const char *p = url;
    if (strncmp(p, "redis://", 8) != 0) {
        snprintf(err, err_len, "--redis wants redis://[:PASSWORD@]HOST:PORT[/DB]");
        return -1;
    }
    p += 8;
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@') at = q; /* the last @: a password may hold one encoded or not */
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon) {
            snprintf(err, err_len, "--redis: credentials must be :PASSWORD@ or USER:PASSWORD@");
            return -1;
        }
        if (pct_decode(p, (size_t)(colon - p), out->user, sizeof out->user) ||
            pct_decode(colon + 1, (size_t)(at - colon - 1), out->password, sizeof out->password)) {
            snprintf(err, err_len, "--redis: the user or password is badly encoded or too long");
            return -1;
        }
        p = at + 1;
    }
    const char *hend;
    if (*p == '[') {
        hend = memchr(p, ']', (size_t)(end - p));
        if (!hend) {
            snprintf(err, err_len, "--redis: unclosed [ in the host");
            return -1;
        }
        p++;
    } else {
        hend = memchr(p, ':', (size_t)(end - p));
        if (!hend) hend = end;
    }
    size_t hl = (size_t)(hend - p);
    if (hl == 0 || hl >= sizeof out->host) {
        snprintf(err, err_len, "--redis: the host is empty or too long");
        return -1;
    }
    memcpy(out->host, p, hl);
    for (size_t i = 0; i < hl; i++)
        if (!isalnum((unsigned char)out->host[i]) && !strchr(".-_:", out->host[i])) {
            snprintf(err, err_len, "--redis: bad character in the host");
            return -1;
        }
    p = hend + (*hend == ']');
    if (p < end && *p == ':') {
        char *e;
        errno = 0;
        long port = strtol(p + 1, &e, 10);
        if (e == p + 1 || e != end || errno || port < 1 || port > 65535) {
            snprintf(err, err_len, "--redis: the port must be 1..65535");
            return -1;
        }
        out->port = (int)port;
    } else if (p != end) {
        snprintf(err, err_len, "--redis: unexpected text after the host");
        return -1;
    }
    if (*end == '/' && end[1]) {
        char *e;
        errno = 0;
        long db = strtol(end + 1, &e, 10);
        if (!isdigit((unsigned char)end[1]) || *e || errno || db < 0 || db > 100000) {
            snprintf(err, err_len, "--redis: the database must be a number (/0, /1, ...)");
            return -1;
        }
        out->db = (int)db;
    } else if (*end && strcmp(end, "/")) {
        snprintf(err, err_len, "--redis: query strings and fragments are not supported");
        return -1;
    }
    return 0;
}

void redis_script_init(redis_script *s)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(s->body, strlen(s->body), md, &n, EVP_sha1(), NULL);
    for (unsigned i = 0; i < n && i < 20; i++)
        snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
}

redis_client *redis_client_new(const redis_url *u, int timeout_ms)
{
    redis_client *rc = calloc(1, sizeof *rc);
    if (!rc) return NULL;
    rc->url = *u;
    rc->timeout_ms = timeout_ms;
    snprintf(rc->where, sizeof rc->where, "%s:%d/%d", u->host, u->port, u->db);
    pthread_mutex_init(&rc->mu, NULL);
    pthread_cond_init(&rc->cv, NULL);
    rc->backoff_ms = BACKOFF_MIN_MS;
    atomic_init(&rc->up, true);
    return rc;
}

void redis_client_free(redis_client *rc)
{
    if (!rc) return;
    for (int i = 0; i < rc->nidle; i++)
        redisFree(rc->idle[i]);
    pthread_cond_destroy(&rc->cv);
    pthread_mutex_destroy(&rc->mu);
    free(rc);
}

const char *redis_client_where(const redis_client *rc) { return rc->where; }
bool redis_client_up(redis_client *rc) { return atomic_load(&rc->up); }

/* A reply that is a plain success or an error, checked and freed. */
static bool cmd_ok(redisContext *c, const char *what, redisReply *r)
{
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r && !ok) log_error("redis: %s refused: %.200s", what, r->str);
    if (r) freeReplyObject(r);
    return ok && !c->err;
}

static redisContext *connect_one(redis_client *rc)
{
    struct timeval tv = {rc->timeout_ms / 1000, (rc->timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(rc->url.host, rc->url.port, tv);
    if (!c || c->err) {
        log_debug("redis: cannot connect to %s: %s", rc->where, c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) goto fail;
    if (rc->url.password[0]) {
        redisReply *r = rc->url.user[0] ? redisCommand(c, "AUTH %s %s", rc->url.user, rc->url.password)
                                        : redisCommand(c, "AUTH %s", rc->url.password);
        if (!cmd_ok(c, "AUTH", r)) goto fail;
    }
    if (rc->url.db && !cmd_ok(c, "SELECT", redisCommand(c, "SELECT %d", rc->url.db))) goto fail;
    return c;
fail:
    redisFree(c);
    return NULL;
}

/* A connection for this caller, or NULL: *busy false when the breaker is
 * open (nothing to give back), true when connecting failed (give it back).
 * *probe: this caller is the breaker's probe. */
static redisContext *take(redis_client *rc, bool *probe, bool *busy)
{
    *probe = *busy = false;
    pthread_mutex_lock(&rc->mu);
    if (rc->down && (rc->probing || clock_ms() < rc->retry_at_ms)) {
        pthread_mutex_unlock(&rc->mu);
        return NULL;
    }
    *busy = true;
    if (rc->down) *probe = rc->probing = true;
    while (!rc->nidle && rc->nbusy >= POOL_MAX)
        pthread_cond_wait(&rc->cv, &rc->mu);
    redisContext *c = rc->nidle ? rc->idle[--rc->nidle] : NULL;
    rc->nbusy++;
    pthread_mutex_unlock(&rc->mu);
    return c ? c : connect_one(rc);
}

/* Gives c back (NULL or broken: dropped) and moves the breaker. */
static void give(redis_client *rc, redisContext *c, bool failed, bool probe)
{
    if (c && (failed || c->err)) {
        redisFree(c);
        c = NULL;
        failed = true;
    }
    pthread_mutex_lock(&rc->mu);
    rc->nbusy--;
    if (c) rc->idle[rc->nidle++] = c;
    if (probe) rc->probing = false;
    if (failed) {
        if (!rc->down) log_warn("redis: %s does not answer; limit checks fail fast for a while", rc->where);
        else rc->backoff_ms = rc->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rc->backoff_ms * 2;
        rc->down = true;
        rc->retry_at_ms = clock_ms() + rc->backoff_ms;
        /* The others were connected to the same Redis: reconnect them too. */
        while (rc->nidle)
            redisFree(rc->idle[--rc->nidle]);
    } else if (rc->down) {
        log_info("redis: %s answers again", rc->where);
        rc->down = false;
        rc->backoff_ms = BACKOFF_MIN_MS;
    }
    atomic_store(&rc->up, !rc->down);
    pthread_cond_signal(&rc->cv);
    pthread_mutex_unlock(&rc->mu);
}

redisReply *redis_client_eval(redis_client *rc, const redis_script *s, int nkeys, const char **keys, int nargs,
                              const char **args)
{
    enum { MAXARGV = 16 };
    if (3 + nkeys + nargs > MAXARGV) return NULL;
    const char *argv[MAXARGV];
    int argc = 0;
    argv[argc++] = "EVALSHA";
    argv[argc++] = s->sha;
    char nk[12];
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[argc++] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[argc++] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[argc++] = args[i];
    bool probe, busy;
    redisContext *c = take(rc, &probe, &busy);
    if (!c) {
        if (busy) give(rc, NULL, true, probe);
        return NULL;
    }
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) {
        /* Not loaded (a fresh or restarted Redis): EVAL loads and runs it. */
        freeReplyObject(r);
        argv[0] = "EVAL";
        argv[1] = s->body;
        r = redisCommandArgv(c, argc, argv, NULL);
    }
    if (!r) {
        log_debug("redis: %s: %s", rc->where, c->errstr);
        give(rc, c, true, probe);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* Redis answered: the connection is fine, the script or the data not
         * (LOADING after a restart, OOM, a key of another type). */
        log_error("redis: script refused: %.300s", r->str);
        freeReplyObject(r);
        give(rc, c, false, probe);
        return NULL;
    }
    give(rc, c, false, probe);
    return r;
}

bool redis_client_ping(redis_client *rc)
{
    bool probe, busy;
    redisContext *c = take(rc, &probe, &busy);
    if (!c) {
        if (busy) give(rc, NULL, true, probe);
        return false;
    }
    redisReply *r = redisCommand(c, "PING");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    give(rc, c, !ok, probe);
    return ok;
}
