#include "keys/sha256_hex.h"

#include <openssl/evp.h>

void sha256_hex(const void *data, size_t len, char out[65])
{
    static const char HEX[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32) {
        out[0] = '\0';
        return;
    }
    for (unsigned int i = 0; i < n; i++) {
        out[2 * i] = HEX[md[i] >> 4];
        out[2 * i + 1] = HEX[md[i] & 15];
    }
    out[64] = '\0';
}
