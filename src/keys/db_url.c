#include "keys/db_url.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool db_url_is_postgres(const char *s)
{
    return s && (!strncasecmp(s, "postgresql://", 13) || !strncasecmp(s, "postgres://", 11));
}

/* Appends n bytes of p to out (at *o), truncating. */
static void put(char *out, size_t out_len, size_t *o, const char *p, size_t n)
{
    while (n-- && *o + 1 < out_len) out[(*o)++] = *p++;
}

void db_url_mask(const char *s, char *out, size_t out_len)
{
    if (!out || !out_len) return;
    out[0] = '\0';
    if (!s) return;
    if (!db_url_is_postgres(s)) {
        snprintf(out, out_len, "%s", s);
        return;
    }
    size_t o = 0;
    const char *auth = strstr(s, "://") + 3;
    put(out, out_len, &o, s, (size_t)(auth - s));
    /* The authority ends at the first '/', '?' or '#'; its userinfo at the
     * last '@' inside it (a password may itself hold '@' if unescaped). */
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@') at = p;
    const char *rest = auth;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        if (colon) {
            put(out, out_len, &o, auth, (size_t)(colon - auth));
            put(out, out_len, &o, ":***", 4);
            rest = at;
        }
    }
    /* The rest, with each password=VALUE parameter's value masked. */
    const char *q = strchr(rest, '?');
    if (!q) {
        put(out, out_len, &o, rest, strlen(rest));
        out[o] = '\0';
        return;
    }
    put(out, out_len, &o, rest, (size_t)(q - rest));
    const char *p = q;
    while (*p) {
        /* p at '?' or '&': the separator, then one name=value. */
        put(out, out_len, &o, p, 1);
        p++;
        size_t plen = strcspn(p, "&#");
        if (plen >= 9 && !strncasecmp(p, "password=", 9)) {
            put(out, out_len, &o, p, 9);
            put(out, out_len, &o, "***", 3);
        } else {
            put(out, out_len, &o, p, plen);
        }
        p += plen;
        if (*p == '#') {
            put(out, out_len, &o, p, strlen(p));
            break;
        }
    }
    out[o] = '\0';
}
