/* SHA-256 as lowercase hex, the form in which API keys are stored. */
#ifndef SIGHT_KEYS_SHA256_HEX_H
#define SIGHT_KEYS_SHA256_HEX_H

#include <stddef.h>

/* Writes 64 hex digits and a NUL to out. If the digest itself fails (only a
 * broken OpenSSL setup can do that), out is the empty string, so callers can
 * tell without a return value. */
void sha256_hex(const void *data, size_t len, char out[65]);

#endif
