#include "util/json_out.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. Rejects
 * overlong forms, surrogates and code points above U+10FFFF, as jansson does. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c >= 0x01 && c < 0x80) return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

char *utf8_lossy_dup(const char *s, size_t len, size_t *out_len)
{
    /* Worst case every byte becomes the 3-byte U+FFFD. */
    char *buf = malloc(len * 3 + 1);
    if (!buf) return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq(p + i, len - i);
        if (k) {
            memcpy(buf + o, p + i, k);
            o += k;
            i += k;
        } else {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    buf[o] = 0;
    if (out_len) *out_len = o;
    return buf;
}

json_t *json_string_lossy(const char *s, size_t len)
{
    if (!s) return json_string("");
    size_t o;
    char *buf = utf8_lossy_dup(s, len, &o);
    if (!buf) return NULL;
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j;
}

/* Length of the UTF-8 sequence at p (at most n bytes) that must be escaped
 * (U+0080..U+009F: C2 80..C2 9F; U+2028, U+2029: E2 80 A8, E2 80 A9), or 0. */
static size_t separator_at(const unsigned char *p, size_t n, unsigned *cp)
{
    if (n >= 2 && p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {
        *cp = p[1];
        return 2;
    }
    if (n >= 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
        *cp = 0x2000u | (p[2] & 0x3Fu); /* E2 80 A8 = U+2028 */
        return 3;
    }
    return 0;
}

char *json_escape_separators(const char *text, size_t len, size_t *len_out)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t extra = 0;
    unsigned cp;
    /* Outside strings jansson writes ASCII only, so every match is inside a
     * string, where an escape means the same character. */
    for (size_t i = 0; i < len; i++) {
        size_t k = separator_at(p + i, len - i, &cp);
        if (k) {
            extra += 6 - k;
            i += k - 1;
        }
    }
    char *out = malloc(len + extra + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = separator_at(p + i, len - i, &cp);
        if (k) {
            static const char hex[] = "0123456789abcdef";
            char esc[6] = {'\\', 'u', hex[(cp >> 12) & 15], hex[(cp >> 8) & 15], hex[(cp >> 4) & 15], hex[cp & 15]};
            memcpy(out + o, esc, 6);
            o += 6;
            i += k;
        } else {
            out[o++] = text[i++];
        }
    }
    out[o] = 0;
    if (len_out) *len_out = o;
    return out;
}

char *json_dumps_safe(const json_t *json, size_t flags)
{
    char *text = json_dumps(json, flags);
    if (!text) return NULL;
    size_t n = strlen(text);
    unsigned cp;
    bool any = false;
    for (size_t i = 0; i < n && !any; i++) any = separator_at((const unsigned char *)text + i, n - i, &cp) != 0;
    if (!any) return text; /* the usual case: no copy */
    char *safe = json_escape_separators(text, n, NULL);
    free(text);
    return safe;
}

char *json_line(json_t *obj, size_t *len_out)
{
    if (!obj) return NULL;
    /* 7 significant digits: timings to the microsecond, boxes to a thousandth of a pixel. */
    char *text = json_dumps_safe(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
    json_decref(obj);
    if (!text) return NULL;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = 0;
    if (len_out) *len_out = n + 1;
    return line;
}

/* The block malloc hands out for n bytes (glibc, 64-bit): 8 bytes of header,
 * 16-byte steps, 32 at least. */
static size_t block(size_t n)
{
    size_t b = (n + 8 + 15) & ~(size_t)15;
    return b < 32 ? 32 : b;
}

/* Measured against mallinfo2 with jansson 2.14: a string is its json_t block
 * and its text; a number one block; an object its json_t and hashtable (with
 * 8 buckets, 16 bytes more per bucket past them) and a block per member, key
 * inline; an array its json_t and a table of pointers that doubles from 8.
 * true, false and null are shared singletons. */
size_t json_held_estimate(const json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT: {
        size_t size = json_object_size(v), n = 224, buckets = 8;
        while (buckets < size) buckets *= 2;
        n += (buckets - 8) * 16;
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, klen, x) n += block(57 + klen) + json_held_estimate(x);
        return n;
    }
    case JSON_ARRAY: {
        size_t size = json_array_size(v), cap = 8;
        while (cap < size) cap *= 2;
        size_t n = 48 + block(8 * cap);
        for (size_t i = 0; i < size; i++) n += json_held_estimate(json_array_get(v, i));
        return n;
    }
    case JSON_STRING: return 48 + block(json_string_length(v) + 1);
    case JSON_INTEGER:
    case JSON_REAL: return 32;
    default: return 0;
    }
}

char *json_error_body(const char *code, const char *message, size_t *len_out)
{
    json_t *o = json_pack("{s:{s:s,s:o}}", "detail", "code", code, "message",
                          json_string_lossy(message, strlen(message)));
    return json_line(o, len_out);
}
