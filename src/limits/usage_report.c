#include "limits/usage_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool usage_parse_date(const char *s, double *t)
{
    int y, m, d;
    char tail;
    if (!s || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3) return false;
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31) return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
    time_t tt = timegm(&tm);
    struct tm back;
    gmtime_r(&tt, &back);
    if (back.tm_mday != d || back.tm_mon != m - 1) return false; /* 2026-02-30 */
    *t = (double)tt;
    return true;
}

json_t *usage_limits_json(const key_limits *l)
{
    char rate[32], qi[32], ql[32];
    limit_format_rate(l->rate, l->rate_per_s, rate, sizeof rate);
    limit_format_quota(l->quota_images, l->quota_images_per, qi, sizeof qi);
    limit_format_quota(l->quota_llm_tokens, l->quota_llm_per, ql, sizeof ql);
    json_t *o = json_object();
    json_object_set_new(o, "rate", l->rate ? json_string(rate) : json_null());
    json_object_set_new(o, "burst", l->rate ? json_integer(l->burst ? l->burst : l->rate) : json_null());
    json_object_set_new(o, "max_concurrent", l->max_concurrent ? json_integer(l->max_concurrent) : json_null());
    json_object_set_new(o, "quota_images", l->quota_images ? json_string(qi) : json_null());
    json_object_set_new(o, "quota_llm_tokens", l->quota_llm_tokens ? json_string(ql) : json_null());
    return o;
}

static json_t *day_json(const char *date, const usage_row *r)
{
    static const usage_row zero;
    if (!r) r = &zero;
    return json_pack("{s:s,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I,s:I}", "date", date, "requests",
                     (json_int_t)r->requests, "files", (json_int_t)r->files, "succeeded", (json_int_t)r->succeeded,
                     "failed", (json_int_t)r->failed, "megapixels", r->megapixels, "bytes_in", (json_int_t)r->bytes_in,
                     "yolo_runs", (json_int_t)r->yolo_runs, "ocr_runs", (json_int_t)r->ocr_runs, "llm_calls",
                     (json_int_t)r->llm_calls, "llm_prompt_tokens", (json_int_t)r->llm_prompt_tokens,
                     "llm_completion_tokens", (json_int_t)r->llm_completion_tokens);
}

json_t *usage_report(keystore *ks, const key_info *k, const char *from, const char *to)
{
    double t0, t1;
    if (!usage_parse_date(from, &t0) || !usage_parse_date(to, &t1) || t1 < t0) return NULL;
    usage_row *rows = NULL;
    size_t n = 0;
    if (keystore_usage_get(ks, k->id, from, to, &rows, &n) != 0) return NULL;
    json_t *days = json_array();
    size_t j = 0;
    for (double t = t0; t <= t1 && json_array_size(days) < USAGE_MAX_DAYS; t += 86400) {
        char date[11];
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(date, sizeof date, "%Y-%m-%d", &tm);
        const usage_row *r = j < n && !strcmp(rows[j].day, date) ? &rows[j++] : NULL;
        json_array_append_new(days, day_json(date, r));
    }
    free(rows);
    return json_pack("{s:{s:I,s:s,s:o},s:o}", "key", "id", (json_int_t)k->id, "name", k->name, "limits",
                     usage_limits_json(&k->limits), "usage", days);
}
