#include "cli/keys_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/store_open.h"
#include "config/config.h"
#include "keys/keystore.h"

static void usage(FILE *out)
{
    fprintf(out, "usage:\n"
                 "  sightd keys create --name NAME [--db PATH]   prints the new key (shown once) on stdout\n"
                 "  sightd keys update ID [limits] [--db PATH]\n"
                 "  sightd keys list [--db PATH]\n"
                 "  sightd keys revoke ID [--db PATH]\n"
                 "limits (create and update; none removes one): --rate N/s|N/min|N/h, --burst N,\n"
                 "  --max-concurrent N, --quota-images N/day|N/month, --quota-llm-tokens N/day|N/month\n"
                 "The store is --db / SIGHT_DB (default data/sight.db).\n");
}

static void fmt_time(int64_t t, char *buf, size_t n)
{
    if (!t) {
        snprintf(buf, n, "-");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "rate=30/min burst=30 max-concurrent=none ..." or "-" for no limit at all. */
static void fmt_limits(const key_limits *l, char *out, size_t len)
{
    char a[32], b[32], c[32], burst[24] = "none", conc[24] = "none";
    limit_format_rate(l->rate, l->rate_per_s, a, sizeof a);
    limit_format_quota(l->quota_images, l->quota_images_per, b, sizeof b);
    limit_format_quota(l->quota_llm_tokens, l->quota_llm_per, c, sizeof c);
    if (l->rate) snprintf(burst, sizeof burst, "%lld", (long long)(l->burst ? l->burst : l->rate));
    if (l->max_concurrent) snprintf(conc, sizeof conc, "%lld", (long long)l->max_concurrent);
    if (!limits_any(l)) snprintf(out, len, "-");
    else
        snprintf(out, len, "rate=%s burst=%s max-concurrent=%s quota-images=%s quota-llm-tokens=%s", a, burst, conc,
                 b, c);
}

/* Changes only the limits given; a running server sees them on its next
 * request (they are read with the key). */
static int update_limits(keystore *ks, int64_t id, const key_limits *in, const int *given)
{
    key_info *keys = NULL;
    size_t n = 0;
    if (keystore_list(ks, &keys, &n) != 0) {
        fprintf(stderr, "sightd keys update: cannot read the store\n");
        return 1;
    }
    key_limits l;
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (keys[i].id == id) l = keys[i].limits, found = 1;
    free(keys);
    if (!found) {
        fprintf(stderr, "sightd keys update: no key with ID %lld\n", (long long)id);
        return 1;
    }
    if (given[0]) l.rate = in->rate, l.rate_per_s = in->rate_per_s;
    if (given[1]) l.burst = in->burst;
    if (given[2]) l.max_concurrent = in->max_concurrent;
    if (given[3]) l.quota_images = in->quota_images, l.quota_images_per = in->quota_images_per;
    if (given[4]) l.quota_llm_tokens = in->quota_llm_tokens, l.quota_llm_per = in->quota_llm_per;
    if (keystore_set_limits(ks, id, &l) != 0) {
        fprintf(stderr, "sightd keys update: the store failed\n");
        return 1;
    }
    char lt[200];
    fmt_limits(&l, lt, sizeof lt);
    fprintf(stderr, "key %lld: %s\n", (long long)id, lt);
    return 0;
}

/* The limit flags of create and update, applied to l as they come; "none"
 * removes a limit. 1: argv[i] is one (i moved past its value), 0: not one,
 * -1: malformed (message printed). */
static int limit_flag(int argc, char **argv, int *i, key_limits *l, int *given)
{
    static const char *FLAGS[] = {"--rate", "--burst", "--max-concurrent", "--quota-images", "--quota-llm-tokens"};
    const char *a = argv[*i];
    for (int f = 0; f < 5; f++) {
        size_t n = strlen(FLAGS[f]);
        const char *v;
        if (!strncmp(a, FLAGS[f], n) && a[n] == '=') v = a + n + 1;
        else if (!strcmp(a, FLAGS[f])) {
            if (*i + 1 >= argc) {
                fprintf(stderr, "sightd keys: %s needs a value\n", FLAGS[f]);
                return -1;
            }
            v = argv[++*i];
        } else continue;
        char err[160];
        int rc = f == 0 ? limit_parse_rate(v, &l->rate, &l->rate_per_s, err, sizeof err)
            : f == 1    ? limit_parse_positive(v, &l->burst, err, sizeof err)
            : f == 2    ? limit_parse_positive(v, &l->max_concurrent, err, sizeof err)
            : f == 3    ? limit_parse_quota(v, &l->quota_images, &l->quota_images_per, err, sizeof err)
                        : limit_parse_quota(v, &l->quota_llm_tokens, &l->quota_llm_per, err, sizeof err);
        if (rc) {
            fprintf(stderr, "sightd keys: %s: %s\n", FLAGS[f], err);
            return -1;
        }
        given[f] = 1;
        return 1;
    }
    return 0;
}

int keys_command(int argc, char **argv)
{
    /* argv[0] = "keys", argv[1] = subcommand; the rest: --name/--db and an id. */
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    const char *name = NULL, *id_arg = NULL;
    sight_config cfg;
    config_defaults(&cfg);
    /* Pull out --name and the positional id, hand the rest to the shared parser. */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) return 1;
    int nrest = 0;
    key_limits lim = {0};
    int given[5] = {0}, lf;
    for (int i = 2; i < argc; i++) {
        if ((lf = limit_flag(argc, argv, &i, &lim, given)) != 0) {
            if (lf < 0) {
                free(rest);
                return 2;
            }
        } else if (!strcmp(argv[i], "--name") && i + 1 < argc) name = argv[++i];
        else if (!strncmp(argv[i], "--name=", 7)) name = argv[i] + 7;
        else if (argv[i][0] != '-' && !id_arg) id_arg = argv[i];
        else {
            /* "--db PATH": keep the option and its value together. */
            rest[nrest++] = argv[i];
            if (!strncmp(argv[i], "--", 2) && !strchr(argv[i], '=') && i + 1 < argc) rest[nrest++] = argv[++i];
        }
    }
    int pr = config_parse(&cfg, nrest, rest, 0, "keys");
    free(rest);
    if (pr != 0) return pr > 0 ? 0 : 2;

    if (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "revoke") && strcmp(sub, "update")) {
        fprintf(stderr, "sightd keys: unknown subcommand '%s'\n", sub);
        usage(stderr);
        return 2;
    }
    if (!strcmp(sub, "create") && !name) {
        fprintf(stderr, "sightd keys create: --name NAME is required\n");
        return 2;
    }
    int64_t id = 0;
    if (!strcmp(sub, "revoke") || !strcmp(sub, "update")) {
        char *end;
        errno = 0;
        id = id_arg ? strtoll(id_arg, &end, 10) : 0;
        if (!id_arg || errno || *end || id <= 0) {
            fprintf(stderr, "sightd keys %s: give the key's numeric ID (see sightd keys list)\n", sub);
            return 2;
        }
    }
    if (!strcmp(sub, "update") && !(given[0] | given[1] | given[2] | given[3] | given[4])) {
        fprintf(stderr, "sightd keys update: give at least one limit to change\n");
        return 2;
    }

    char err[256] = "";
    keystore *ks = keystore_open(cfg.db_path, err, sizeof err);
    if (!ks) return cli_store_unopened("key store", cfg.db_path, err);
    int rc = 0;
    if (!strcmp(sub, "create")) {
        char key[KEYSTORE_KEY_MAX];
        int64_t nid;
        if (keystore_create(ks, name, key, sizeof key, &nid) != 0) {
            fprintf(stderr, "sightd keys create: could not create the key (name must be 1-100 printable characters)\n");
            rc = 1;
        } else if (limits_any(&lim) && keystore_set_limits(ks, nid, &lim) != 0) {
            fprintf(stderr, "sightd keys create: the key was made but its limits could not be stored\n");
            rc = 1;
        } else {
            printf("%s\n", key);
            fprintf(stderr, "created key %lld (%s); it is shown only this once\n", (long long)nid, name);
        }
    } else if (!strcmp(sub, "list")) {
        key_info *keys = NULL;
        size_t n = 0;
        if (keystore_list(ks, &keys, &n) != 0) {
            fprintf(stderr, "sightd keys list: cannot read the store\n");
            rc = 1;
        } else {
            printf("%-6s %-10s %-24s %-20s %-20s %-8s %s\n", "ID", "PREFIX", "NAME", "CREATED", "LAST USED", "STATUS",
                   "LIMITS");
            for (size_t i = 0; i < n; i++) {
                char c[32], u[32], lt[200];
                fmt_time(keys[i].created_at, c, sizeof c);
                fmt_time(keys[i].last_used_at, u, sizeof u);
                fmt_limits(&keys[i].limits, lt, sizeof lt);
                printf("%-6lld %-10s %-24s %-20s %-20s %-8s %s\n", (long long)keys[i].id, keys[i].prefix, keys[i].name, c,
                       u, keys[i].revoked_at ? "revoked" : "active", lt);
            }
            free(keys);
        }
    } else if (!strcmp(sub, "update")) {
        rc = update_limits(ks, id, &lim, given);
    } else {
        int r = keystore_revoke(ks, id);
        if (r == 0) fprintf(stderr, "revoked key %lld\n", (long long)id);
        else if (r == 1) {
            fprintf(stderr, "sightd keys revoke: no active key with ID %lld\n", (long long)id);
            rc = 1;
        } else {
            fprintf(stderr, "sightd keys revoke: the store failed\n");
            rc = 1;
        }
    }
    keystore_close(ks);
    return rc;
}
