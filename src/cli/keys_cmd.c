#include "cli/keys_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "keys/keystore.h"

static void usage(FILE *out)
{
    fprintf(out, "usage:\n"
                 "  sightd keys create --name NAME [--db PATH]   prints the new key (shown once) on stdout\n"
                 "  sightd keys list [--db PATH]\n"
                 "  sightd keys revoke ID [--db PATH]\n"
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
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--name") && i + 1 < argc) name = argv[++i];
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

    if (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "revoke")) {
        fprintf(stderr, "sightd keys: unknown subcommand '%s'\n", sub);
        usage(stderr);
        return 2;
    }
    if (!strcmp(sub, "create") && !name) {
        fprintf(stderr, "sightd keys create: --name NAME is required\n");
        return 2;
    }
    int64_t id = 0;
    if (!strcmp(sub, "revoke")) {
        char *end;
        errno = 0;
        id = id_arg ? strtoll(id_arg, &end, 10) : 0;
        if (!id_arg || errno || *end || id <= 0) {
            fprintf(stderr, "sightd keys revoke: give the key's numeric ID (see sightd keys list)\n");
            return 2;
        }
    }

    char err[256] = "";
    keystore *ks = keystore_open_sqlite(cfg.db_path, err, sizeof err);
    if (!ks) {
        fprintf(stderr, "sightd: cannot open key store %s: %s\n", cfg.db_path, err);
        return 1;
    }
    int rc = 0;
    if (!strcmp(sub, "create")) {
        char key[KEYSTORE_KEY_MAX];
        int64_t nid;
        if (keystore_create(ks, name, key, sizeof key, &nid) != 0) {
            fprintf(stderr, "sightd keys create: could not create the key (name must be 1-100 printable characters)\n");
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
            printf("%-6s %-10s %-24s %-20s %-20s %s\n", "ID", "PREFIX", "NAME", "CREATED", "LAST USED", "STATUS");
            for (size_t i = 0; i < n; i++) {
                char c[32], u[32];
                fmt_time(keys[i].created_at, c, sizeof c);
                fmt_time(keys[i].last_used_at, u, sizeof u);
                printf("%-6lld %-10s %-24s %-20s %-20s %s\n", (long long)keys[i].id, keys[i].prefix, keys[i].name, c, u,
                       keys[i].revoked_at ? "revoked" : "active");
            }
            free(keys);
        }
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
