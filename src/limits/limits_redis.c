/* The limits' state in Redis (--redis), shared by every node. Each check is
 * one round trip running a Lua script, so it is atomic however many nodes
 * ask at once; time comes from Redis's TIME, so the nodes' clocks do not
 * matter for rates and slots. Keys carry the API key's id in a hash tag
 * ({id}), so a Redis Cluster keeps one key's counters on one shard, and
 * every key has a TTL, so nothing is left behind:
 *
 *   sight:{id}:rate   GCRA's theoretical arrival time (µs, Redis time);
 *                     TTL the time to refill.
 *   sight:{id}:conc   the open requests: a sorted set of NODE:SEQ members
 *                     scored by the time their lease ends. A node refreshes
 *                     its open requests' leases (LEASE_S) every third of a
 *                     lease, and each check first drops the expired ones:
 *                     a node that dies holds its slots a lease at most,
 *                     with no other node having to notice it. (Per-node
 *                     counters with a heartbeat would need a script to read
 *                     other nodes' keys, which a Cluster cannot shard.)
 *   sight:{id}:quota:images:FROM, sight:{id}:quota:llm:FROM
 *                     use in the period that begins on day FROM: committed
 *                     plus reserved files, committed LLM tokens. TTL the
 *                     period's end plus a day.
 *
 * Quotas and their consistency: a period's counter is seeded from the usage
 * ledger (SET NX) when it is missing, and then moves only in Redis:
 * reserve adds a request's files when they fit, commit corrects by what
 * was used, release takes back what was not. So every node sees every
 * admitted request at once (no over-admission across nodes). What it can
 * miss: a commit that lands between another node's ledger read and its SET
 * NX (the counter is then short by that request), and a node that dies
 * between reserve and commit leaves its reservation counted until the
 * period ends (the counter then over-counts: conservative). A request in
 * flight across a period boundary is reserved in one period and corrected
 * in the next. Redis restarted empty: the counters are seeded again from
 * the ledger, which holds everything committed. */
#include "limits/limits_redis.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"

#define LEASE_S 60
/* The readiness probe's period: /readyz reads what it found (no round trip
 * of its own on an HTTP thread). */
#define PROBE_S 1

/* ARGV: T (µs), limit (µs), cap, member, lease (µs). {0 admitted | 1 rate
 * | 2 concurrency, tat - now in µs}. */
static redis_script ENTER = {.body =
                                 "if redis.replicate_commands then redis.replicate_commands() end\n"
                                 "local t = redis.call('TIME')\n"
                                 "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
                                 "local T, limit, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
                                 "if cap > 0 then\n"
                                 "  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
                                 "  if redis.call('ZCARD', KEYS[2]) >= cap then return {2, 0} end\n"
                                 "end\n"
                                 "local ahead = 0\n"
                                 "if T > 0 then\n"
                                 "  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
                                 "  if tat < now then tat = now end\n"
                                 "  if tat + T - now > limit + 1 then return {1, tat - now} end\n"
                                 "  tat = tat + T\n"
                                 "  ahead = tat - now\n"
                                 "  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil(ahead / 1000) + 1)\n"
                                 "end\n"
                                 "if cap > 0 then\n"
                                 "  local lease = tonumber(ARGV[5])\n"
                                 "  redis.call('ZADD', KEYS[2], now + lease, ARGV[4])\n"
                                 "  redis.call('PEXPIRE', KEYS[2], math.ceil(lease / 1000) + 1000)\n"
                                 "end\n"
                                 "return {0, ahead}\n"};

static redis_script LEAVE = {.body = "return redis.call('ZREM', KEYS[1], ARGV[1])\n"};

/* A live request's lease, moved on (only while it is still there). */
static redis_script REFRESH = {.body =
                                   "if redis.replicate_commands then redis.replicate_commands() end\n"
                                   "if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end\n"
                                   "local t = redis.call('TIME')\n"
                                   "local lease = tonumber(ARGV[2])\n"
                                   "redis.call('ZADD', KEYS[1], tonumber(t[1]) * 1000000 + tonumber(t[2]) + lease, ARGV[1])\n"
                                   "redis.call('PEXPIRE', KEYS[1], math.ceil(lease / 1000) + 1000)\n"
                                   "return 1\n"};

/* KEYS: images, llm counters. ARGV: nfiles, image quota, its TTL (s), LLM
 * quota, its TTL, image seed, LLM seed (-1: none). {-1, need images seed,
 * need llm seed} or {0 reserved | 1 over, files, tokens}. */
static redis_script RESERVE = {.body =
                                   "local n, qi, ql = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])\n"
                                   "if qi > 0 and ARGV[6] ~= '-1' then redis.call('SET', KEYS[1], ARGV[6], 'NX', 'EX', ARGV[3]) end\n"
                                   "if ql > 0 and ARGV[7] ~= '-1' then redis.call('SET', KEYS[2], ARGV[7], 'NX', 'EX', ARGV[5]) end\n"
                                   "local files = qi > 0 and redis.call('GET', KEYS[1])\n"
                                   "local tokens = ql > 0 and redis.call('GET', KEYS[2])\n"
                                   "if (qi > 0 and not files) or (ql > 0 and not tokens) then\n"
                                   "  return {-1, (qi > 0 and not files) and 1 or 0, (ql > 0 and not tokens) and 1 or 0}\n"
                                   "end\n"
                                   "files, tokens = tonumber(files or '0'), tonumber(tokens or '0')\n"
                                   "if qi > 0 then\n"
                                   "  if files + n > qi then return {1, files, tokens} end\n"
                                   "  redis.call('INCRBY', KEYS[1], n)\n"
                                   "end\n"
                                   "return {0, files, tokens}\n"};

/* KEYS: images, llm counters. ARGV: files to add to the first (may be
 * negative), tokens to add to the second; only to counters that exist. */
static redis_script ADJUST = {.body =
                                  "local f, tk = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
                                  "if f ~= 0 and redis.call('EXISTS', KEYS[1]) == 1 then\n"
                                  "  if redis.call('INCRBY', KEYS[1], f) < 0 then redis.call('SET', KEYS[1], '0', 'KEEPTTL') end\n"
                                  "end\n"
                                  "if tk ~= 0 and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('INCRBY', KEYS[2], tk) end\n"
                                  "return 0\n"};

/* An open request holding a concurrency slot. */
typedef struct slot {
    struct slot *prev, *next;
    int64_t key_id;
    uint64_t seq;
} slot;

typedef struct {
    limits_state base;
    redis_client *rc;
    char node[24]; /* this process, in slot members */
    pthread_mutex_t mu;
    slot *open; /* under mu */
    uint64_t next_seq;
    ticker *tk;
    tk_chore *refresher;
    int ticks; /* refresher runs since the last lease refresh (one at a time) */
} redis_state;

static void key_name(char *out, size_t n, int64_t id, const char *what)
{
    snprintf(out, n, "sight:{%" PRId64 "}:%s", id, what);
}

static void member_of(const redis_state *rs, uint64_t seq, char out[48])
{
    snprintf(out, 48, "%s:%" PRIu64, rs->node, seq);
}

/* An array reply's i-th integer. */
static bool reply_int(const redisReply *r, size_t i, long long *v)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements || r->element[i]->type != REDIS_REPLY_INTEGER)
        return false;
    *v = r->element[i]->integer;
    return true;
}

static int redis_enter(limits_state *st, int64_t key_id, const limits_enter_in *in, limits_enter_out *out)
{
    redis_state *rs = (redis_state *)st;
    slot *s = NULL;
    char member[48] = "";
    if (in->max_active > 0) {
        if (!(s = calloc(1, sizeof *s))) return -1;
        s->key_id = key_id;
        pthread_mutex_lock(&rs->mu);
        s->seq = ++rs->next_seq;
        pthread_mutex_unlock(&rs->mu);
        member_of(rs, s->seq, member);
    }
    char rate[64], conc[64], T[32], limit[32], cap[24], lease[24];
    key_name(rate, sizeof rate, key_id, "rate");
    key_name(conc, sizeof conc, key_id, "conc");
    snprintf(T, sizeof T, "%.3f", in->T * 1e6);
    snprintf(limit, sizeof limit, "%.3f", in->limit * 1e6);
    snprintf(cap, sizeof cap, "%" PRId64, in->max_active);
    snprintf(lease, sizeof lease, "%lld", (long long)LEASE_S * 1000000);
    const char *keys[] = {rate, conc}, *args[] = {T, limit, cap, member, lease};
    redisReply *r = redis_client_eval(rs->rc, &ENTER, 2, keys, 5, args);
    long long outcome, ahead;
    if (!reply_int(r, 0, &outcome) || !reply_int(r, 1, &ahead) || outcome < 0 || outcome > 2) {
        if (r) log_error("redis: unexpected answer to the limit check");
        if (r) freeReplyObject(r);
        free(s);
        return -1;
    }
    freeReplyObject(r);
    *out = (limits_enter_out){(limits_enter_outcome)outcome, (double)ahead / 1e6, 0};
    if (outcome != ENTER_ADMITTED || !s) {
        free(s);
        return 0;
    }
    pthread_mutex_lock(&rs->mu);
    s->next = rs->open;
    if (rs->open) rs->open->prev = s;
    rs->open = s;
    pthread_mutex_unlock(&rs->mu);
    out->slot = (uint64_t)(uintptr_t)s;
    return 0;
}

static void redis_leave(limits_state *st, int64_t key_id, uint64_t token)
{
    redis_state *rs = (redis_state *)st;
    slot *s = (slot *)(uintptr_t)token;
    if (!s) return; /* admitted without a slot (no cap, or Redis was down) */
    pthread_mutex_lock(&rs->mu);
    if (s->prev) s->prev->next = s->next;
    else rs->open = s->next;
    if (s->next) s->next->prev = s->prev;
    pthread_mutex_unlock(&rs->mu);
    char conc[64], member[48];
    key_name(conc, sizeof conc, key_id, "conc");
    member_of(rs, s->seq, member);
    free(s);
    const char *keys[] = {conc}, *args[] = {member};
    redisReply *r = redis_client_eval(rs->rc, &LEAVE, 1, keys, 1, args);
    /* Not removed (Redis down): its lease ends it. */
    if (r) freeReplyObject(r);
}

static void quota_keys(int64_t key_id, const limits_quota_in *q, char img[96], char llm[96])
{
    char what[48];
    snprintf(what, sizeof what, "quota:images:%s", q->images_from);
    key_name(img, 96, key_id, what);
    snprintf(what, sizeof what, "quota:llm:%s", q->llm_from);
    key_name(llm, 96, key_id, what);
}

static int redis_reserve(limits_state *st, int64_t key_id, const limits_quota_in *in, limits_quota_out *out,
                         bool *redis_failed)
{
    redis_state *rs = (redis_state *)st;
    *redis_failed = false;
    char img[96], llm[96], n[24], qi[24], qi_ttl[24], ql[24], ql_ttl[24], seed_i[24] = "-1", seed_l[24] = "-1";
    quota_keys(key_id, in, img, llm);
    snprintf(n, sizeof n, "%" PRId64, in->nfiles);
    snprintf(qi, sizeof qi, "%" PRId64, in->quota_images);
    snprintf(ql, sizeof ql, "%" PRId64, in->quota_llm);
    snprintf(qi_ttl, sizeof qi_ttl, "%" PRId64, in->images_left_s + 86400);
    snprintf(ql_ttl, sizeof ql_ttl, "%" PRId64, in->llm_left_s + 86400);
    const char *keys[] = {img, llm}, *args[] = {n, qi, qi_ttl, ql, ql_ttl, seed_i, seed_l};
    for (int attempt = 0; attempt < 2; attempt++) {
        redisReply *r = redis_client_eval(rs->rc, &RESERVE, 2, keys, 7, args);
        long long a, b, c;
        if (!reply_int(r, 0, &a) || !reply_int(r, 1, &b) || !reply_int(r, 2, &c)) {
            if (r) freeReplyObject(r);
            *redis_failed = true;
            return -1;
        }
        freeReplyObject(r);
        if (a >= 0) {
            *out = (limits_quota_out){a == 1, b, c};
            return 0;
        }
        /* A period's first check since Redis has had it: seed from the ledger. */
        int64_t files, tokens;
        if (b && in->ledger(in->ledger_ctx, in->images_per, &files, &tokens) != 0) return -1;
        if (b) snprintf(seed_i, sizeof seed_i, "%" PRId64, files);
        if (c && in->ledger(in->ledger_ctx, in->llm_per, &files, &tokens) != 0) return -1;
        if (c) snprintf(seed_l, sizeof seed_l, "%" PRId64, tokens);
    }
    log_error("redis: a quota counter was not kept after seeding it");
    *redis_failed = true;
    return -1;
}

static void adjust(redis_state *rs, int64_t key_id, const limits_quota_in *q, int64_t files, int64_t tokens)
{
    if ((!files || !q->quota_images) && (!tokens || !q->quota_llm)) return;
    char img[96], llm[96], f[24], t[24];
    quota_keys(key_id, q, img, llm);
    snprintf(f, sizeof f, "%" PRId64, q->quota_images ? files : 0);
    snprintf(t, sizeof t, "%" PRId64, q->quota_llm ? tokens : 0);
    const char *keys[] = {img, llm}, *args[] = {f, t};
    redisReply *r = redis_client_eval(rs->rc, &ADJUST, 2, keys, 2, args);
    if (!r) log_warn("redis: a quota counter could not be corrected (%" PRId64 " files, %" PRId64 " tokens)", files, tokens);
    else freeReplyObject(r);
}

static void redis_release(limits_state *st, int64_t key_id, const limits_quota_in *q, int64_t n)
{
    adjust((redis_state *)st, key_id, q, -n, 0);
}

static void redis_commit(limits_state *st, int64_t key_id, const limits_quota_in *q, int64_t n, int64_t files,
                         int64_t tokens)
{
    adjust((redis_state *)st, key_id, q, files - n, tokens);
}

/* What the last command found (the probe's PING at most a second ago, or
 * a request's since): no round trip here. */
static const char *redis_problem(limits_state *st)
{
    redis_state *rs = (redis_state *)st;
    return redis_client_up(rs->rc) ? NULL : "redis_unreachable";
}

/* Moves the leases of this node's open requests on. */
static void refresh_leases(redis_state *rs)
{
    /* Copied out, so requests come and go while Redis is asked. */
    pthread_mutex_lock(&rs->mu);
    size_t n = 0;
    for (slot *s = rs->open; s; s = s->next)
        n++;
    slot *copy = n ? calloc(n, sizeof *copy) : NULL;
    size_t i = 0;
    for (slot *s = rs->open; copy && s; s = s->next)
        copy[i++] = *s;
    pthread_mutex_unlock(&rs->mu);
    char lease[24];
    snprintf(lease, sizeof lease, "%lld", (long long)LEASE_S * 1000000);
    for (size_t j = 0; j < i; j++) {
        char conc[64], member[48];
        key_name(conc, sizeof conc, copy[j].key_id, "conc");
        member_of(rs, copy[j].seq, member);
        const char *keys[] = {conc}, *args[] = {member, lease};
        redisReply *r = redis_client_eval(rs->rc, &REFRESH, 1, keys, 2, args);
        if (r) freeReplyObject(r);
    }
    free(copy);
}

/* The ticker's chore, every PROBE_S on the work queue: pings Redis (the
 * breaker lets it through only when a retry is due), and refreshes the
 * leases every third of a lease. */
static void refresh(void *arg)
{
    redis_state *rs = arg;
    redis_client_ping(rs->rc);
    if (++rs->ticks >= LEASE_S / 3 / PROBE_S) {
        rs->ticks = 0;
        refresh_leases(rs);
    }
}

static void redis_free(limits_state *st)
{
    redis_state *rs = (redis_state *)st;
    ticker_remove(rs->tk, rs->refresher);
    for (slot *s = rs->open, *nx; s; s = nx) {
        nx = s->next;
        free(s);
    }
    redis_client_free(rs->rc);
    pthread_mutex_destroy(&rs->mu);
    free(rs);
}

static const limits_state_ops REDIS_OPS = {redis_enter, redis_leave, redis_reserve, redis_release,
                                           redis_commit, redis_problem, redis_free};

static void init_scripts(void)
{
    redis_script *all[] = {&ENTER, &LEAVE, &REFRESH, &RESERVE, &ADJUST};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        redis_script_init(all[i]);
}

limits_state *limits_redis_new(const redis_url *u, int timeout_ms, ticker *tk)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    redis_state *rs = calloc(1, sizeof *rs);
    if (!rs) return NULL;
    rs->base.ops = &REDIS_OPS;
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != sizeof id) id = (uint64_t)getpid() ^ (uint64_t)time(NULL) << 20;
    snprintf(rs->node, sizeof rs->node, "%016" PRIx64, id);
    pthread_once(&once, init_scripts);
    if (!(rs->rc = redis_client_new(u, timeout_ms))) {
        free(rs);
        return NULL;
    }
    pthread_mutex_init(&rs->mu, NULL);
    rs->tk = tk;
    if (!(rs->refresher = ticker_add(tk, PROBE_S, true, refresh, rs))) {
        redis_client_free(rs->rc);
        pthread_mutex_destroy(&rs->mu);
        free(rs);
        return NULL;
    }
    /* A first look, for the log only: Redis may come later. */
    if (redis_client_ping(rs->rc)) log_info("limits: counted in Redis at %s", redis_client_where(rs->rc));
    else log_warn("limits: Redis at %s does not answer yet", redis_client_where(rs->rc));
    return &rs->base;
}
