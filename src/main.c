/* sightd: the Sight inference server and its administration commands. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/keys_cmd.h"
#include "cli/detect_cmd.h"
#include "config/config.h"
#include "detect/model_select.h"
#include "http/server.h"
#include "keys/keystore.h"
#include "llm/llm.h"
#include "pipeline/pipeline.h"
#include "util/log.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: sightd COMMAND [options]\n\n"
                 "commands:\n"
                 "  serve [options]        run the HTTP server (sightd serve --help lists the options)\n"
                 "  keys create --name N   create an API key and print it (shown once)\n"
                 "  keys list              list keys (id, prefix, name, times, status)\n"
                 "  keys revoke ID         revoke a key; a running server refuses it at once\n"
                 "  detect IMAGE...        run detection on files, print NDJSON (sightd detect --help)\n"
                 "  version                print the version\n");
}

/* With no active key the server would refuse everything; on request (make run)
 * it makes one and prints it once, so a first user can start right away. */
static int ensure_first_key(keystore *ks)
{
    int64_t n;
    if (keystore_count_active(ks, &n) != 0) return -1;
    if (n > 0) return 0;
    char key[KEYSTORE_KEY_MAX];
    int64_t id;
    if (keystore_create(ks, "default", key, sizeof key, &id) != 0) return -1;
    printf("\nCreated API key \"default\" (id %lld). It is shown only this once; keep it:\n\n    %s\n\n",
           (long long)id, key);
    fflush(stdout);
    return 0;
}

static int serve(int argc, char **argv)
{
    sight_config cfg;
    config_defaults(&cfg);
    int pr = config_parse(&cfg, argc, argv, 1, "serve");
    if (pr != 0) return pr > 0 ? 0 : 2;
    log_set_level(cfg.log_level);

    /* Block the stop signals before any thread starts, so every thread
     * inherits the mask and only sigwait() below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[256] = "";
    keystore *ks = keystore_open_sqlite(cfg.db_path, err, sizeof err);
    if (!ks) { log_error("cannot open the key store %s: %s", cfg.db_path, err); return 1; }
    if (cfg.create_first_key && ensure_first_key(ks) != 0) {
        log_error("cannot create the first API key in %s", cfg.db_path);
        keystore_close(ks);
        return 1;
    }
    int fatal;
    char msg[1024];
    detector *det = model_select_open(&cfg, &fatal, msg, sizeof msg);
    if (fatal) { log_error("%s", msg); keystore_close(ks); return 1; }
    if (det) log_info("detector ready: %s", msg);
    else log_warn("%s", msg);

    /* Before any worker starts: the openai provider initialises libcurl. */
    llm *an = llm_open(&cfg, msg, sizeof msg);
    if (!an) { log_error("%s", msg); detector_close(det); keystore_close(ks); return 1; }
    llm_describe(an, msg, sizeof msg);
    log_info("llm analysis ready: %s", msg);

    stage_set stages = {.yolo = det ? detector_stage(det) : NULL, .llm = llm_stage(an), .max_pixels = cfg.max_pixels};
    pipeline *pipe = pipeline_start(cfg.workers, &stages);
    if (!pipe) { log_error("cannot start %d worker threads", cfg.workers); llm_close(an); detector_close(det); keystore_close(ks); return 1; }
    server *srv = server_start(&cfg, ks, pipe);
    if (!srv) { pipeline_stop(pipe); llm_close(an); detector_close(det); keystore_close(ks); return 1; }
    log_info("sightd %s listening on http://%s%s%s:%u (workers %d, key store %s)", SIGHT_VERSION,
             strchr(cfg.listen_host, ':') ? "[" : "", cfg.listen_host, strchr(cfg.listen_host, ':') ? "]" : "",
             server_port(srv), cfg.workers, cfg.db_path);

    int sig = 0;
    sigwait(&stop, &sig);
    log_info("received %s: finishing running requests (up to %ds)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
             cfg.shutdown_timeout_s);
    server_shutdown(srv);
    pipeline_stop(pipe);
    llm_close(an);
    detector_close(det);
    keystore_close(ks);
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) { usage(stderr); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "serve")) return serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "keys")) return keys_command(argc - 1, argv + 1);
    if (!strcmp(cmd, "detect")) return detect_command(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench-ort")) return bench_ort_command(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) { printf("sightd %s\n", SIGHT_VERSION); return 0; }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) { usage(stdout); return 0; }
    fprintf(stderr, "sightd: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
