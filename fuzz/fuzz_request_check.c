/* A request head ("METHOD VERSION\n" then "Name: value" lines, NULs and all)
 * through request_check.c. Beside crashes, it holds the checker to what an
 * acceptance promises the framing code: a verdict is 0, 400 or 501, and an
 * accepted head has at most one Content-Length of digits only, and either no
 * Transfer-Encoding or exactly one "chunked" without a Content-Length. */
#include <strings.h>

#include "fuzz_common.h"
#include "http/front/request_check.h"

static int is_digits(const char *v, size_t n)
{
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9') return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    const char *nl = memchr(p, '\n', size);
    if (!nl) nl = end;
    /* The first line: method, a space, version (as C strings, as libmicrohttpd hands them). */
    const char *sp = memchr(p, ' ', (size_t)(nl - p));
    char *method = fuzz_cstr((const uint8_t *)p, sp ? (size_t)(sp - p) : (size_t)(nl - p));
    char *version = sp ? fuzz_cstr((const uint8_t *)sp + 1, (size_t)(nl - sp - 1)) : fuzz_cstr((const uint8_t *)"", 0);

    rc_state st;
    rc_layout lay;
    rc_begin(&st, method, version);
    rc_layout_begin(&lay, strlen(method), false, 0, 0, (long long)strlen(method) + 1, strlen(version));
    long long off = (long long)(nl - p) + 1;
    unsigned cl = 0, te = 0, cl_ok = 1, te_chunked = 0;
    for (p = nl < end ? nl + 1 : end; p < end;) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        const char *colon = memchr(p, ':', (size_t)(e - p));
        if (colon) {
            const char *v = colon + 1;
            while (v < e && (*v == ' ' || *v == '\t')) v++;
            size_t nlen = (size_t)(colon - p), vlen = (size_t)(e - v);
            rc_header(&st, p, nlen, v, vlen);
            rc_layout_field(&lay, off, nlen, off + (v - p), vlen);
            if (nlen == 14 && !strncasecmp(p, "Content-Length", 14)) {
                cl++;
                cl_ok = cl_ok && is_digits(v, vlen);
            }
            if (nlen == 17 && !strncasecmp(p, "Transfer-Encoding", 17)) {
                te++;
                te_chunked = vlen == 7 && !strncasecmp(v, "chunked", 7);
            }
        }
        off += (long long)(e - p) + 1;
        p = e + 1;
    }
    unsigned verdict = rc_end(&st);
    (void)rc_layout_end(&lay, (size_t)off);
    if (verdict != 0 && verdict != 400 && verdict != 501) abort();
    if (verdict != 0 && !st.message[0]) abort();
    if (verdict == 0 && (cl > 1 || !cl_ok || te > 1 || (te == 1 && (!te_chunked || cl)))) abort();

    char msg[80];
    char *target = fuzz_cstr(data, size);
    if (!rc_target_ok(target, msg, sizeof msg) && !msg[0]) abort();
    char buf[1024];
    if (verdict && rc_format_refusal(buf, sizeof buf, verdict, "fuzz", st.message) == 0) abort();
    free(target);
    free(method);
    free(version);
    return 0;
}
