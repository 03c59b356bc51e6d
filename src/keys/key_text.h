/* What every key store backend does alike: make a key's text, its hash and
 * prefix, check a key's name, and verify one by its hash (keystore_verify_limits,
 * declared in keystore.h). The text is shown once; stores keep only
 * the SHA-256 hash (hex) and the prefix. */
#ifndef SIGHT_KEYS_KEY_TEXT_H
#define SIGHT_KEYS_KEY_TEXT_H

#include <stddef.h>

#define KEY_RAND_BYTES 32
#define KEY_LEN (3 + 43) /* "sk_" + base64url(32 bytes), unpadded */
#define KEY_PREFIX_LEN 8 /* shown by `keys list`; reveals 30 of 256 random bits */
#define KEY_NAME_MAX 100

/* A new random key with its hash and prefix. 0 ok, -1 (no randomness or
 * hashing failed; nothing usable written). The caller cleanses key. */
int key_generate(char key[KEY_LEN + 1], char hash[65], char prefix[KEY_PREFIX_LEN + 1]);

/* 1..KEY_NAME_MAX bytes of well-formed UTF-8 without C0/C1 controls. */
int key_name_ok(const char *s);

/* The hash a verify looks up, or 0 when key cannot be one of ours (no
 * store work for garbage). -1: hashing failed. */
int key_hash_for_lookup(const char *key, char hash[65]);

#endif
