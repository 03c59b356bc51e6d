/* The multipart parser fed in up to three pieces, its callbacks forwarding
 * into a form (so the form's limits are exercised), then form_finish.
 * The same body fed whole must give the same parts: splitting is invisible.
 * Input: [split1][split2][flags][boundary len][boundary bytes...] body...
 * flags bit 0: take the boundary from the input, else the fixed one. */
#include "fuzz_common.h"
#include "http/form.h"
#include "http/multipart.h"

typedef struct {
    form *f; /* NULL: only trace */
    fuzz_trace t;
    int in_data; /* the last event was data (consecutive data is merged) */
} run;

static void add_str(fuzz_trace *t, const char *s)
{
    if (s) trace_add(t, s, strlen(s) + 1);
    else trace_add(t, "\xff", 1);
}

static int on_begin(void *ctx, const char *name, const char *filename, const char *ct)
{
    run *r = ctx;
    if (!name) abort(); /* documented: a part always has a name */
    r->in_data = 0;
    trace_add(&r->t, "B", 1);
    add_str(&r->t, name);
    add_str(&r->t, filename);
    add_str(&r->t, ct);
    return r->f ? form_part_begin(r->f, name, filename) : 0;
}

static int on_data(void *ctx, const char *d, size_t n)
{
    run *r = ctx;
    if (n == 0) abort();
    if (!r->in_data) trace_add(&r->t, "D", 1);
    r->in_data = 1;
    trace_add(&r->t, d, n);
    return r->f ? form_part_data(r->f, d, n) : 0;
}

static int on_end(void *ctx)
{
    run *r = ctx;
    r->in_data = 0;
    trace_add(&r->t, "E", 1);
    return r->f ? form_part_end(r->f) : 0;
}

static const mp_callbacks CB = {on_begin, on_data, on_end};

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
    const char *body = (const char *)data;

    /* In pieces, into a form. */
    form f;
    form_limits lim = {.max_file_bytes = 1024, .max_files = 3};
    form_init(&f, &lim);
    run split = {.f = &f};
    mp_parser *p = mp_new(boundary, &CB, &split);
    if (!p) abort();
    size_t a, c;
    fuzz_splits(s1, s2, size, &a, &c);
    int rc = mp_feed(p, body, a);
    if (rc == 0) rc = mp_feed(p, body + a, c - a);
    if (rc == 0) rc = mp_feed(p, body + c, size - c);
    int done = rc == 0 && mp_done(p) == 0;
    if (done) form_finish(&f);
    /* The limits hold whatever the body. */
    if (f.nfiles > (size_t)lim.max_files || f.nmetadata > (size_t)lim.max_files) abort();
    for (size_t i = 0; i < f.nfiles; i++)
        if ((int64_t)f.files[i].data.len > lim.max_file_bytes || !f.files[i].filename) abort();
    (void)mp_error(p);
    mp_free(p);
    form_free(&f);

    /* Whole: the same outcome, the same parts. */
    run whole = {0};
    p = mp_new(boundary, &CB, &whole);
    int rc2 = mp_feed(p, body, size);
    int done2 = rc2 == 0 && mp_done(p) == 0;
    mp_free(p);
    if (rc != rc2 || done != done2) abort();
    if (rc == 0 && !trace_eq(&split.t, &whole.t)) abort();
    free(split.t.b);
    free(whole.t.b);
    return 0;
}
