#include "keys/limit_spec.h"

#include "util/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* Digits only (no sign, no spaces), 1 .. 10^12. */
static int count_of(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 13) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 1000000000000LL) return -1;
    *out = v;
    return 0;
}

int limit_parse_positive(const char *s, int64_t *n, char *err, size_t err_len)
{
    if (s && !strcmp(s, "none")) return *n = 0, 0;
    if (!s || count_of(s, strlen(s), n))
        return fail(err, err_len, "'%.40s' is not a whole number from 1 (or none)", s ? s : "");
    return 0;
}

int limit_parse_rate(const char *s, int64_t *n, int64_t *per_s, char *err, size_t err_len)
{
    if (s && !strcmp(s, "none")) return *n = 0, *per_s = 0, 0;
    const char *slash = s ? strchr(s, '/') : NULL;
    int64_t v;
    if (!slash || count_of(s, (size_t)(slash - s), &v))
        return fail(err, err_len, "'%.40s' is not a rate: give N/s, N/min or N/h with N from 1 (or none)", s ? s : "");
    const char *u = slash + 1;
    if (!strcmp(u, "s")) *per_s = 1;
    else if (!strcmp(u, "min")) *per_s = 60;
    else if (!strcmp(u, "h")) *per_s = 3600;
    else return fail(err, err_len, "'%.40s': the rate's unit must be s, min or h", s);
    *n = v;
    return 0;
}

int limit_parse_quota(const char *s, int64_t *n, int *per, char *err, size_t err_len)
{
    if (s && !strcmp(s, "none")) return *n = 0, *per = 0, 0;
    const char *slash = s ? strchr(s, '/') : NULL;
    int64_t v;
    if (!slash || count_of(s, (size_t)(slash - s), &v))
        return fail(err, err_len, "'%.40s' is not a quota: give N/day or N/month with N from 1 (or none)", s ? s : "");
    if (!strcmp(slash + 1, "day")) *per = QUOTA_DAY;
    else if (!strcmp(slash + 1, "month")) *per = QUOTA_MONTH;
    else return fail(err, err_len, "'%.40s': the quota's period must be day or month", s);
    *n = v;
    return 0;
}

void limit_format_rate(int64_t n, int64_t per_s, char *out, size_t len)
{
    if (n <= 0) snprintf(out, len, "none");
    else snprintf(out, len, "%lld/%s", (long long)n, per_s == 1 ? "s" : per_s == 60 ? "min"
                                                                                    : "h");
}

void limit_format_quota(int64_t n, int per, char *out, size_t len)
{
    if (n <= 0) snprintf(out, len, "none");
    else snprintf(out, len, "%lld/%s", (long long)n, per == QUOTA_MONTH ? "month" : "day");
}

int limits_any(const key_limits *l)
{
    return l->rate > 0 || l->max_concurrent > 0 || l->quota_images > 0 || l->quota_llm_tokens > 0;
}
