/* The incremental multipart parser: every split point, header forms the
 * spec's clients send, malformed and truncated bodies. */
#include <stdlib.h>

#include "check.h"
#include "http/multipart.h"

typedef struct {
    char log[8192]; /* "name|filename|ctype=data;" per part */
    size_t n;
    int stop_at_begin;
} rec;

static void add(rec *r, const char *s, size_t len)
{
    if (r->n + len < sizeof r->log) {
        memcpy(r->log + r->n, s, len);
        r->n += len;
        r->log[r->n] = 0;
    }
}
static int on_begin(void *ctx, const char *name, const char *filename, const char *ctype)
{
    rec *r = ctx;
    if (r->stop_at_begin) return 1;
    add(r, name, strlen(name));
    add(r, "|", 1);
    if (filename) add(r, filename, strlen(filename));
    add(r, "|", 1);
    if (ctype) add(r, ctype, strlen(ctype));
    add(r, "=", 1);
    return 0;
}
static int on_data(void *ctx, const char *d, size_t n)
{
    add(ctx, d, n);
    return 0;
}
static int on_end(void *ctx)
{
    add(ctx, ";", 1);
    return 0;
}
static const mp_callbacks CB = {on_begin, on_data, on_end};

/* Parses body fed in pieces of `step` bytes; returns 0 when complete. */
static int parse(const char *boundary, const char *body, size_t len, size_t step, rec *r)
{
    memset(r, 0, sizeof *r);
    mp_parser *p = mp_new(boundary, &CB, r);
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0; off += step)
        rc = mp_feed(p, body + off, len - off < step ? len - off : step);
    if (rc == 0) rc = mp_done(p);
    mp_free(p);
    return rc;
}

static const char BODY[] =
    "preamble to ignore\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"api_key\"\r\n"
    "\r\n"
    "sk_123\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n"
    "Content-Type: image/jpeg\r\n"
    "\r\n"
    "\r\n--XyNOT a delimiter\r\n--X\r\n"
    "--XyZ  \r\n"                                       /* transport padding after the boundary */
    "content-disposition: form-data; name=metadata\r\n" /* unquoted, lower-case header: .NET */
    "\r\n"
    "{}\r\n"
    "--XyZ--\r\n"
    "epilogue";

static void test_every_split(void)
{
    const char *want = "api_key||=sk_123;files|a.jpg|image/jpeg=\r\n--XyNOT a delimiter\r\n--X;metadata||={};";
    size_t len = sizeof BODY - 1;
    for (size_t step = 1; step <= len; step++) {
        rec r;
        int rc = parse("XyZ", BODY, len, step, &r);
        if (rc != 0 || strcmp(r.log, want)) {
            CHECK_EQ_INT(rc, 0);
            CHECK_STR(r.log, want);
            fprintf(stderr, "  step %zu\n", step);
            return;
        }
    }
    /* And two-piece splits at every position. */
    for (size_t cut = 0; cut <= len; cut++) {
        rec r;
        memset(&r, 0, sizeof r);
        mp_parser *p = mp_new("XyZ", &CB, &r);
        int rc = mp_feed(p, BODY, cut);
        if (rc == 0) rc = mp_feed(p, BODY + cut, len - cut);
        if (rc == 0) rc = mp_done(p);
        mp_free(p);
        if (rc != 0 || strcmp(r.log, want)) {
            CHECK_STR(r.log, want);
            fprintf(stderr, "  cut %zu\n", cut);
            return;
        }
    }
    CHECK(1);
}

static void test_header_forms(void)
{
    /* .NET: unquoted name; Go/httpx: escaped quotes; RFC 5987 filename* wins. */
    const char *b =
        "--b\r\nContent-Disposition: form-data; name=files; filename=\"=?utf-8?B?Y2Fmw6k=?=\"; "
        "filename*=utf-8''caf%C3%A9%20photo.jpg\r\n\r\nX\r\n"
        "--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"qu\\\"ote;x.jpg\"\r\n\r\nY\r\n"
        "--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"C:\\fakepath\\z.png\"\r\n\r\nZ\r\n"
        "--b\r\nContent-Disposition:form-data;name=\"query\"\r\n\r\n\r\n"
        "--b--";
    rec r;
    CHECK_EQ_INT(parse("b", b, strlen(b), 7, &r), 0);
    CHECK_STR(r.log, "files|caf\xC3\xA9 photo.jpg|=X;files|qu\"ote;x.jpg|=Y;files|C:\\fakepath\\z.png|=Z;query||=;");
}

static void expect_fail(const char *what, const char *boundary, const char *body)
{
    rec r;
    int rc = parse(boundary, body, strlen(body), 3, &r);
    CHECK_EQ_INT(rc, -1);
    if (rc != -1) fprintf(stderr, "  case: %s\n", what);
}

static void test_malformed(void)
{
    expect_fail("truncated inside a part", "b", "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nxyz");
    expect_fail("truncated in headers", "b", "--b\r\nContent-Disposition: form-da");
    expect_fail("no closing delimiter", "b", "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--b\r\n");
    expect_fail("no boundary at all", "b", "just some bytes");
    expect_fail("garbage after boundary", "b", "--bxx\r\n\r\n--b--");
    expect_fail("part without disposition", "b", "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--");
    expect_fail("not form-data", "b", "--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--b--");
    expect_fail("no name", "b", "--b\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nx\r\n--b--");
    expect_fail("header line without colon", "b", "--b\r\nbogus line\r\n\r\nx\r\n--b--");
    char *huge = malloc(20000);
    strcpy(huge, "--b\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Long: ");
    size_t n = strlen(huge);
    memset(huge + n, 'h', 19000 - n);
    strcpy(huge + 19000, "\r\n\r\nx\r\n--b--");
    expect_fail("huge headers", "b", huge);
    free(huge);
    /* A callback can stop the parser. */
    rec r;
    memset(&r, 0, sizeof r);
    r.stop_at_begin = 1;
    mp_parser *p = mp_new("b", &CB, &r);
    const char *ok = "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--b--";
    CHECK_EQ_INT(mp_feed(p, ok, strlen(ok)), -1);
    CHECK_STR(mp_error(p), "stopped");
    mp_free(p);
}

static void test_boundary_parameter(void)
{
    char b[80];
    CHECK_EQ_INT(mp_boundary("multipart/form-data; boundary=abc", b, sizeof b), 0);
    CHECK_STR(b, "abc");
    CHECK_EQ_INT(mp_boundary("multipart/form-data; boundary=\"a b;c\"", b, sizeof b), 0); /* .NET quotes it */
    CHECK_STR(b, "a b;c");
    CHECK_EQ_INT(mp_boundary("multipart/form-data;charset=utf-8;BOUNDARY=q", b, sizeof b), 0);
    CHECK_STR(b, "q");
    CHECK_EQ_INT(mp_boundary("multipart/form-data", b, sizeof b), -1);
    CHECK_EQ_INT(mp_boundary("multipart/form-data; boundary=", b, sizeof b), -1);
    CHECK_EQ_INT(mp_boundary("multipart/form-data; boundary=\"unterminated", b, sizeof b), -1);
    char big[120] = "multipart/form-data; boundary=";
    memset(big + strlen(big), 'x', 71);
    CHECK_EQ_INT(mp_boundary(big, b, sizeof b), -1);
    CHECK_EQ_INT(mp_boundary("multipart/form-data; boundary=aaa; boundary=bbb", b, sizeof b), -1); /* ambiguous */
    CHECK_EQ_INT(mp_boundary("multipart/form-data; boundary=aaa; Boundary=aaa", b, sizeof b), -1);
    CHECK_EQ_INT(mp_boundary("multipart/form-data; boundary=\"x;boundary=y\"; charset=utf-8", b, sizeof b), 0);
    CHECK_STR(b, "x;boundary=y");
    CHECK(mp_new("", &CB, NULL) == NULL);
}

typedef struct {
    size_t got, max_piece;
    int calls;
    char first, last;
} counter;
static int cnt_begin(void *ctx, const char *n, const char *f, const char *t) { return 0; }
static int cnt_data(void *ctx, const char *d, size_t k)
{
    counter *c = ctx;
    if (!c->got) c->first = d[0];
    c->got += k;
    c->calls++;
    if (k > c->max_piece) c->max_piece = k;
    c->last = d[k - 1];
    return 0;
}
static int cnt_end(void *ctx) { return 0; }

static void test_large_file_streams_through(void)
{
    /* 3 MB with near-delimiters every 1000 bytes passes through intact, in
     * pieces: nothing holds the whole part. */
    size_t n = 3 << 20;
    char *body = malloc(n + 200);
    int len = sprintf(body, "--bnd\r\nContent-Disposition: form-data; name=\"files\"; filename=\"f\"\r\n\r\n");
    for (size_t i = 0; i < n; i++) body[len + i] = i % 1000 == 0 ? '\r' : i % 1000 == 1 ? '\n'
        : i % 1000 == 2                                                                 ? '-'
                                                                                        : 'a';
    body[len] = 'S';
    body[len + n - 1] = 'E';
    size_t total = (size_t)len + n;
    total += (size_t)sprintf(body + total, "\r\n--bnd--\r\n");
    counter c = {0};
    mp_parser *p = mp_new("bnd", &(mp_callbacks){cnt_begin, cnt_data, cnt_end}, &c);
    for (size_t off = 0; off < total; off += 65536)
        CHECK_EQ_INT(mp_feed(p, body + off, total - off < 65536 ? total - off : 65536), 0);
    CHECK_EQ_INT(mp_done(p), 0);
    CHECK_EQ_INT(c.got, n);
    CHECK(c.first == 'S' && c.last == 'E');
    CHECK(c.max_piece <= 64 * 1024);
    mp_free(p);
    free(body);
}

/* Parses body whole and split in two at every point: the outcome and the
 * parts must not depend on how the body arrives. */
static void check_any_split(const char *what, const char *boundary, const char *body, size_t len, int want_rc)
{
    rec whole, split;
    mp_parser *p = mp_new(boundary, &CB, &whole);
    memset(&whole, 0, sizeof whole);
    int rc = mp_feed(p, body, len);
    mp_free(p);
    CHECK_EQ_INT(rc, want_rc);
    for (size_t k = 0; k <= len; k++) {
        memset(&split, 0, sizeof split);
        p = mp_new(boundary, &CB, &split);
        int rc2 = mp_feed(p, body, k);
        if (rc2 == 0) rc2 = mp_feed(p, body + k, len - k);
        mp_free(p);
        if (rc2 != rc || (rc == 0 && strcmp(whole.log, split.log))) {
            CHECK_EQ_INT(rc2, rc);
            fprintf(stderr, "  case: %s, split at %zu\n", what, k);
            break;
        }
    }
}

/* Found by fuzz/fuzz_multipart: over 64 bytes of transport padding after a
 * boundary were refused only when a read ended inside them. */
static const unsigned char FUZZ_PADDING_SPLIT[] = {
    0x2d,
    0x2d,
    0x61,
    0x62,
    0x63,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x09,
    0x0d,
    0x0a,
    0x43,
    0x6f,
    0x6e,
    0x28,
    0x3a,
    0xf3,
    0x20,
    0x6c,
    0x20,
    0x66,
    0x28,
    0x28,
    0x28,
    0x28,
    0x28,
    0x28,
    0x28,
    0x28,
    0x28,
    0x28,
    0x01,
    0x00,
    0x00,
    0x00,
    0x62,
    0x10,
    0x00,
    0x0a,
    0xdd,
    0x3e,
    0x28,
    0x28,
    0x0d,
    0x28,
    0xa8,
    0x28,
    0x28,
    0x28,
    0x28,
    0x28,
    0x0d,
    0x0a,
    0x28,
    0x28,
    0x3d,
    0x22,
    0x78,
    0x2e,
    0x70,
    0x6e,
    0x28,
    0x28,
    0xa8,
    0x28,
    0x28,
    0x28,
    0x28,
    0x28,
    0x0d,
    0x0a,
    0x28,
    0x6e,
    0x28,
    0x28,
    0xa8,
    0x28,
    0x6b,
    0x75,
    0x56,
    0x08,
    0x10,
    0x62,
    0x00,
    0x00,
    0x28,
    0x6e,
    0x0a,
    0x28,
    0x0a,
    0x28,
    0x6e,
    0x28,
    0x28,
    0x28,
};

static void test_split_invariance(void)
{
    check_any_split("fuzz: padding", "abc", (const char *)FUZZ_PADDING_SPLIT, sizeof FUZZ_PADDING_SPLIT, -1);
    char body[20000];
    const char *part = "Content-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--b--";
    /* 64 bytes of padding are fine, 65 are not, whatever the split. */
    for (int pad = 64; pad <= 65; pad++) {
        int n = sprintf(body, "--b");
        memset(body + n, pad == 64 ? ' ' : '\t', (size_t)pad);
        n += pad;
        n += sprintf(body + n, "\r\n%s", part);
        check_any_split("padding", "b", body, (size_t)n, pad == 64 ? 0 : -1);
    }
    /* A header block of exactly 8192 bytes is accepted even when a read ends
     * within its blank line; one of 8193 is refused. */
    for (int hl = 8192; hl <= 8193; hl++) {
        int n = sprintf(body, "--b\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Long: ");
        memset(body + n, 'h', (size_t)(hl - (n - 5)));
        n = 5 + hl;
        n += sprintf(body + n, "\r\n\r\nx\r\n--b--");
        rec r;
        mp_parser *p = mp_new("b", &CB, &r);
        memset(&r, 0, sizeof r);
        int rc = mp_feed(p, body, 5 + (size_t)hl + 3); /* up to "\r\n\r" */
        if (rc == 0) rc = mp_feed(p, body + 5 + hl + 3, (size_t)n - (size_t)(5 + hl + 3));
        if (rc == 0) rc = mp_done(p);
        mp_free(p);
        CHECK_EQ_INT(rc, hl == 8192 ? 0 : -1);
        CHECK_EQ_INT(parse("b", body, (size_t)n, 7000, &r), hl == 8192 ? 0 : -1);
    }
}

/* body (len bytes, NULs allowed) is refused with code, whatever the split. */
static void expect_code(const char *what, const char *body, size_t len, const char *code)
{
    for (size_t step = 1; step <= len; step += step < 8 ? 1 : 13) {
        rec r;
        memset(&r, 0, sizeof r);
        mp_parser *p = mp_new("b", &CB, &r);
        int rc = 0;
        for (size_t off = 0; off < len && rc == 0; off += step)
            rc = mp_feed(p, body + off, len - off < step ? len - off : step);
        CHECK_EQ_INT(rc, -1);
        CHECK_STR(mp_error_code(p), code);
        if (rc != -1 || strcmp(mp_error_code(p), code)) fprintf(stderr, "  case: %s, step %zu\n", what, step);
        mp_free(p);
        if (rc != -1) return;
    }
}

static void test_ambiguous_parts_and_nul_names(void)
{
#define CASE(what, body, code) expect_code(what, body, sizeof body - 1, code)
    /* What a proxy that checked the first reads differs from the last. */
    CASE("two name parameters", "--b\r\nContent-Disposition: form-data; name=\"metadata\"; name=\"api_key\"\r\n\r\nx\r\n--b--",
         "ambiguous_part");
    CASE("two names, one unquoted", "--b\r\nContent-Disposition: form-data; name=a; NAME=\"b\"\r\n\r\nx\r\n--b--",
         "ambiguous_part");
    CASE("two filenames",
         "--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"; filename=\"b.exe\"\r\n\r\nx\r\n--b--",
         "ambiguous_part");
    CASE("two filename*",
         "--b\r\nContent-Disposition: form-data; name=files; filename*=utf-8''a; filename*=utf-8''b\r\n\r\nx\r\n--b--",
         "ambiguous_part");
    CASE("two Content-Disposition headers",
         "--b\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Disposition: form-data; "
         "name=\"files\"; filename=\"a\"\r\n\r\nx\r\n--b--",
         "ambiguous_part");
    CASE("two Content-Type headers",
         "--b\r\nContent-Disposition: form-data; name=files; filename=a\r\nContent-Type: image/png\r\n"
         "content-type: text/html\r\n\r\nx\r\n--b--",
         "ambiguous_part");
    /* A NUL would end the name early for anything reading it as a C string. */
    CASE("NUL in a filename", "--b\r\nContent-Disposition: form-data; name=files; filename=\"a.jpg\0.exe\"\r\n\r\nx\r\n--b--",
         "invalid_filename");
    CASE("NUL in a name", "--b\r\nContent-Disposition: form-data; name=\"api_key\0x\"\r\n\r\nx\r\n--b--",
         "invalid_filename");
    CASE("NUL in filename*",
         "--b\r\nContent-Disposition: form-data; name=files; filename*=UTF-8''a.jpg%00.exe\r\n\r\nx\r\n--b--",
         "invalid_filename");
    CASE("NUL in another header", "--b\r\nContent-Disposition: form-data; name=files\r\nX-A: \0\r\n\r\nx\r\n--b--",
         "malformed_multipart");
#undef CASE
    /* One of each is fine, and %-escapes other than %00 are decoded as before. */
    const char *ok = "--b\r\nContent-Disposition: form-data; name=files; filename=\"a\"; filename*=UTF-8''%41%2e\r\n"
                     "Content-Type: image/png\r\n\r\nx\r\n--b--";
    rec r;
    CHECK_EQ_INT(parse("b", ok, strlen(ok), 5, &r), 0);
    CHECK_STR(r.log, "files|A.|image/png=x;");
}

int main(void)
{
    test_every_split();
    test_ambiguous_parts_and_nul_names();
    test_header_forms();
    test_malformed();
    test_boundary_parameter();
    test_large_file_streams_through();
    test_split_invariance();
    return check_report("multipart");
}
