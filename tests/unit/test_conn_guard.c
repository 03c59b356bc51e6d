#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "http/front/conn_guard.h"

#define S 1000000000LL

/* Reads what the guard wrote to the other end of a socket pair, until EOF or 3 s. */
static size_t drain(int fd, char *buf, size_t cap, int *eof)
{
    size_t n = 0;
    *eof = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 3000) <= 0) return n;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0) {
            *eof = 1;
            break;
        }
        n += (size_t)r;
    }
    buf[n] = 0;
    return n;
}

int main(void)
{
    cg_limits l = {20, 20, 500, false};
    /* Headers: from the phase's start, whatever the body count says. */
    CHECK_EQ_INT(cg_deadline(&l, CG_HEADERS, 5 * S, 0), 25 * S);
    CHECK_EQ_INT(cg_deadline(&l, CG_HEADERS, 5 * S, 123456), 25 * S);
    /* Body: grace, then one more second per 500 bytes, fractions kept. */
    CHECK_EQ_INT(cg_deadline(&l, CG_BODY, 0, 0), 20 * S);
    CHECK_EQ_INT(cg_deadline(&l, CG_BODY, 0, 500), 21 * S);
    CHECK_EQ_INT(cg_deadline(&l, CG_BODY, 0, 750), 21 * S + S / 2);
    CHECK_EQ_INT(cg_deadline(&l, CG_BODY, 7 * S, 100LL << 20), 7 * S + 20 * S + (100LL << 20) * S / 500);
    /* A response being sent is never cut. */
    CHECK_EQ_INT(cg_deadline(&l, CG_RESPONSE, 0, 0), CG_NO_DEADLINE);
    /* Huge counts saturate instead of overflowing into the past. */
    CHECK_EQ_INT(cg_deadline(&l, CG_BODY, 0, INT64_MAX), CG_NO_DEADLINE);
    cg_limits slow = {20, 20, 1, false};
    CHECK_EQ_INT(cg_deadline(&slow, CG_BODY, 1 * S, INT64_MAX / 2), CG_NO_DEADLINE);
    /* 0 turns a check off; a rate of 0 leaves the grace alone. */
    cg_limits off = {0, 0, 500, false};
    CHECK_EQ_INT(cg_deadline(&off, CG_HEADERS, 0, 0), CG_NO_DEADLINE);
    CHECK_EQ_INT(cg_deadline(&off, CG_BODY, 0, 0), CG_NO_DEADLINE);
    cg_limits norate = {20, 3, 0, false};
    CHECK_EQ_INT(cg_deadline(&norate, CG_BODY, 0, 1 << 30), 3 * S);

    /* The reaper itself, on socket pairs: a connection stuck in its headers is
     * told 408 and shut down; one whose request is complete is left alone. */
    cg_limits fast = {1, 1, 1000, false};
    ticker *tk = ticker_start(NULL);
    CHECK(tk != NULL);
    conn_guard *g = cg_start(&fast, tk);
    CHECK(g != NULL);
    int stuck[2], sending[2], body[2];
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, stuck), 0);
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sending), 0);
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, body), 0);
    cg_conn *a = cg_open(g, stuck[0], "peer-a");
    cg_conn *b = cg_open(g, sending[0], "peer-b");
    cg_conn *c = cg_open(g, body[0], "peer-c");
    cg_headers_done(b, "req-b");
    cg_request_done(b);
    cg_headers_done(c, "req-c");
    cg_body_bytes(c, 2000); /* 1 s grace + 2 s for 2000 bytes at 1000/s */
    char buf[1024];
    int eof;
    drain(stuck[1], buf, sizeof buf, &eof);
    CHECK(eof);
    CHECK(!strncmp(buf, "HTTP/1.1 408 ", 13));
    CHECK(strstr(buf, "\"code\":\"request_timeout\"") != NULL);
    CHECK_EQ_INT(cg_was_cut(a), CG_CUT_HEADER);
    CHECK_EQ_INT(cg_was_cut(b), CG_CUT_NONE);
    CHECK_EQ_INT(cg_was_cut(c), CG_CUT_NONE); /* about 1.3 s in: still within its 3 s */
    drain(body[1], buf, sizeof buf, &eof);
    CHECK(eof);
    CHECK(strstr(buf, "X-Request-Id: req-c\r\n") != NULL);
    CHECK_EQ_INT(cg_was_cut(c), CG_CUT_BODY);
    CHECK_EQ_INT(cg_was_cut(b), CG_CUT_NONE);
    struct pollfd p = {sending[1], POLLIN, 0};
    CHECK_EQ_INT(poll(&p, 1, 0), 0);
    /* A kept-alive connection waits for its next headers under the header deadline again. */
    cg_next_request(b);
    drain(sending[1], buf, sizeof buf, &eof);
    CHECK(eof);
    CHECK_EQ_INT(cg_was_cut(b), CG_CUT_HEADER);
    cg_close(a);
    cg_close(b);
    cg_close(c);
    cg_stop(g);
    ticker_stop(tk);
    for (int i = 0; i < 2; i++) {
        close(stuck[i]);
        close(sending[i]);
        close(body[i]);
    }
    return check_report("conn_guard");
}
