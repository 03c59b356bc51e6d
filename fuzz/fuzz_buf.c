/* The capped buffer driven by a script of operations: whatever the sequence,
 * it must hold exactly what a plain model of it holds, never pass its cap and
 * never read or write out of bounds (ASan). */
#include <stdio.h>

#include "fuzz_common.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t max = (size_t)fuzz_byte(&data, &size) * 8;
    buf b;
    buf_init(&b, max);
    char *model = malloc(max + 1);
    if (!model) abort();
    size_t mlen = 0;
    while (size) {
        uint8_t op = fuzz_byte(&data, &size), arg = fuzz_byte(&data, &size);
        size_t n = arg < size ? arg : size;
        int rc;
        switch (op % 6) {
        case 0: /* add n bytes of the input */
            rc = buf_add(&b, data, n);
            if (mlen + n > max) {
                if (rc != BUF_TOO_BIG) abort();
            } else {
                if (rc != BUF_OK) abort();
                memcpy(model + mlen, data, n);
                mlen += n;
            }
            data += n;
            size -= n;
            break;
        case 1: /* printf of a number */
        {
            char tmp[16];
            int k = snprintf(tmp, sizeof tmp, "%u", arg);
            rc = buf_printf(&b, "%u", arg);
            if (mlen + (size_t)k > max) {
                if (rc != BUF_TOO_BIG) abort();
            } else {
                if (rc != BUF_OK) abort();
                memcpy(model + mlen, tmp, (size_t)k);
                mlen += (size_t)k;
            }
            break;
        }
        case 2: /* consume from the front */
            buf_consume(&b, arg);
            if (arg >= mlen) mlen = 0;
            else {
                memmove(model, model + arg, mlen - arg);
                mlen -= arg;
            }
            break;
        case 3: /* reserve, then write in place */
        {
            if (buf_reserve(&b, arg) != BUF_OK) abort();
            size_t room = buf_room(&b), want = n < room ? n : room;
            if (mlen + room > max) abort();
            if (want) memcpy(b.data + b.len, data, want);
            if (b.data) buf_commit(&b, want);
            memcpy(model + mlen, data, want);
            mlen += want;
            data += n;
            size -= n;
            break;
        }
        case 4:
            buf_reset(&b);
            mlen = 0;
            break;
        default: {
            size_t len;
            char *s = buf_take(&b, &len);
            if (!s || len != mlen || s[len] || (len && memcmp(s, model, len))) abort();
            free(s);
            mlen = 0;
            break;
        }
        }
        if (b.len != mlen || b.len > max || (b.cap && b.cap > max + 1)) abort();
        if (mlen && memcmp(b.data, model, mlen)) abort();
        if (b.data && b.data[b.len]) abort();
    }
    buf_free(&b);
    free(model);
    return 0;
}
