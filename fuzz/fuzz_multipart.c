/* The multipart parser fed in up to three pieces, its callbacks forwarding
 * into a form (so the form's limits are exercised), then form_finish.
 * Input: [split1][split2][flags][boundary len][boundary bytes...] body...
 * flags bit 0: take the boundary from the input, else the fixed one. */
#include "fuzz_common.h"
#include "http/form.h"
#include "http/multipart.h"

static int on_begin(void *ctx, const char *name, const char *filename, const char *ct)
{
    return form_part_begin(ctx, name, filename);
}
static int on_data(void *ctx, const char *d, size_t n) { return form_part_data(ctx, d, n); }
static int on_end(void *ctx) { return form_part_end(ctx); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* mp_boundary on the whole input as a Content-Type value. */
    char *ct = fuzz_cstr(data, size);
    char b[80];
    if (mp_boundary(ct, b, sizeof b) == 0 && (strlen(b) < 1 || strlen(b) > 70)) abort();
    free(ct);

    uint8_t s1 = fuzz_byte(&data, &size), s2 = fuzz_byte(&data, &size);
    uint8_t flags = fuzz_byte(&data, &size);
    char boundary[71] = "----sightfuzzXYZ";
    if (flags & 1) {
        size_t bl = fuzz_byte(&data, &size) % 70 + 1;
        if (bl > size) bl = size;
        if (bl == 0) return 0;
        for (size_t i = 0; i < bl; i++) boundary[i] = data[i] ? (char)data[i] : 'x';
        boundary[bl] = 0;
        data += bl;
        size -= bl;
    }
    form f;
    form_limits lim = {.max_file_bytes = 1024, .max_files = 3};
    form_init(&f, &lim);
    mp_callbacks cb = {on_begin, on_data, on_end};
    mp_parser *p = mp_new(boundary, &cb, &f);
    if (!p) abort();
    size_t a, c;
    fuzz_splits(s1, s2, size, &a, &c);
    const char *body = (const char *)data;
    int rc = mp_feed(p, body, a);
    if (rc == 0) rc = mp_feed(p, body + a, c - a);
    if (rc == 0) rc = mp_feed(p, body + c, size - c);
    if (rc == 0 && mp_done(p) == 0) form_finish(&f);
    (void)mp_error(p);
    mp_free(p);
    form_free(&f);
    return 0;
}
