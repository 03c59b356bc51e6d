/* sightd: the Sight inference server and its administration commands. */
#include <curl/curl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/job_runner.h"
#include "jobs/job_store.h"
#include "jobs/webhook_sender.h"
#include "cli/keys_cmd.h"
#include "cli/jobs_cmd.h"
#include "cli/usage_cmd.h"
#include "cli/bench_cmd.h"
#include "cli/detect_cmd.h"
#include "cli/ocr_cmd.h"
#include "config/config.h"
#include "detect/model_registry.h"
#include "http/server.h"
#include "image/decode.h"
#include "keys/db_url.h"
#include "keys/keystore.h"
#include "llm/llm.h"
#include "ocr/ocr.h"
#include "pipeline/pipeline.h"
#include "util/log.h"
#include "util/ticker.h"
#include "util/work_queue.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: sightd COMMAND [options]\n\n"
                 "commands:\n"
                 "  serve [options]        run the HTTP server (sightd serve --help lists the options)\n"
                 "  keys create --name N   create an API key and print it (shown once)\n"
                 "  keys list              list keys (id, prefix, name, times, status)\n"
                 "  keys revoke ID         revoke a key; a running server refuses it at once\n"
                 "  keys update ID [limits] change a key's limits (--rate, --burst, --max-concurrent, --quota-images, --quota-llm-tokens)\n"
                 "  usage [--key ID]       use per key and UTC day (--from, --to, --json)\n"
                 "  jobs list|show|cancel  jobs of every key (list --key ID --limit N --json; show ID; cancel ID)\n"
                 "  detect IMAGE...        run detection on files, print NDJSON (sightd detect --help)\n"
                 "  ocr IMAGE...           read the text in files, print NDJSON (sightd ocr --help)\n"
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

/* Opens OCR when its models are there: missing ones only disable is_ocr (the
 * files that ask get ocr_unavailable); models that are there but do not load
 * stop the server, as a broken detection model does. */
static int open_ocr(const sight_config *cfg, ocr_engine **out)
{
    char msg[1200], missing[1200];
    *out = NULL;
    if (!ocr_models_present(cfg->ocr_dir, missing, sizeof missing)) {
        log_warn("no OCR models in %s (missing %s): is_ocr files will get ocr_unavailable; scripts/bootstrap "
                 "provisions them",
                 cfg->ocr_dir, missing);
        return 0;
    }
    if (!(*out = ocr_open(cfg->ocr_dir, cfg->ort_threads, msg, sizeof msg))) {
        log_error("OCR models in %s: %s", cfg->ocr_dir, msg);
        return -1;
    }
    ocr_describe(*out, msg, sizeof msg);
    log_info("OCR ready: %s", msg);
    return 0;
}

/* Everything the server runs on; closed in reverse order by close_all. */
typedef struct {
    work_queue *wq; /* the one pool for work that may block (util/work_queue.h) */
    ticker *tk;     /* the one timer thread (util/ticker.h) */
    keystore *ks;
    model_registry *reg;
    ocr_engine *ocr;
    llm *an;
    fetcher *fetch;
    pipeline *pipe;
    limiter *lim;
    job_store *jobs;
    job_runner *runner;
    webhook_sender *hooks;
    server *srv;
} services;

/* docs/internals/threads.md explains the order. */
static void close_all(services *sv)
{
    if (sv->srv) server_shutdown(sv->srv); /* its key checks end on the queue; its chores leave the ticker */
    job_runner_stop(sv->runner);           /* before the pipeline: it cancels its items there */
    webhook_sender_stop(sv->hooks);
    fetcher_stop(sv->fetch); /* before the pipeline: its last callbacks still finish files */
    pipeline_stop(sv->pipe);
    /* After the pipeline, whose last requests give back limits (deferred to
     * the queue with --redis): the queue runs what is queued, then its
     * threads end. Later pushes are refused: their callers work inline, and
     * the ticker skips its chores. */
    wq_stop(sv->wq);
    limiter_free(sv->lim); /* after the pipeline: its last requests still commit their use */
    job_store_close(sv->jobs);
    llm_close(sv->an);
    ocr_close(sv->ocr);
    model_registry_close(sv->reg);
    ticker_stop(sv->tk); /* every chore's owner is gone */
    wq_free(sv->wq);
    keystore_close(sv->ks);
}

/* Jobs live in the key store's database (SQLite or PostgreSQL); one that
 * cannot be opened for them leaves the jobs routes answering 501. A node
 * holds at most 2 x workers items: a stream's file then waits for at most
 * the items already running, never for a job's queue. Fewer starve the
 * workers while items download and commit (jobs bench, 2 cores: workers - 1
 * = 2 items ran a job at 0.57x of v2's rate, 4 at 0.93x, with the p95 of
 * single-image streams during the job 132 against 139 ms). */
static int start_jobs(const sight_config *cfg, services *sv)
{
    char msg[1024] = "";
    if (!(sv->jobs = job_store_open(cfg->db_path, msg, sizeof msg))) {
        log_warn("jobs unavailable: %s", msg);
        return 0;
    }
    job_runner_config rc = {.js = sv->jobs, .pipe = sv->pipe, .slots = cfg->workers * 2, .lease_ms = (int64_t)cfg->job_lease_s * 1000, .retention_s = cfg->job_retention_s, .metering = cfg->metering, .lim = cfg->metering ? sv->lim : NULL, .ks = sv->ks};
    if (!(sv->runner = job_runner_start(&rc))) {
        log_error("cannot start the job runner");
        return -1;
    }
    if (!(sv->hooks = webhook_sender_start(sv->jobs, cfg->url_allow, cfg->url_http, sv->tk, msg, sizeof msg))) {
        log_error("jobs' webhooks: %s", msg);
        return -1;
    }
    return 0;
}

/* Key checks read the store (a cache miss); with --redis the limit checks
 * and the deferred leaves and releases run there too, each waiting a Redis
 * round trip on the network rather than on a CPU, so more threads keep a
 * Redis a few milliseconds away from capping the node (BENCH_ONLY=slowredis
 * make bench). 12 with --redis: as many threads as waited on Redis before
 * the queue was shared (8 key-check and 4 deferred-call threads). */
static int work_threads(const sight_config *cfg) { return cfg->redis_url[0] ? 12 : 2; }
/* Jobs waiting for a thread: key checks, limit calls, store reads of the
 * jobs routes, deferred Redis calls, chores. A full queue makes the caller
 * work inline (or a chore skip a run). */
#define WORK_QUEUE_MAX 8192

static int start_all(const sight_config *cfg, services *sv)
{
    char msg[1024] = "", shown[sizeof cfg->db_path];
    if (!(sv->wq = wq_start(work_threads(cfg), WORK_QUEUE_MAX)) || !(sv->tk = ticker_start(sv->wq))) {
        log_error("cannot start the work queue's threads");
        return -1;
    }
    db_url_mask(cfg->db_path, shown, sizeof shown);
    if (!(sv->ks = keystore_open(cfg->db_path, msg, sizeof msg))) {
        log_error("cannot open the key store %s: %s", shown, msg);
        return -1;
    }
    if (cfg->create_first_key && ensure_first_key(sv->ks) != 0) {
        log_error("cannot create the first API key in %s", shown);
        return -1;
    }
    if (!(sv->lim = limiter_new(sv->ks, &cfg->default_limits, cfg->metering, NULL))) {
        log_error("cannot start the usage ledger");
        return -1;
    }
    if (cfg->redis_url[0] &&
        limiter_use_redis(sv->lim, cfg->redis_url, cfg->limits_deny_on_redis_error, sv->wq, sv->tk, msg, sizeof msg) !=
            0) {
        log_error("%s", msg); /* never the URL: it may hold a password */
        return -1;
    }
    limiter_set_ledger_timeout(sv->lim, cfg->ledger_timeout_s);
    int fatal;
    sv->reg = model_registry_open(cfg, &fatal, msg, sizeof msg);
    if (fatal) {
        log_error("%s", msg);
        return -1;
    }
    if (sv->reg) log_info("detection: %s", msg);
    else log_warn("%s", msg);
    if (open_ocr(cfg, &sv->ocr)) return -1;
    if (!(sv->an = llm_open(cfg, msg, sizeof msg))) {
        log_error("%s", msg);
        return -1;
    }
    llm_describe(sv->an, msg, sizeof msg);
    log_info("llm analysis ready: %s", msg);

    fetch_config fc = {.allow = cfg->url_allow, .allow_http = cfg->url_http, .connect_timeout_s = cfg->url_connect_timeout_s, .timeout_s = cfg->url_timeout_s, .max_bytes = cfg->url_max_bytes, .max_redirects = cfg->url_max_redirects, .resolve = getenv("SIGHT_FETCH_RESOLVE")};
    if (!(sv->fetch = fetcher_start(&fc, msg, sizeof msg))) {
        log_error("%s", msg);
        return -1;
    }

    stage_set stages = {.yolo = sv->reg ? model_registry_stage(sv->reg) : NULL, .ocr = sv->ocr ? ocr_stage(sv->ocr) : NULL, .llm = llm_stage(sv->an), .max_pixels = cfg->max_pixels, .max_pixels_heif = cfg->max_pixels_heif, .max_video_seconds = cfg->max_video_seconds, .max_frames = cfg->max_frames, .max_tiles = cfg->max_tiles};
    if (!(sv->pipe = pipeline_start(cfg->workers, cfg->llm_concurrency, &stages, sv->fetch))) {
        log_error("cannot start %d worker threads", cfg->workers);
        return -1;
    }
    /* /readyz names the models that serve; no paths (it needs no key). */
    model_entry *def = sv->reg ? model_registry_acquire(sv->reg, NULL) : NULL;
    json_t *models = json_pack("{s:o,s:b}", "yolo",
                               def ? json_pack("{s:s,s:s}", "model", detector_model_name(model_entry_detector(def)),
                                               "source", model_entry_source(def))
                                   : json_null(),
                               "ocr", sv->ocr != NULL);
    model_entry_release(def);
    /* Jobs first: opening their store (a PostgreSQL connect, the schema) took
     * long enough that the first requests were answered 501 jobs_unavailable. */
    if (start_jobs(cfg, sv) != 0) {
        json_decref(models);
        return -1;
    }
    sv->srv = server_start(cfg, sv->ks, sv->lim, sv->pipe, models, sv->reg, sv->wq, sv->tk);
    json_decref(models);
    if (sv->srv && sv->jobs) server_set_jobs(sv->srv, sv->jobs);
    return sv->srv ? 0 : -1;
}

/* Connections cost a descriptor each (plus one per prediction in flight, its
 * event queue), and the front end holds thousands: raise the soft open-file
 * limit to the hard one, and keep --max-connections within what it allows
 * rather than fail accept() under load. */
static void fit_connections_to_fd_limit(sight_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
    }
    /* Models, the key store, the listening socket, logs, curl's sockets. */
    const long long reserve = 256 + (long long)cfg->llm_concurrency + cfg->workers;
    long long lim = rl.rlim_cur == RLIM_INFINITY ? 1LL << 30 : (long long)rl.rlim_cur;
    long long cap = lim - reserve - cfg->max_inflight;
    if (cap < 4) cap = 4;
    if (cfg->max_connections > cap) {
        log_warn("--max-connections %d lowered to %lld: the open-file limit is %lld (raise it with ulimit -n or "
                 "LimitNOFILE=)",
                 cfg->max_connections, cap, lim);
        cfg->max_connections = (int)cap;
    }
    log_info("open-file limit %lld: up to %d connections", lim, cfg->max_connections);
}

static int serve(int argc, char **argv)
{
    sight_config cfg;
    config_defaults(&cfg);
    int pr = config_parse(&cfg, argc, argv, 1, "serve");
    if (pr != 0) return pr > 0 ? 0 : 2;
    log_set_level(cfg.log_level);
    log_set_format(cfg.log_format);
    fit_connections_to_fd_limit(&cfg);

    /* Block the stop signals before any thread starts, so every thread
     * inherits the mask and only sigwait() below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP); /* reloads the models */
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Buffers of 1 MiB and more (uploads, decoded images, tensors) each get
     * their own mapping, given back to the system when freed. glibc's default
     * threshold rises to the largest buffer freed so far (up to 32 MiB), after
     * which such buffers are carved from the per-thread arenas (up to 8 per
     * core) and their pages stay
     * resident: make load with 12-megapixel JPEGs left RSS 26% over idle after
     * the load, 3% with this, at the same throughput. */
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    curl_global_init(CURL_GLOBAL_DEFAULT); /* once, before any thread: it is not thread-safe */
    /* libvips too, after the signal mask: any thread it starts inherits it. */
    if (image_init(argv[0]) != 0) {
        log_error("cannot start libvips");
        curl_global_cleanup();
        return 1;
    }
    image_set_icc_to_srgb(cfg.icc_to_srgb);

    services sv = {0};
    if (start_all(&cfg, &sv) != 0) {
        close_all(&sv);
        curl_global_cleanup();
        return 1;
    }
    char shown[sizeof cfg.db_path];
    db_url_mask(cfg.db_path, shown, sizeof shown);
    log_info("sightd %s listening on http://%s%s%s:%u (workers %d, key store %s, OCR models %s)", SIGHT_VERSION,
             strchr(cfg.listen_host, ':') ? "[" : "", cfg.listen_host, strchr(cfg.listen_host, ':') ? "]" : "",
             server_port(sv.srv), cfg.workers, shown, cfg.ocr_dir);

    int sig = 0;
    while (sigwait(&stop, &sig) == 0 && sig == SIGHUP) model_registry_reload(sv.reg, sv.wq);
    log_info("received %s: finishing running requests (up to %ds)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
             cfg.shutdown_timeout_s);
    close_all(&sv);
    curl_global_cleanup();
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "serve")) return serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "keys")) return keys_command(argc - 1, argv + 1);
    /* The commands that decode images start libvips first (once, before threads). */
    if ((!strcmp(cmd, "detect") || !strcmp(cmd, "ocr")) && image_init(argv[0]) != 0) {
        fprintf(stderr, "sightd: cannot start libvips\n");
        return 1;
    }
    if (!strcmp(cmd, "usage")) return usage_command(argc - 1, argv + 1);
    if (!strcmp(cmd, "jobs")) return jobs_command(argc - 1, argv + 1);
    if (!strcmp(cmd, "detect")) return detect_command(argc - 1, argv + 1);
    if (!strcmp(cmd, "ocr")) return ocr_command(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench-ort")) return bench_ort_command(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("sightd %s\n", SIGHT_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "sightd: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
