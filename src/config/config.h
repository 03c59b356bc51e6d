/* Server configuration: every option is a command-line flag and an environment
 * variable (flag wins). One table in config.c drives parsing, --help and the
 * README's list, so they cannot drift apart. */
#ifndef SIGHT_CONFIG_H
#define SIGHT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "keys/limit_spec.h"

#define SIGHT_MAX_MODELS 16

typedef struct {
    char listen_host[256];
    uint16_t listen_port;
    char data_dir[1024];        /* writable state; "" = the installation's default (util/paths.h) */
    char db_path[1024];         /* "" = DATA_DIR/sight.db */
    int workers;                /* files worked on at once, all requests together */
    int max_inflight;           /* prediction requests accepted at once; more get 429 */
    int max_inflight_per_key;   /* of those, one key's most; 0 = half of max_inflight */
    int max_connections;        /* open HTTP connections */
    int max_connections_per_ip; /* 0: no limit */
    int http_threads;           /* the HTTP engine's epoll thread pool */
    char tls_cert[1024];        /* "" = plain HTTP */
    char tls_key[1024];
    int64_t max_file_bytes;
    int64_t max_body_bytes;
    int max_files;
    int64_t max_pixels;
    int max_tiles;         /* per image under sliced detection */
    int max_video_seconds; /* longest video accepted */
    int max_frames;        /* analysed frames per video file */
    /* HEIF/AVIF: libheif cannot shrink on load */
    int64_t max_pixels_heif;
    int client_timeout_s;   /* idle time before a silent client is dropped */
    int header_timeout_s;   /* request line + headers must arrive within this; 0 = off */
    int body_timeout_s;     /* grace for a request body; 0 = off */
    int body_min_rate;      /* bytes/s that extend the body's deadline */
    int max_parts;          /* multipart parts / form fields per request */
    int shutdown_timeout_s; /* how long SIGTERM waits for running streams */
    int retry_after_s;      /* Retry-After sent with 429 */
    int key_cache_ttl_s;    /* verified keys kept in memory (key_cache.h); 0 = no cache */
    char log_level[16];
    char log_format[8];    /* text or json */
    bool create_first_key; /* serve: create and print a key when none is active */
    char model_path[1024]; /* the first --model's file; "" = the built-in model, "none" = no detection */
    /* Every --model as given, NAME=PATH or PATH (named by its stem), in order. */
    char model_specs[SIGHT_MAX_MODELS][1100];
    int n_models;
    bool models_from_env;   /* SIGHT_MODEL set them: a --model replaces, not adds */
    char default_model[64]; /* --default-model; "" = the first */
    char models_dir[1024];  /* every .onnx in it is a model named by its stem; "" = none */
    char labels_path[1024]; /* class names when the model has none */
    char model_layout[16];  /* auto, yolov8, end2end, yolov5, yolox */
    int ort_threads;        /* intra-op threads per Run; 0 = cores / ort_concurrency */
    int ort_concurrency;    /* model Runs at once; 0 = one per CPU */
    char url_allow[2048];   /* v2 fetches: CIDRs/hosts opened despite being private */
    bool url_http;          /* allow plain http image URLs */
    bool icc_to_srgb;       /* convert images with a non-sRGB ICC profile to sRGB */
    int url_timeout_s, url_connect_timeout_s, url_max_redirects;
    int64_t url_max_bytes;
    char ocr_dir[1024]; /* PaddleOCR ONNX models and dictionary; "" = the installation's */
    char llm_url[1024]; /* OpenAI-compatible base URL; empty = the local analyser */
    char llm_model[256];
    char llm_api_key[512];
    int llm_timeout_s;
    int llm_max_tokens;
    int llm_max_image_side;          /* images are downscaled to this before sending */
    int llm_concurrency;             /* provider calls at once */
    key_limits default_limits;       /* for keys without their own (0 = none) */
    bool metering;                   /* record each request's use in the ledger */
    char redis_url[512];             /* limits' shared state; "" = in this process */
    bool limits_deny_on_redis_error; /* Redis down: 503 for limited keys (else admit) */
    int ledger_timeout_s;            /* wait for a ledger commit; failing this long: not ready */
    int max_job_items;               /* URLs per job */
    int max_open_jobs;               /* queued or running jobs per key; 0 = no limit */
    int job_lease_s;                 /* a claimed item's lease */
    int job_retention_s;             /* ended jobs are purged after this */
} sight_config;

void config_defaults(sight_config *c);

/* Applies SIGHT_* environment variables, then argv[first..argc), then fills
 * the paths left unset from the installation (config_resolve_paths). Unknown
 * flags, bad values and stray arguments print a message to stderr and return
 * -1. Returns 1 when --help was given (usage already printed), else 0. */
int config_parse(sight_config *c, int argc, char **argv, int first, const char *command);

/* Parses a single option value; exposed for tests. Returns 0 or -1 with err set. */
int config_set(sight_config *c, const char *flag, const char *value, char *err, size_t err_len);

/* Fills the unset data_dir, db_path and ocr_dir from the executable's
 * installation (util/paths.h), never from the working directory. -1 when a
 * path would not fit. */
int config_resolve_paths(sight_config *c);

void config_print_usage(FILE *out, const char *command);

/* Parses sizes like "20MiB", "100M", "512k", "1048576". Returns -1 when invalid. */
int64_t config_parse_size(const char *s);
/* Parses counts with decimal suffixes: "50M" = 50000000, "12k". -1 when invalid. */
int64_t config_parse_count(const char *s);

#endif
