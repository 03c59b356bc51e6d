#include "config/config.h"

#include "util/paths.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum { OPT_HOSTPORT,
               OPT_STR,
               OPT_INT,
               OPT_SIZE,
               OPT_COUNT,
               OPT_BOOL,
               OPT_LOGLEVEL,
               OPT_LOGFORMAT,
               OPT_LAYOUT,
               OPT_LIMIT,
               OPT_REDIS_ERR,
               OPT_MODEL } opt_type;

typedef struct {
    const char *flag; /* without the leading -- */
    const char *env;
    opt_type type;
    size_t offset;    /* into sight_config */
    size_t size;      /* for strings */
    int64_t min, max; /* for numbers */
    const char *help;
} opt_def;

#define OFF(f) offsetof(sight_config, f)
enum { LIM_RATE,
       LIM_CONCURRENT,
       LIM_QUOTA_IMAGES };
#define SZ(f) sizeof(((sight_config *)0)->f)

static const opt_def OPTS[] = {
    {"listen", "SIGHT_LISTEN", OPT_HOSTPORT, 0, 0, 0, 0, "address to listen on, HOST:PORT (default 127.0.0.1:8080)"},
    {"data-dir", "SIGHT_DATA_DIR", OPT_STR, OFF(data_dir), SZ(data_dir), 0, 0, "writable state, the key store (default: data/ in a build tree, " PATHS_INSTALLED_DATA_DIR " installed)"},
    {"db", "SIGHT_DB", OPT_STR, OFF(db_path), SZ(db_path), 0, 0, "key store: a SQLite file, or a PostgreSQL URL postgresql://USER:PASS@HOST:PORT/DB (default DATA_DIR/sight.db)"},
    {"workers", "SIGHT_WORKERS", OPT_INT, OFF(workers), 0, 1, 1024, "files worked on at once, all requests together (default: number of CPUs)"},
    {"max-inflight", "SIGHT_MAX_INFLIGHT", OPT_INT, OFF(max_inflight), 0, 1, 100000, "prediction requests accepted at once; more get 429 (default 64)"},
    {"max-inflight-per-key", "SIGHT_MAX_INFLIGHT_PER_KEY", OPT_INT, OFF(max_inflight_per_key), 0, 0, 100000, "of those, most one API key may hold; more get 429 concurrency_limited (default 0: half of --max-inflight)"},
    {"max-connections", "SIGHT_MAX_CONNECTIONS", OPT_INT, OFF(max_connections), 0, 4, 1000000, "open HTTP connections; lowered to what the open-file limit allows (default 10000)"},
    {"max-connections-per-ip", "SIGHT_MAX_CONNECTIONS_PER_IP", OPT_INT, OFF(max_connections_per_ip), 0, 0, 1000000, "open HTTP connections from one address (default 0: no limit, as behind a proxy)"},
    {"http-threads", "SIGHT_HTTP_THREADS", OPT_INT, OFF(http_threads), 0, 1, 64, "threads serving HTTP connections, each many at once (default 2)"},
    {"tls-cert", "SIGHT_TLS_CERT", OPT_STR, OFF(tls_cert), SZ(tls_cert), 0, 0, "PEM certificate (chain) file: serve HTTPS (with --tls-key)"},
    {"tls-key", "SIGHT_TLS_KEY", OPT_STR, OFF(tls_key), SZ(tls_key), 0, 0, "PEM private key file for --tls-cert"},
    {"max-file-size", "SIGHT_MAX_FILE_SIZE", OPT_SIZE, OFF(max_file_bytes), 0, 1, INT64_MAX, "largest uploaded file (default 20MiB)"},
    {"max-body-size", "SIGHT_MAX_BODY_SIZE", OPT_SIZE, OFF(max_body_bytes), 0, 1, INT64_MAX, "largest request body (default 100MiB)"},
    {"max-files", "SIGHT_MAX_FILES", OPT_INT, OFF(max_files), 0, 1, 100000, "files per request (default 32)"},
    {"max-parts", "SIGHT_MAX_PARTS", OPT_INT, OFF(max_parts), 0, 1, 1000000, "multipart parts or form fields per request (default 1000)"},
    {"max-pixels", "SIGHT_MAX_PIXELS", OPT_COUNT, OFF(max_pixels), 0, 1, INT64_MAX, "largest decoded image in pixels; refuses decompression bombs (default 50M)"},
    {"max-tiles", "SIGHT_MAX_TILES", OPT_INT, OFF(max_tiles), 0, 1, 10000, "tiles one image may be cut into for sliced detection (\"slice\"); more is that file's too_many_tiles error (default 64)"},
    {"max-video-seconds", "SIGHT_MAX_VIDEO_SECONDS", OPT_INT, OFF(max_video_seconds), 0, 1, 86400, "longest video file accepted, in seconds of video (default 600)"},
    {"max-frames", "SIGHT_MAX_FRAMES", OPT_INT, OFF(max_frames), 0, 1, 1000000, "frames analysed per video file at most; a request's max_frames may only lower it (default 3000)"},
    {"max-pixels-heif", "SIGHT_MAX_PIXELS_HEIF", OPT_COUNT, OFF(max_pixels_heif), 0, 1, INT64_MAX, "largest HEIC/HEIF or AVIF image in pixels: libheif decodes at full size (default 49M, a phone's 48 MP photo)"},
    {"client-timeout", "SIGHT_CLIENT_TIMEOUT", OPT_INT, OFF(client_timeout_s), 0, 1, 86400, "seconds a connection may make no progress, sending or reading its stream, before it is closed (default 60)"},
    {"header-timeout", "SIGHT_HEADER_TIMEOUT", OPT_INT, OFF(header_timeout_s), 0, 0, 86400, "seconds for the request line and headers, from the accept or the previous request (default 20; 0: off)"},
    {"body-timeout", "SIGHT_BODY_TIMEOUT", OPT_INT, OFF(body_timeout_s), 0, 0, 86400, "seconds of grace for a request body, extended by --body-min-rate (default 20; 0: off)"},
    {"body-min-rate", "SIGHT_BODY_MIN_RATE", OPT_INT, OFF(body_min_rate), 0, 0, 1000000000, "bytes/s a body must keep up after its grace (default 500; 0: the grace alone)"},
    {"shutdown-timeout", "SIGHT_SHUTDOWN_TIMEOUT", OPT_INT, OFF(shutdown_timeout_s), 0, 0, 86400, "seconds SIGTERM waits for running streams (default 30)"},
    {"retry-after", "SIGHT_RETRY_AFTER", OPT_INT, OFF(retry_after_s), 0, 0, 3600, "Retry-After seconds sent with 429 (default 1)"},
    {"key-cache-ttl", "SIGHT_KEY_CACHE_TTL", OPT_INT, OFF(key_cache_ttl_s), 0, 0, 3600, "seconds a verified API key is kept in memory; a key change in the store drops it within 0.2 s (default 60; 0: every request reads the store)"},
    {"log-level", "SIGHT_LOG_LEVEL", OPT_LOGLEVEL, OFF(log_level), SZ(log_level), 0, 0, "error, warn, info or debug (default info)"},
    {"log-format", "SIGHT_LOG_FORMAT", OPT_LOGFORMAT, OFF(log_format), SZ(log_format), 0, 0, "text, or json: one JSON object a line, for log shippers (default text)"},
    {"model", "SIGHT_MODEL", OPT_MODEL, OFF(model_path), SZ(model_path), 0, 0, "YOLO ONNX model for is_yolo, NAME=PATH or PATH (named by its stem), repeatable; none: no detection (default: the built-in YOLOX-Nano)"},
    {"models-dir", "SIGHT_MODELS_DIR", OPT_STR, OFF(models_dir), SZ(models_dir), 0, 0, "serve every .onnx in this folder too, named by its file stem (SIGHUP picks up new and changed files)"},
    {"default-model", "SIGHT_DEFAULT_MODEL", OPT_STR, OFF(default_model), SZ(default_model), 0, 0, "the --model NAME a request without \"model\" gets (default: the first)"},
    {"labels", "SIGHT_LABELS", OPT_STR, OFF(labels_path), SZ(labels_path), 0, 0, "class names, one per line, for a model without names metadata"},
    {"model-layout", "SIGHT_MODEL_LAYOUT", OPT_LAYOUT, OFF(model_layout), SZ(model_layout), 0, 0, "auto, yolov8, end2end, yolov5 or yolox (default auto: from the output shape)"},
    {"ort-threads", "SIGHT_ORT_THREADS", OPT_INT, OFF(ort_threads), 0, 0, 256, "ONNX Runtime intra-op threads per run (default: CPUs / ort-concurrency)"},
    {"ort-concurrency", "SIGHT_ORT_CONCURRENCY", OPT_INT, OFF(ort_concurrency), 0, 0, 256, "model runs at once (default 0: one per CPU)"},
    {"url-allow", "SIGHT_URL_ALLOW", OPT_STR, OFF(url_allow), SZ(url_allow), 0, 0, "v2 image URLs: private CIDRs or host names to allow anyway, comma-separated (default none)"},
    {"url-http", "SIGHT_URL_HTTP", OPT_BOOL, OFF(url_http), 0, 0, 0, "v2 image URLs may use plain http (default true)"},
    {"icc-to-srgb", "SIGHT_ICC_TO_SRGB", OPT_BOOL, OFF(icc_to_srgb), 0, 0, 0, "convert images with a non-sRGB ICC profile (Display P3, Adobe RGB) to sRGB (default true)"},
    {"url-timeout", "SIGHT_URL_TIMEOUT", OPT_INT, OFF(url_timeout_s), 0, 1, 3600, "seconds to fetch one image URL (default 30)"},
    {"url-connect-timeout", "SIGHT_URL_CONNECT_TIMEOUT", OPT_INT, OFF(url_connect_timeout_s), 0, 1, 600, "seconds to connect for one image URL (default 10)"},
    {"url-max-size", "SIGHT_URL_MAX_SIZE", OPT_SIZE, OFF(url_max_bytes), 0, 1, INT64_MAX, "largest image fetched from a URL (default 20MiB)"},
    {"url-max-redirects", "SIGHT_URL_MAX_REDIRECTS", OPT_INT, OFF(url_max_redirects), 0, 0, 20, "redirects followed per image URL (default 5)"},
    {"ocr-dir", "SIGHT_OCR_DIR", OPT_STR, OFF(ocr_dir), SZ(ocr_dir), 0, 0, "PaddleOCR models folder (default: the installation's, models/ocr in a build tree)"},
    {"llm-url", "SIGHT_LLM_URL", OPT_STR, OFF(llm_url), SZ(llm_url), 0, 0, "OpenAI-compatible base URL for is_llm (default: none, the local OCR-based analyser)"},
    {"llm-model", "SIGHT_LLM_MODEL", OPT_STR, OFF(llm_model), SZ(llm_model), 0, 0, "model name sent to the LLM endpoint"},
    {"llm-api-key", "SIGHT_LLM_API_KEY", OPT_STR, OFF(llm_api_key), SZ(llm_api_key), 0, 0, "sent as Authorization: Bearer to the LLM endpoint"},
    {"llm-timeout", "SIGHT_LLM_TIMEOUT", OPT_INT, OFF(llm_timeout_s), 0, 1, 3600, "seconds for one LLM answer (default 120)"},
    {"llm-max-tokens", "SIGHT_LLM_MAX_TOKENS", OPT_INT, OFF(llm_max_tokens), 0, 1, 1000000, "max_tokens per answer (default 512)"},
    {"llm-max-image-side", "SIGHT_LLM_MAX_IMAGE_SIDE", OPT_INT, OFF(llm_max_image_side), 0, 64, 16384, "images are downscaled to this long side before sending (default 1024)"},
    {"llm-concurrency", "SIGHT_LLM_CONCURRENCY", OPT_INT, OFF(llm_concurrency), 0, 1, 1024, "LLM calls at once (default 4)"},
    /* OPT_LIMIT: min says which limit (LIM_*). */
    {"default-rate", "SIGHT_DEFAULT_RATE", OPT_LIMIT, 0, 0, LIM_RATE, 0, "requests per key without its own rate: N/s, N/min or N/h (default none)"},
    {"default-max-concurrent", "SIGHT_DEFAULT_MAX_CONCURRENT", OPT_LIMIT, 0, 0, LIM_CONCURRENT, 0, "open requests per key without its own cap (default none)"},
    {"default-quota-images", "SIGHT_DEFAULT_QUOTA_IMAGES", OPT_LIMIT, 0, 0, LIM_QUOTA_IMAGES, 0, "images per key without its own quota: N/day or N/month (default none)"},
    {"metering", "SIGHT_METERING", OPT_BOOL, OFF(metering), 0, 0, 0, "record each request's use per key and day (GET /api/v1/usage; needed by quotas) (default true)"},
    {"redis", "SIGHT_REDIS", OPT_STR, OFF(redis_url), SZ(redis_url), 0, 0, "redis://[:PASSWORD@]HOST:PORT[/DB]: rate, open-request and quota counters shared by every node (default none: limits per node)"},
    {"limits-on-redis-error", "SIGHT_LIMITS_ON_REDIS_ERROR", OPT_REDIS_ERR, OFF(limits_deny_on_redis_error), 0, 0, 0, "allow or deny requests of limited keys while Redis cannot be reached (default allow)"},
    {"ledger-timeout", "SIGHT_LEDGER_TIMEOUT", OPT_INT, OFF(ledger_timeout_s), 0, 1, 3600, "seconds a request waits for its use to be committed, and the ledger may fail to commit before the server refuses new work with 503 (default 30)"},
    {"max-job-items", "SIGHT_MAX_JOB_ITEMS", OPT_INT, OFF(max_job_items), 0, 1, 10000000, "image URLs per job, POST /api/v1/jobs (default 100000)"},
    {"max-open-jobs", "SIGHT_MAX_OPEN_JOBS", OPT_INT, OFF(max_open_jobs), 0, 0, 1000000, "queued or running jobs per key (default 10; 0: no limit)"},
    {"job-lease", "SIGHT_JOB_LEASE", OPT_INT, OFF(job_lease_s), 0, 1, 3600, "seconds a node holds a job item it claimed without renewing it; a node that dies leaves its items to others after this (default 30)"},
    {"job-retention", "SIGHT_JOB_RETENTION", OPT_INT, OFF(job_retention_s), 0, 1, 366 * 86400, "seconds an ended job, its events and results are kept (default 604800, 7 days)"},
    {"create-first-key", "SIGHT_CREATE_FIRST_KEY", OPT_BOOL, OFF(create_first_key), 0, 0, 0, "on start, create and print a key if the store has none active"},
};
#define NOPTS (sizeof OPTS / sizeof OPTS[0])

void config_defaults(sight_config *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->listen_host, "127.0.0.1");
    c->listen_port = 8080;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = n > 0 ? (int)n : 1;
    c->max_inflight = 64;
    c->max_connections = 10000;
    c->http_threads = 2;
    c->max_file_bytes = 20LL << 20;
    c->max_body_bytes = 100LL << 20;
    c->max_files = 32;
    c->max_pixels = 50000000;
    c->max_tiles = 64;
    c->max_video_seconds = 600;
    c->max_frames = 3000;
    c->max_pixels_heif = 49000000; /* a 48 MP phone photo is 8064x6048 = 48.8M */
    c->client_timeout_s = 60;
    c->shutdown_timeout_s = 30;
    c->ledger_timeout_s = 30;
    c->max_job_items = 100000;
    c->max_open_jobs = 10;
    c->job_lease_s = 30;
    c->job_retention_s = 7 * 86400;
    c->header_timeout_s = 20;
    c->body_timeout_s = 20;
    c->body_min_rate = 500;
    c->max_parts = 1000;
    c->retry_after_s = 1;
    c->key_cache_ttl_s = 60;
    c->icc_to_srgb = true; /* what a phone's Display P3 photo shows is what the model should see */
    strcpy(c->log_level, "info");
    strcpy(c->log_format, "text");
    strcpy(c->model_layout, "auto");
    c->url_http = true;
    c->url_timeout_s = 30;
    c->url_connect_timeout_s = 10;
    c->url_max_redirects = 5;
    c->url_max_bytes = 20LL << 20;
    c->llm_timeout_s = 120;
    c->llm_max_tokens = 512;
    c->llm_max_image_side = 1024;
    c->llm_concurrency = 4;
    c->metering = true;
}

typedef struct {
    const char *suffix;
    unsigned long long mul;
} unit;

/* A whole number with an optional unit suffix (matched case-insensitively). */
static int64_t parse_scaled(const char *s, const unit *units)
{
    if (!s || !isdigit((unsigned char)*s)) return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -1;
    unsigned long long mul = 1;
    if (*end) {
        mul = 0;
        for (const unit *u = units; u->suffix; u++)
            if (!strcasecmp(end, u->suffix)) mul = u->mul;
        if (!mul) return -1;
    }
    if (v > (unsigned long long)INT64_MAX / mul) return -1;
    return (int64_t)(v * mul);
}

int64_t config_parse_size(const char *s)
{
    /* Byte sizes: K, M, G and their KiB/KB forms are all binary multiples. */
    static const unit bytes[] = {{"k", 1ULL << 10}, {"kib", 1ULL << 10}, {"kb", 1ULL << 10}, {"m", 1ULL << 20}, {"mib", 1ULL << 20}, {"mb", 1ULL << 20}, {"g", 1ULL << 30}, {"gib", 1ULL << 30}, {"gb", 1ULL << 30}, {NULL, 0}};
    return parse_scaled(s, bytes);
}

int64_t config_parse_count(const char *s)
{
    static const unit counts[] = {{"k", 1000ULL}, {"m", 1000000ULL}, {"g", 1000000000ULL}, {NULL, 0}};
    return parse_scaled(s, counts);
}

static int parse_int(const char *s, int64_t *out)
{
    if (!s || !*s) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on")) *out = true;
    else if (!strcmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off")) *out = false;
    else return -1;
    return 0;
}

static const opt_def *find_opt(const char *flag)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (!strcmp(OPTS[i].flag, flag)) return &OPTS[i];
    return NULL;
}

static int set_opt(sight_config *c, const opt_def *o, const char *value, char *err, size_t err_len)
{
    char *base = (char *)c;
    switch (o->type) {
    case OPT_HOSTPORT: {
        /* HOST:PORT, [v6]:PORT or :PORT (all interfaces). */
        const char *colon = strrchr(value, ':');
        int64_t port;
        if (!colon || parse_int(colon + 1, &port) || port < 0 || port > 65535) { /* 0: any free port */
            snprintf(err, err_len, "--%s wants HOST:PORT, got '%s'", o->flag, value);
            return -1;
        }
        size_t hl = (size_t)(colon - value);
        const char *h = value;
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
            h++;
            hl -= 2;
        }
        if (hl >= sizeof c->listen_host) {
            snprintf(err, err_len, "--%s: host too long", o->flag);
            return -1;
        }
        if (hl == 0) strcpy(c->listen_host, "0.0.0.0");
        else {
            memcpy(c->listen_host, h, hl);
            c->listen_host[hl] = 0;
        }
        c->listen_port = (uint16_t)port;
        return 0;
    }
    case OPT_LIMIT: {
        key_limits *l = &c->default_limits;
        char why[160];
        int rc = o->min == LIM_RATE    ? limit_parse_rate(value, &l->rate, &l->rate_per_s, why, sizeof why)
            : o->min == LIM_CONCURRENT ? limit_parse_positive(value, &l->max_concurrent, why, sizeof why)
                                       : limit_parse_quota(value, &l->quota_images, &l->quota_images_per, why, sizeof why);
        if (rc) snprintf(err, err_len, "--%s: %s", o->flag, why);
        return rc;
    }
    case OPT_MODEL: {
        if (c->models_from_env) c->n_models = 0, c->models_from_env = false;
        if (c->n_models >= SIGHT_MAX_MODELS || !*value || strlen(value) >= sizeof c->model_specs[0]) {
            snprintf(err, err_len, "--%s: empty, too long, or more than %d models", o->flag, SIGHT_MAX_MODELS);
            return -1;
        }
        /* NAME=PATH unless what precedes '=' could be a path (a '/' in it). */
        const char *eq = strchr(value, '=');
        const char *path = eq && !memchr(value, '/', (size_t)(eq - value)) ? eq + 1 : value;
        if (!*path || strlen(path) >= sizeof c->model_path || (eq && path != value && eq - value >= 64)) {
            snprintf(err, err_len, "--%s: '%s' wants NAME=PATH or PATH", o->flag, value);
            return -1;
        }
        if (c->n_models == 0) strcpy(c->model_path, path);
        strcpy(c->model_specs[c->n_models++], value);
        return 0;
    }
    case OPT_REDIS_ERR:
        if (strcmp(value, "allow") && strcmp(value, "deny")) {
            snprintf(err, err_len, "--%s wants allow or deny, got '%s'", o->flag, value);
            return -1;
        }
        *(bool *)((char *)c + o->offset) = !strcmp(value, "deny");
        return 0;
    case OPT_STR:
    case OPT_LAYOUT:
    case OPT_LOGLEVEL:
    case OPT_LOGFORMAT:
        if (o->type == OPT_LOGFORMAT && strcmp(value, "text") && strcmp(value, "json")) {
            snprintf(err, err_len, "--%s wants text or json, got '%s'", o->flag, value);
            return -1;
        }
        if (o->type == OPT_LAYOUT && strcmp(value, "auto") && strcmp(value, "yolov8") && strcmp(value, "end2end") &&
            strcmp(value, "yolov5") && strcmp(value, "yolox")) {
            snprintf(err, err_len, "--%s wants auto, yolov8, end2end, yolov5 or yolox, got '%s'", o->flag, value);
            return -1;
        }
        if (o->type == OPT_LOGLEVEL && strcmp(value, "error") && strcmp(value, "warn") &&
            strcmp(value, "info") && strcmp(value, "debug")) {
            snprintf(err, err_len, "--%s wants error, warn, info or debug, got '%s'", o->flag, value);
            return -1;
        }
        if (!*value || strlen(value) >= o->size) {
            snprintf(err, err_len, "--%s: value empty or too long", o->flag);
            return -1;
        }
        strcpy(base + o->offset, value);
        return 0;
    case OPT_INT: {
        int64_t v;
        if (parse_int(value, &v) || v < o->min || v > o->max) {
            snprintf(err, err_len, "--%s wants a whole number from %lld to %lld, got '%s'", o->flag,
                     (long long)o->min, (long long)o->max, value);
            return -1;
        }
        *(int *)(base + o->offset) = (int)v;
        return 0;
    }
    case OPT_SIZE:
    case OPT_COUNT: {
        int64_t v = o->type == OPT_SIZE ? config_parse_size(value) : config_parse_count(value);
        if (v < o->min) {
            snprintf(err, err_len, o->type == OPT_SIZE ? "--%s wants a size such as 20MiB or 1048576, got '%s'" : "--%s wants a count such as 50M or 1000000, got '%s'", o->flag, value);
            return -1;
        }
        *(int64_t *)(base + o->offset) = v;
        return 0;
    }
    case OPT_BOOL: {
        bool b;
        if (parse_bool(value, &b)) {
            snprintf(err, err_len, "--%s wants true or false, got '%s'", o->flag, value);
            return -1;
        }
        *(bool *)(base + o->offset) = b;
        return 0;
    }
    }
    return -1;
}

int config_set(sight_config *c, const char *flag, const char *value, char *err, size_t err_len)
{
    const opt_def *o = find_opt(flag);
    if (!o) {
        snprintf(err, err_len, "unknown option --%s", flag);
        return -1;
    }
    return set_opt(c, o, value, err, err_len);
}

void config_print_usage(FILE *out, const char *command)
{
    fprintf(out, "usage: sightd %s [options]\n\noptions (each also read from its environment variable):\n",
            command ? command : "serve");
    for (size_t i = 0; i < NOPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", OPTS[i].flag, OPTS[i].type == OPT_BOOL ? "" : " V");
        fprintf(out, "  %-22s %-24s %s\n", left, OPTS[i].env, OPTS[i].help);
    }
}

int config_parse(sight_config *c, int argc, char **argv, int first, const char *command)
{
    char err[256];
    for (size_t i = 0; i < NOPTS; i++) {
        const char *v = getenv(OPTS[i].env);
        if (v && *v && set_opt(c, &OPTS[i], v, err, sizeof err)) {
            fprintf(stderr, "sightd: %s (from %s)\n", err, OPTS[i].env);
            return -1;
        }
    }
    c->models_from_env = c->n_models > 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            config_print_usage(stdout, command);
            return 1;
        }
        if (strncmp(a, "--", 2)) {
            fprintf(stderr, "sightd: unexpected argument '%s'\n", a);
            return -1;
        }
        char flag[64];
        const char *eq = strchr(a + 2, '=');
        size_t fl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (fl >= sizeof flag) {
            fprintf(stderr, "sightd: unknown option %s\n", a);
            return -1;
        }
        memcpy(flag, a + 2, fl);
        flag[fl] = 0;
        const opt_def *o = find_opt(flag);
        if (!o) {
            fprintf(stderr, "sightd: unknown option --%s (see sightd %s --help)\n", flag, command);
            return -1;
        }
        const char *val;
        if (eq) val = eq + 1;
        else if (o->type == OPT_BOOL) val = "true";
        else if (i + 1 < argc) val = argv[++i];
        else {
            fprintf(stderr, "sightd: --%s needs a value\n", flag);
            return -1;
        }
        if (set_opt(c, o, val, err, sizeof err)) {
            fprintf(stderr, "sightd: %s\n", err);
            return -1;
        }
    }
    if (config_resolve_paths(c)) {
        fprintf(stderr, "sightd: a default path is too long\n");
        return -1;
    }
    return 0;
}

int config_resolve_paths(sight_config *c)
{
    if (c->data_dir[0] && c->db_path[0] && c->ocr_dir[0]) return 0;
    install_paths ip;
    paths_detect(&ip);
    if (!c->data_dir[0] && snprintf(c->data_dir, sizeof c->data_dir, "%s", ip.data_dir) >= (int)sizeof c->data_dir)
        return -1;
    if (!c->db_path[0] && snprintf(c->db_path, sizeof c->db_path, "%s/sight.db", c->data_dir) >= (int)sizeof c->db_path)
        return -1;
    /* No installation found: OCR stays off with a message naming this folder. */
    if (!c->ocr_dir[0])
        snprintf(c->ocr_dir, sizeof c->ocr_dir, "%s", ip.ocr_dir[0] ? ip.ocr_dir : "(no share directory beside the executable)");
    return 0;
}
