/* GET /api/v1/usage: the calling key's limits and its use per UTC day. The
 * key comes as for prediction (X-API-Key, Authorization: Bearer) or as
 * ?api_key=; optional from and to (YYYY-MM-DD, UTC) default to the first of
 * this month and today. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_internal.h"
#include "limits/usage_report.h"
#include "util/json_out.h"

const char *get_request_key(struct MHD_Connection *c)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth && !strncasecmp(auth, "Bearer ", 7)) {
        auth += 7;
        while (*auth == ' ') auth++;
        return auth;
    }
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    return v ? v : MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "api_key");
}

bool get_key_valid(struct MHD_Connection *c, http_req *hr, int64_t *id, key_limits *own, enum MHD_Result *ret)
{
    const char *key = get_request_key(c);
    if (!key || !*key) {
        *ret = reply_error(c, hr, 401, "missing_api_key",
                           "no API key: send Authorization: Bearer <key>, X-API-Key or ?api_key=");
        return false;
    }
    switch (keystore_verify_limits(hr->srv->keys, key, id, own)) {
    case KEY_VALID: return true;
    case KEY_UNKNOWN: *ret = reply_error(c, hr, 401, "invalid_api_key", "the API key is unknown or revoked"); break;
    default: *ret = reply_error(c, hr, 503, "key_store_unavailable", "the API key store cannot be read; try again");
    }
    return false;
}

enum MHD_Result usage_handle(struct MHD_Connection *c, http_req *hr)
{
    server *s = hr->srv;
    int64_t id;
    key_limits own;
    enum MHD_Result ret;
    if (!get_key_valid(c, hr, &id, &own, &ret)) return ret;
    char today[11], first[11];
    limiter_today(s->lim, today);
    memcpy(first, today, sizeof first);
    memcpy(first + 8, "01", 2);
    const char *from = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from");
    const char *to = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to");
    if (!to) to = today;
    if (!from) from = strcmp(first, to) <= 0 ? first : to;
    double tf, tt;
    if (!usage_parse_date(from, &tf) || !usage_parse_date(to, &tt))
        return reply_error(c, hr, 422, "invalid_date", "from and to are dates, YYYY-MM-DD");
    if (tt < tf || (tt - tf) / 86400 >= USAGE_MAX_DAYS)
        return reply_error(c, hr, 422, "invalid_date", "from must not be after to, and at most %d days apart",
                           USAGE_MAX_DAYS);

    key_info *keys = NULL;
    size_t n = 0;
    key_info k = {.id = id};
    if (keystore_list(s->keys, &keys, &n) == 0)
        for (size_t i = 0; i < n; i++)
            if (keys[i].id == id) k = keys[i];
    free(keys);
    limiter_effective(s->lim, &own, &k.limits); /* what applies, the server's defaults included */
    json_t *report = usage_report(s->keys, &k, from, to);
    if (!report) return reply_error(c, hr, 503, "key_store_unavailable", "the usage ledger cannot be read; try again");
    size_t len;
    char *body = json_line(report, &len);
    return body ? reply_body(c, hr, 200, "application/json", body, len) : MHD_NO;
}
