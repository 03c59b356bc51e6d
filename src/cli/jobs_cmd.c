#include "cli/jobs_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/store_open.h"
#include "config/config.h"
#include "jobs/job_store.h"
#include "keys/keystore.h"

#define USAGE "usage: sightd jobs list [--key ID] [--limit N] [--json] | show ID | cancel ID  [--db PATH]\n"

static int bad(const char *msg)
{
    fprintf(stderr, "sightd jobs: %s\n" USAGE, msg);
    return 2;
}

static void print_job(const job_info *j, int as_json)
{
    if (as_json) {
        printf("{\"id\":\"%s\",\"status\":\"%s\",\"total\":%lld,\"succeeded\":%lld,\"failed\":%lld,\"created_at\":%lld,"
               "\"finished_at\":",
               j->id, j->status, (long long)j->total, (long long)j->succeeded, (long long)j->failed,
               (long long)j->created_at);
        if (j->finished_at) printf("%lld}\n", (long long)j->finished_at);
        else printf("null}\n");
        return;
    }
    char made[32] = "-", ended[32] = "-";
    time_t t = (time_t)j->created_at, f = (time_t)j->finished_at;
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(made, sizeof made, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (f && gmtime_r(&f, &tm)) strftime(ended, sizeof ended, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-24s %-10s %8lld %9lld %7lld  %-20s %-20s\n", j->id, j->status, (long long)j->total,
           (long long)j->succeeded, (long long)j->failed, made, ended);
}

static int run(job_store *js, const char *verb, const char *id, int64_t key, int limit, int as_json)
{
    if (!strcmp(verb, "list")) {
        job_info *v = NULL;
        size_t n = 0;
        if (job_store_list(js, key, NULL, limit, &v, &n) != 0) {
            fprintf(stderr, "sightd jobs: cannot read the job store\n");
            return 1;
        }
        if (!as_json)
            printf("%-24s %-10s %8s %9s %7s  %-20s %-20s\n", "ID", "STATUS", "TOTAL", "SUCCEEDED", "FAILED", "CREATED",
                   "FINISHED");
        for (size_t i = 0; i < n; i++) print_job(&v[i], as_json);
        free(v);
        return 0;
    }
    job_info j;
    int rc = !strcmp(verb, "show") ? job_store_get(js, -1, id, &j) : job_store_cancel(js, -1, id, &j);
    if (rc == 1) fprintf(stderr, "sightd jobs: no job %s\n", id);
    else if (rc < 0) fprintf(stderr, "sightd jobs: cannot read the job store\n");
    else print_job(&j, 1);
    return rc == 0 ? 0 : 1;
}

int jobs_command(int argc, char **argv)
{
    if (argc < 2) return bad("list, show or cancel?");
    const char *verb = argv[1], *id = NULL, *key_arg = NULL, *limit_arg = NULL;
    int as_json = 0, nrest = 0;
    bool list = !strcmp(verb, "list");
    if (!list && strcmp(verb, "show") && strcmp(verb, "cancel")) return bad("list, show or cancel?");
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) return 1;
    for (int i = 2; i < argc; i++) {
        if (list && !strcmp(argv[i], "--key") && i + 1 < argc) key_arg = argv[++i];
        else if (list && !strcmp(argv[i], "--limit") && i + 1 < argc) limit_arg = argv[++i];
        else if (list && !strcmp(argv[i], "--json")) as_json = 1;
        else if (!list && !id && strncmp(argv[i], "--", 2)) id = argv[i];
        else {
            rest[nrest++] = argv[i];
            if (!strncmp(argv[i], "--", 2) && !strchr(argv[i], '=') && i + 1 < argc) rest[nrest++] = argv[++i];
        }
    }
    sight_config cfg;
    config_defaults(&cfg);
    int pr = config_parse(&cfg, nrest, rest, 0, "jobs");
    free(rest);
    if (pr != 0) return pr > 0 ? 0 : 2;
    if (!list && !id) return bad("which job? (its id, job_...)");
    int64_t key = -1;
    long limit = 50;
    char *end;
    errno = 0;
    if (key_arg && ((key = strtoll(key_arg, &end, 10)) <= 0 || *end || errno))
        return bad("--key wants a key's numeric ID (see sightd keys list)");
    if (limit_arg && ((limit = strtol(limit_arg, &end, 10)) < 1 || limit > 100000 || *end))
        return bad("--limit wants 1 to 100000");
    char err[512] = "";
    /* The key store brings the schema up to date (the jobs tables are among its migrations). */
    keystore *ks = keystore_open(cfg.db_path, err, sizeof err);
    job_store *js = ks ? job_store_open(cfg.db_path, err, sizeof err) : NULL;
    keystore_close(ks);
    if (!js) return cli_store_unopened("the job store", cfg.db_path, err);
    int rc = run(js, verb, id, key, (int)limit, as_json);
    job_store_close(js);
    return rc;
}
