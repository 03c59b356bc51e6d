/* A key's limits and the text forms of their values ("30/min", "1000/day",
 * "none"). A leaf: the key store keeps these, the CLI and the configuration
 * parse them, the limiter enforces them. */
#ifndef SIGHT_KEYS_LIMIT_SPEC_H
#define SIGHT_KEYS_LIMIT_SPEC_H

#include <stddef.h>
#include <stdint.h>

/* Quota periods are calendar periods in UTC. */
typedef enum { QUOTA_DAY = 1,
               QUOTA_MONTH = 2 } quota_period;

/* Every count 0 = no limit. */
typedef struct {
    int64_t rate;       /* requests per rate_per_s seconds */
    int64_t rate_per_s; /* 1, 60 or 3600 */
    int64_t burst;      /* 0 = rate */
    int64_t max_concurrent;
    int64_t quota_images; /* files per quota_images_per */
    int quota_images_per; /* quota_period */
    int64_t quota_llm_tokens;
    int quota_llm_per;
} key_limits;

/* Each parser takes "none" as 0 (no limit) and returns 0, or -1 with err
 * set to a sentence naming what is expected. */
int limit_parse_rate(const char *s, int64_t *n, int64_t *per_s, char *err, size_t err_len);
int limit_parse_quota(const char *s, int64_t *n, int *per, char *err, size_t err_len);
int limit_parse_positive(const char *s, int64_t *n, char *err, size_t err_len);

/* "30/min", "1000/day"; "none" for 0. */
void limit_format_rate(int64_t n, int64_t per_s, char *out, size_t len);
void limit_format_quota(int64_t n, int per, char *out, size_t len);

/* Whether any limit is set. */
int limits_any(const key_limits *l);

#endif
