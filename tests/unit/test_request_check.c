/* The RFC 9112 checks of request_check.c, table-driven: each case is a
 * request head ("Name: value" lines after method and version) and the
 * verdict expected (0, 400 or 501). */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "http/front/request_check.h"

typedef struct {
    const char *method, *version;
    const char *headers; /* "\n"-separated "Name: value" lines; \x01 etc. as written */
    size_t headers_len;  /* 0: strlen (a NUL byte needs the length) */
    unsigned want;
    const char *why;
} tcase;

#define H11 "Host: x\n"
static const tcase cases[] = {
    /* Acceptable. */
    {"GET", "HTTP/1.1", H11, 0, 0, "plain GET"},
    {"GET", "HTTP/1.0", "", 0, 0, "HTTP/1.0 needs no Host"},
    {"POST", "HTTP/1.1", H11 "Content-Length: 5", 0, 0, "Content-Length"},
    {"POST", "HTTP/1.1", H11 "Content-Length: 0005", 0, 0, "leading zeros are digits"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: chunked", 0, 0, "chunked"},
    {"POST", "HTTP/1.1", H11 "transfer-encoding: CHUNKED", 0, 0, "names and codings are case-insensitive"},
    {"GET", "HTTP/1.1", "Host: [::1]:8080", 0, 0, "IPv6 literal host"},
    {"GET", "HTTP/1.1", "Host: ", 0, 0, "empty Host is allowed (RFC 9112 3.2)"},
    {"GET", "HTTP/1.1", H11 "X-A: caf\xc3\xa9\tok", 0, 0, "obs-text and HTAB in a value"},
    {"M-SEARCH", "HTTP/1.1", H11, 0, 0, "extension method"},
    {"GET", "HTTP/1.1", H11 "Content-Lengthy: 1", 0, 400, "a name extending Content-Length (obs-fold residue)"},
    /* Content-Length. */
    {"POST", "HTTP/1.1", H11 "Content-Length: 2\nContent-Length: 5", 0, 400, "two different Content-Length"},
    {"POST", "HTTP/1.1", H11 "Content-Length: 5\nContent-Length: 5", 0, 400, "two equal Content-Length"},
    {"POST", "HTTP/1.1", H11 "Content-Length: 5, 5", 0, 400, "a Content-Length list"},
    {"POST", "HTTP/1.1", H11 "Content-Length: +2", 0, 400, "a sign"},
    {"POST", "HTTP/1.1", H11 "Content-Length: -1", 0, 400, "negative"},
    {"POST", "HTTP/1.1", H11 "Content-Length: 0x10", 0, 400, "hex"},
    {"POST", "HTTP/1.1", H11 "Content-Length: 1 2", 0, 400, "a space inside"},
    {"POST", "HTTP/1.1", H11 "Content-Length: ", 0, 400, "empty"},
    {"POST", "HTTP/1.1", H11 "Content-Length: 5\nTransfer-Encoding: chunked", 0, 400, "CL and TE"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: chunked\nContent-Length: 5", 0, 400, "TE and CL"},
    /* Transfer-Encoding. */
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: xchunked", 0, 501, "unknown coding"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: identity", 0, 501, "identity is no longer a coding"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: gzip, chunked", 0, 501, "gzip is not implemented"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: gzip\nTransfer-Encoding: chunked", 0, 501, "a list over two fields"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: chunked, identity", 0, 400, "chunked not final"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: chunked, gzip", 0, 400, "chunked not final (gzip)"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: chunked, chunked", 0, 400, "chunked twice"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: chunked\nTransfer-Encoding: chunked", 0, 400, "chunked twice, two fields"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: chunked;q=1", 0, 400, "chunked with a parameter"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: chunked ", 0, 400, "trailing space: libmicrohttpd would not frame it as chunked"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: , chunked", 0, 400, "valid list, not the exact value"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: ", 0, 400, "empty"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: ,", 0, 400, "no coding"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: chunked x", 0, 400, "junk after the coding"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: \"chunked\"", 0, 400, "quoted"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: \x0b"
                             "chunked",
     0, 400, "vertical tab"},
    {"POST", "HTTP/1.0", "Transfer-Encoding: chunked", 0, 400, "TE in HTTP/1.0"},
    {"POST", "HTTP/1.1", H11 "Transfer-Encodingchunked: ", 0, 400, "folded TE as libmicrohttpd 0.9.75 leaves it"},
    /* Names. */
    {"GET", "HTTP/1.1", H11 "X-A : a", 0, 400, "space before the colon"},
    {"GET", "HTTP/1.1", H11 "X-A\t: a", 0, 400, "tab before the colon"},
    {"GET", "HTTP/1.1", H11 " X-A: a", 0, 400, "leading space (a folded first field)"},
    {"GET", "HTTP/1.1", H11 "X[A]: a", 0, 400, "brackets in a name"},
    {"GET", "HTTP/1.1", H11 "X-Ab c: a", 0, 400, "obs-fold: libmicrohttpd appends the continuation to the name"},
    {"GET", "HTTP/1.1", H11 ": a", 0, 400, "empty name"},
    {"GET", "HTTP/1.1", H11 "X-\xc3\xa9: a", 0, 400, "non-ASCII name"},
    /* Values. */
    {"GET", "HTTP/1.1", H11 "X-A: a\rb", 0, 400, "bare CR"},
    {"GET", "HTTP/1.1", H11 "X-A: a\x01"
                            "b",
     0, 400, "SOH"},
    {"GET", "HTTP/1.1", H11 "X-A: a\x7f"
                            "b",
     0, 400, "DEL"},
    {"GET", "HTTP/1.1", H11 "X-A: a\0b", sizeof(H11 "X-A: a\0b") - 1, 400, "NUL (when a length shows it)"},
    /* Host. */
    {"GET", "HTTP/1.1", "", 0, 400, "HTTP/1.1 without Host"},
    {"GET", "HTTP/1.1", "Host: a\nHost: b", 0, 400, "two Hosts"},
    {"GET", "HTTP/1.0", "Host: a\nHost: a", 0, 400, "two Hosts in HTTP/1.0"},
    {"GET", "HTTP/1.1", "Host: a b", 0, 400, "space in Host"},
    {"GET", "HTTP/1.1", "Host: a/b", 0, 400, "slash in Host"},
    {"GET", "HTTP/1.1", "Host: a@b", 0, 400, "userinfo in Host"},
    /* Method. */
    {"G(T", "HTTP/1.1", H11, 0, 400, "method not a token"},
    {"", "HTTP/1.1", H11, 0, 400, "empty method"},
    /* Precedence: a 400 anywhere beats a 501. */
    {"POST", "HTTP/1.1", H11 "Transfer-Encoding: gzip\nX A: b", 0, 400, "501 then 400"},
    {"POST", "HTTP/1.1", "Transfer-Encoding: gzip", 0, 400, "501 and no Host"},
};

static unsigned run(const tcase *t, char *msg, size_t cap)
{
    rc_state st;
    rc_begin(&st, t->method, t->version);
    size_t n = t->headers_len ? t->headers_len : strlen(t->headers);
    const char *p = t->headers, *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        const char *colon = memchr(p, ':', (size_t)(nl - p));
        if (colon) {
            /* The value as libmicrohttpd gives it: leading SP/HT skipped. */
            const char *v = colon + 1;
            while (v < nl && (*v == ' ' || *v == '\t')) v++;
            rc_header(&st, p, (size_t)(colon - p), v, (size_t)(nl - v));
        }
        p = nl + 1;
    }
    unsigned r = rc_end(&st);
    snprintf(msg, cap, "%s", st.message);
    return r;
}

static void test_table(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[200];
        unsigned got = run(&cases[i], msg, sizeof msg);
        check_count++;
        if (got != cases[i].want) {
            check_failures++;
            fprintf(stderr, "case %zu (%s): verdict %u, expected %u (%s)\n", i, cases[i].why, got, cases[i].want, msg);
        }
        /* A refusal always says why; an acceptance says nothing. */
        CHECK((got == 0) == (msg[0] == 0));
    }
}

static void test_messages(void)
{
    char msg[200];
    tcase t = {"POST", "HTTP/1.1", H11 "Transfer-Encoding: xchunked", 0, 0, ""};
    CHECK_EQ_INT(run(&t, msg, sizeof msg), 501);
    CHECK(strstr(msg, "\"xchunked\" is not implemented") != NULL);
    /* Client bytes in a message are escaped. */
    tcase u = {"GET", "HTTP/1.1", H11 "X\x01\"A: a", 0, 0, ""};
    CHECK_EQ_INT(run(&u, msg, sizeof msg), 400);
    CHECK(strstr(msg, "X\\x01\\x22A") != NULL);
}

static void test_target(void)
{
    char msg[80];
    CHECK(rc_target_ok("/api/v1/x?a=%20b", msg, sizeof msg));
    CHECK(rc_target_ok("/caf\xc3\xa9", msg, sizeof msg)); /* raw UTF-8: not a framing risk */
    CHECK(rc_target_ok(NULL, msg, sizeof msg));
    CHECK(!rc_target_ok("/x y", msg, sizeof msg));
    CHECK(strstr(msg, "space") != NULL);
    CHECK(!rc_target_ok("/x\x01", msg, sizeof msg));
    CHECK(strstr(msg, "0x01") != NULL);
    CHECK(!rc_target_ok("/x\t", msg, sizeof msg));
    CHECK(!rc_target_ok("/x\x7f", msg, sizeof msg));
}

/* Offsets as libmicrohttpd 0.9.75 leaves them (measured with a probe server):
 * "GET /x HTTP/1.1\r\n" puts the target at 4 and the version at 7; each
 * field line "Name: v\r\n" starts 2 bytes after the previous value. */
static void test_layout(void)
{
    rc_layout l;
    /* GET /x HTTP/1.1 | Host: x | X-A:   a   (OWS kept out of the value, trailing SP in it) */
    rc_layout_begin(&l, 3, true, 4, 2, 7, 8);
    rc_layout_field(&l, 17, 4, 23, 1);
    rc_layout_field(&l, 26, 3, 33, 3);
    CHECK(rc_layout_end(&l, 40));
    /* HTTP/1.0 with no fields; an unknown target place. */
    rc_layout_begin(&l, 3, false, 0, 0, 7, 8);
    CHECK(rc_layout_end(&l, 19));
    /* A NUL in the last value: "X-A: a\0b" reports 1 byte, the head is 2 longer. */
    rc_layout_begin(&l, 3, true, 4, 2, 7, 8);
    rc_layout_field(&l, 17, 4, 23, 1);
    rc_layout_field(&l, 26, 3, 31, 1);
    CHECK(!rc_layout_end(&l, 38));
    CHECK(rc_layout_end(&l, 36)); /* the same head without the NUL */
    /* ... and in a value that is not the last. */
    rc_layout_begin(&l, 3, true, 4, 2, 7, 8);
    rc_layout_field(&l, 17, 3, 22, 1);
    rc_layout_field(&l, 27, 4, 33, 1);
    CHECK(!rc_layout_end(&l, 36));
    /* obs-fold: 0.9.75 copies the grown name elsewhere in its pool. */
    rc_layout_begin(&l, 3, true, 4, 2, 7, 8);
    rc_layout_field(&l, 17, 4, 23, 1);
    rc_layout_field(&l, 16400, 4, 31, 1);
    CHECK(!rc_layout_end(&l, 39));
    /* Bare LF: "GET /x HTTP/1.1\nHost: x\n\n". */
    rc_layout_begin(&l, 3, true, 4, 2, 7, 8);
    rc_layout_field(&l, 16, 4, 22, 1);
    CHECK(!rc_layout_end(&l, 25));
    /* An empty name ends the head early in 0.9.75: ": a\r\n" counted, no field for it. */
    rc_layout_begin(&l, 3, true, 4, 2, 7, 8);
    rc_layout_field(&l, 17, 4, 23, 1);
    CHECK(!rc_layout_end(&l, 31));
    /* Two spaces before the target; a NUL in the target ("/x\0y"). */
    rc_layout_begin(&l, 3, true, 5, 2, 8, 8);
    CHECK(!rc_layout_end(&l, 20));
    rc_layout_begin(&l, 3, true, 4, 2, 9, 8);
    CHECK(!rc_layout_end(&l, 21));
    /* A value placed before its name. */
    rc_layout_begin(&l, 3, true, 4, 2, 7, 8);
    rc_layout_field(&l, 17, 4, 18, 1);
    CHECK(!rc_layout_end(&l, 23));
}

static void test_send(void)
{
    char buf[1024];
    size_t n = rc_format_refusal(buf, sizeof buf, 501, "abc123", "the transfer coding \"x\" is not implemented");
    CHECK(n > 0);
    CHECK(!strncmp(buf, "HTTP/1.1 501 Not Implemented\r\n", 30));
    CHECK(strstr(buf, "\r\nConnection: close\r\n") != NULL);
    CHECK(strstr(buf, "\r\nX-Request-Id: abc123\r\n") != NULL);
    const char *body = strstr(buf, "\r\n\r\n");
    CHECK(body && strstr(body, "{\"detail\":{\"code\":\"malformed_request\",\"message\":\"the transfer coding \\\"x\\\"") == body + 4);
    /* Content-Length matches the body. */
    const char *cl = strstr(buf, "Content-Length: ");
    CHECK(cl && (size_t)atoi(cl + 16) == n - (size_t)(body + 4 - buf));
    CHECK_EQ_INT(rc_format_refusal(buf, 40, 400, "", "m"), 0); /* does not fit: nothing */

    /* A head too large: 431 with its own code. */
    char msg[200];
    CHECK_EQ_INT(rc_head_size(RC_MAX_HEAD_BYTES, RC_MAX_HEAD_FIELDS, msg, sizeof msg), 0);
    CHECK_EQ_INT(rc_head_size(RC_MAX_HEAD_BYTES + 1, 3, msg, sizeof msg), 431);
    CHECK(strstr(msg, "bytes") != NULL);
    CHECK_EQ_INT(rc_head_size(100, RC_MAX_HEAD_FIELDS + 1, msg, sizeof msg), 431);
    CHECK(strstr(msg, "fields") != NULL);
    CHECK(RC_HEAD_POOL_BYTES >= RC_MAX_HEAD_BYTES + 56 * (RC_MAX_HEAD_FIELDS + 64));
    n = rc_format_refusal(buf, sizeof buf, 431, "r1", msg);
    CHECK(n > 0 && !strncmp(buf, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46));
    CHECK(strstr(buf, "{\"detail\":{\"code\":\"header_too_large\"") != NULL);

    /* Over a socket pair: the answer, then EOF; what the peer sent is dropped. */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(write(sv[1], "GET /healthz HTTP/1.1\r\n\r\n", 25) == 25);
    CHECK_EQ_INT(rc_send_refusal(sv[0], 400, "r1", "bad", 1000, 200), 0);
    char got[2048];
    size_t g = 0;
    for (;;) {
        struct pollfd p = {sv[1], POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0) break;
        ssize_t r = read(sv[1], got + g, sizeof got - 1 - g);
        if (r <= 0) break;
        g += (size_t)r;
    }
    got[g] = 0;
    CHECK(!strncmp(got, "HTTP/1.1 400 Bad Request\r\n", 26));
    CHECK(strstr(got, "\"code\":\"malformed_request\",\"message\":\"bad\"") != NULL);
    CHECK(strstr(got + 5, "HTTP/1.1") == NULL); /* one answer */
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    test_table();
    test_messages();
    test_target();
    test_layout();
    test_send();
    return check_report("request_check");
}
