#include "cli/usage_cmd.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/store_open.h"
#include "config/config.h"
#include "keys/keystore.h"
#include "util/json_out.h"
#include "limits/usage_report.h"

static int bad(const char *msg)
{
    fprintf(stderr, "sightd usage: %s\n"
                    "usage: sightd usage [--key ID] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--json] [--db PATH]\n",
            msg);
    return 2;
}

int usage_command(int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *key_arg = NULL;
    int as_json = 0, nrest = 0;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) return 1;
    for (int i = 1; i < argc; i++) {
        const char **dst = !strcmp(argv[i], "--from") ? &from : !strcmp(argv[i], "--to") ? &to
            : !strcmp(argv[i], "--key")                                                  ? &key_arg
                                                                                         : NULL;
        if (dst && i + 1 < argc) *dst = argv[++i];
        else if (!strcmp(argv[i], "--json")) as_json = 1;
        else {
            rest[nrest++] = argv[i];
            if (!strncmp(argv[i], "--", 2) && !strchr(argv[i], '=') && i + 1 < argc) rest[nrest++] = argv[++i];
        }
    }
    sight_config cfg;
    config_defaults(&cfg);
    int pr = config_parse(&cfg, nrest, rest, 0, "usage");
    free(rest);
    if (pr != 0) return pr > 0 ? 0 : 2;

    char today[11], first[11];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(today, sizeof today, "%Y-%m-%d", &tm);
    memcpy(first, today, sizeof first);
    memcpy(first + 8, "01", 2);
    if (!to) to = today;
    if (!from) from = strcmp(first, to) <= 0 ? first : to;
    double tf, tt;
    if (!usage_parse_date(from, &tf) || !usage_parse_date(to, &tt)) return bad("--from and --to are dates, YYYY-MM-DD");
    if (tt < tf || (tt - tf) / 86400 >= USAGE_MAX_DAYS) return bad("--from must not be after --to, at most 366 days apart");
    int64_t only = 0;
    if (key_arg) {
        char *end;
        errno = 0;
        only = strtoll(key_arg, &end, 10);
        if (errno || *end || only <= 0) return bad("--key wants a key's numeric ID (see sightd keys list)");
    }

    char err[256] = "";
    keystore *ks = keystore_open(cfg.db_path, err, sizeof err);
    if (!ks) return cli_store_unopened("key store", cfg.db_path, err);
    key_info *keys = NULL;
    size_t n = 0;
    int rc = 0, found = 0;
    json_t *all = json_array();
    if (keystore_list(ks, &keys, &n) != 0) rc = 1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (only && keys[i].id != only) continue;
        found = 1;
        json_t *r = usage_report(ks, &keys[i], from, to);
        if (!r) {
            rc = 1;
            break;
        }
        json_array_append_new(all, r);
    }
    if (rc) fprintf(stderr, "sightd usage: cannot read the store\n");
    else if (only && !found) {
        fprintf(stderr, "sightd usage: no key with ID %lld\n", (long long)only);
        rc = 1;
    } else if (as_json) {
        char *text = json_dumps_safe(all, JSON_COMPACT);
        if (text) printf("%s\n", text);
        free(text);
    } else {
        printf("%-6s %-20s %-10s %8s %8s %9s %8s %10s %12s %8s %8s %8s %10s %10s\n", "KEY", "NAME", "DATE", "REQUESTS",
               "FILES", "SUCCEEDED", "FAILED", "MEGAPIXELS", "BYTES_IN", "YOLO", "OCR", "LLM", "PROMPT_TOK", "COMPL_TOK");
        size_t ki;
        json_t *r;
        json_array_foreach(all, ki, r) {
            json_t *k = json_object_get(r, "key"), *d;
            size_t di;
            json_array_foreach(json_object_get(r, "usage"), di, d) {
#define I(f) (long long)json_integer_value(json_object_get(d, f))
                printf("%-6lld %-20.20s %-10s %8lld %8lld %9lld %8lld %10.2f %12lld %8lld %8lld %8lld %10lld %10lld\n",
                       (long long)json_integer_value(json_object_get(k, "id")),
                       json_string_value(json_object_get(k, "name")), json_string_value(json_object_get(d, "date")),
                       I("requests"), I("files"), I("succeeded"), I("failed"),
                       json_real_value(json_object_get(d, "megapixels")), I("bytes_in"), I("yolo_runs"), I("ocr_runs"),
                       I("llm_calls"), I("llm_prompt_tokens"), I("llm_completion_tokens"));
#undef I
            }
        }
    }
    json_decref(all);
    free(keys);
    keystore_close(ks);
    return rc;
}
