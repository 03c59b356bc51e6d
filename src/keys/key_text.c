#include "keys/key_text.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

#include "keys/keystore.h"
#include "keys/sha256_hex.h"

_Static_assert(KEY_LEN <= KEYSTORE_KEY_MAX, "key must fit KEYSTORE_KEY_MAX");

static void base64url(const unsigned char *in, size_t n, char *out)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
        *out++ = A[v >> 18 & 63];
        *out++ = A[v >> 12 & 63];
        *out++ = A[v >> 6 & 63];
        *out++ = A[v & 63];
    }
    if (n - i == 1) {
        unsigned long v = (unsigned long)in[i] << 16;
        *out++ = A[v >> 18 & 63];
        *out++ = A[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
        *out++ = A[v >> 18 & 63];
        *out++ = A[v >> 12 & 63];
        *out++ = A[v >> 6 & 63];
    }
    *out = '\0';
}

/* Names are printed by `keys list` and written into JSON, so only
 * well-formed UTF-8 without C0/C1 control characters is accepted. */
int key_name_ok(const char *s)
{
    if (!s) return 0;
    size_t n = strnlen(s, KEY_NAME_MAX + 1);
    if (n == 0 || n > KEY_NAME_MAX) return 0;
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) return 0;
            p++;
            continue;
        }
        size_t len;
        unsigned long cp;
        if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07;
        else return 0;
        if ((size_t)(end - p) < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (p[k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
            return 0;
        p += len;
    }
    return 1;
}

int key_generate(char key[KEY_LEN + 1], char hash[65], char prefix[KEY_PREFIX_LEN + 1])
{
    unsigned char raw[KEY_RAND_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1) return -1;
    memcpy(key, "sk_", 3);
    base64url(raw, sizeof raw, key + 3);
    OPENSSL_cleanse(raw, sizeof raw);
    sha256_hex(key, KEY_LEN, hash);
    memcpy(prefix, key, KEY_PREFIX_LEN);
    prefix[KEY_PREFIX_LEN] = '\0';
    if (!hash[0]) {
        OPENSSL_cleanse(key, KEY_LEN + 1);
        return -1;
    }
    return 0;
}

int key_hash_for_lookup(const char *key, char hash[65])
{
    /* Garbage never reaches the database: cheap to refuse, and a flood of
     * bogus headers then costs no store work. */
    if (!key) return 0;
    size_t len = strnlen(key, KEYSTORE_KEY_MAX + 1);
    if (len == 0 || len > KEYSTORE_KEY_MAX || strncmp(key, "sk_", 3) != 0) return 0;
    sha256_hex(key, len, hash);
    return hash[0] ? 1 : -1;
}

key_verdict keystore_verify_limits(keystore *ks, const char *key, int64_t *id, key_limits *l)
{
    char hash[65];
    int h = key_hash_for_lookup(key, hash);
    if (h <= 0) return h == 0 ? KEY_UNKNOWN : KEY_ERROR;
    int64_t found = 0;
    key_limits lim = {0};
    key_verdict v = ks->ops->verify(ks, hash, &found, &lim);
    if (v == KEY_VALID && id) *id = found;
    if (v == KEY_VALID && l) *l = lim;
    return v;
}
