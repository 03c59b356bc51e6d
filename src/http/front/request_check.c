#include "http/front/request_check.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "util/json_out.h"

/* RFC 9110 section 5.6.2: tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Client-supplied bytes in a message: printable ASCII kept, the rest as \xNN, cut at max_in. */
static void escape(char *out, size_t cap, const char *s, size_t n, size_t max_in)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < max_in && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') out[o++] = (char)c;
        else o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    if (n > max_in && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o < cap ? o : cap - 1] = 0;
}

/* Records a refusal. The first 400 wins; a 400 found later still overrides a
 * 501 (a broken frame matters more than an unimplemented coding). */
static void fail(rc_state *st, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(rc_state *st, unsigned status, const char *fmt, ...)
{
    if (st->status == 400 || (st->status == 501 && status == 501)) return;
    st->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->message, sizeof st->message, fmt, ap);
    va_end(ap);
}

static bool name_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && !strncasecmp(name, want, len);
}

void rc_begin(rc_state *st, const char *method, const char *version)
{
    memset(st, 0, sizeof *st);
    st->http10 = version && !strcmp(version, "HTTP/1.0");
    size_t n = method ? strlen(method) : 0;
    bool ok = n > 0;
    for (size_t i = 0; ok && i < n; i++) ok = is_tchar((unsigned char)method[i]);
    if (!ok) {
        char e[64];
        escape(e, sizeof e, method ? method : "", n, 20);
        fail(st, 400, "the method \"%s\" is not a token", e);
    }
}

/* One element of a Transfer-Encoding list (OWS already trimmed). */
static void te_coding(rc_state *st, const char *s, size_t n)
{
    /* transfer-coding = token *( OWS ";" OWS transfer-parameter ) */
    size_t tok = 0;
    while (tok < n && is_tchar((unsigned char)s[tok])) tok++;
    size_t k = tok;
    while (k < n && (s[k] == ' ' || s[k] == '\t')) k++;
    char e[64];
    if (tok == 0 || (k < n && s[k] != ';')) {
        escape(e, sizeof e, s, n, 20);
        fail(st, 400, "malformed Transfer-Encoding element \"%s\"", e);
        return;
    }
    st->codings++;
    if (tok == 7 && !strncasecmp(s, "chunked", 7)) {
        st->chunked_n++;
        st->chunked_last = true;
        /* chunked takes no parameters */
        if (k < n) fail(st, 400, "Transfer-Encoding: chunked takes no parameters");
        return;
    }
    st->chunked_last = false;
    if (!st->unknown_coding[0]) escape(st->unknown_coding, sizeof st->unknown_coding, s, tok, 16);
}

static void te_list(rc_state *st, const char *v, size_t n)
{
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && v[j] != ',') j++;
        size_t a = i, b = j;
        while (a < b && (v[a] == ' ' || v[a] == '\t')) a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t')) b--;
        if (b > a) te_coding(st, v + a, b - a); /* empty list elements are allowed (RFC 9110 5.6.1) */
        i = j + 1;
    }
}

void rc_header(rc_state *st, const char *name, size_t name_len, const char *value, size_t value_len)
{
    char e[96];
    bool tok = name_len > 0;
    for (size_t i = 0; tok && i < name_len; i++) tok = is_tchar((unsigned char)name[i]);
    if (!tok) {
        /* Also what whitespace before the colon, a leading space (a folded
         * first line) and most obs-folds leave in the name with libmicrohttpd 0.9.75. */
        escape(e, sizeof e, name, name_len, 40);
        fail(st, 400, "the header name \"%s\" is not a token", e);
        return;
    }
    for (size_t i = 0; i < value_len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            escape(e, sizeof e, name, name_len, 40);
            fail(st, 400, "a control character (0x%02x) in the value of header \"%s\"", c, e);
            return;
        }
    }
    if (name_is(name, name_len, "Host")) {
        st->host_n++;
        /* Host = uri-host [ ":" port ]: reg-name, IPv4 or [IP-literal] characters only. */
        for (size_t i = 0; i < value_len; i++) {
            unsigned char c = (unsigned char)value[i];
            bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                strchr("-._~!$&'()*+,;=%:[]", c) != NULL;
            if (!ok) {
                escape(e, sizeof e, value, value_len, 40);
                fail(st, 400, "the Host header \"%s\" is not a host name", e);
                return;
            }
        }
    } else if (name_is(name, name_len, "Content-Length")) {
        st->cl_n++;
        /* 1*DIGIT: no sign, no space, no list (a list of equal values is
         * refused too, as a second Content-Length field is). */
        bool ok = value_len > 0;
        for (size_t i = 0; ok && i < value_len; i++) ok = value[i] >= '0' && value[i] <= '9';
        if (!ok) {
            escape(e, sizeof e, value, value_len, 40);
            fail(st, 400, "Content-Length \"%s\" is not a number", e);
        }
    } else if (name_is(name, name_len, "Transfer-Encoding")) {
        st->te_n++;
        if (st->te_n == 1) st->te_exact_chunked = value_len == 7 && !strncasecmp(value, "chunked", 7);
        te_list(st, value, value_len);
    } else if ((name_len > 14 && !strncasecmp(name, "Content-Length", 14)) ||
               (name_len > 17 && !strncasecmp(name, "Transfer-Encoding", 17))) {
        /* libmicrohttpd 0.9.75 appends an obs-fold continuation to the field
         * NAME: "Transfer-Encoding: chunked\r\n x" arrives as
         * "Transfer-Encodingx", which it then does not frame by. A proxy that
         * unfolds would. No real header starts this way. */
        escape(e, sizeof e, name, name_len, 40);
        fail(st, 400, "the header name \"%s\" looks like a folded framing header", e);
    }
}

unsigned rc_end(rc_state *st)
{
    if (!st->http10 && st->host_n == 0) fail(st, 400, "an HTTP/1.1 request needs a Host header");
    if (st->host_n > 1) fail(st, 400, "more than one Host header");
    if (st->cl_n > 1) fail(st, 400, "more than one Content-Length header");
    if (st->te_n > 0) {
        if (st->http10) fail(st, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (st->cl_n > 0) fail(st, 400, "both Content-Length and Transfer-Encoding");
        if (st->codings == 0) fail(st, 400, "an empty Transfer-Encoding");
        if (st->chunked_n > 1) fail(st, 400, "chunked applied more than once");
        if (st->chunked_n == 1 && !st->chunked_last) fail(st, 400, "chunked is not the final transfer coding");
        if (st->unknown_coding[0])
            fail(st, 501, "the transfer coding \"%s\" is not implemented (only chunked is)", st->unknown_coding);
        /* Whatever is left would be valid but framed differently by
         * libmicrohttpd, which reads only the first field and compares it whole. */
        else if (!st->te_exact_chunked) fail(st, 400, "Transfer-Encoding must be exactly \"chunked\", in one header");
    }
    return st->status;
}

void rc_layout_begin(rc_layout *l, size_t method_len, bool have_target, long long target_off, size_t target_len,
                     long long version_off, size_t version_len)
{
    l->expect = version_off + (long long)version_len + 2;
    l->broken = version_off <= 0;
    if (have_target)
        l->broken = l->broken || target_off != (long long)method_len + 1 ||
            version_off != target_off + (long long)target_len + 1;
}

void rc_layout_field(rc_layout *l, long long name_off, size_t name_len, long long value_off, size_t value_len)
{
    /* The value follows the name and its colon (and OWS, which is all
     * libmicrohttpd skips there). */
    if (name_off != l->expect || value_off < name_off + (long long)name_len + 1) l->broken = true;
    l->expect = value_off + (long long)value_len + 2;
}

bool rc_layout_end(const rc_layout *l, size_t header_size)
{
    return !l->broken && (long long)header_size == l->expect + 2;
}

bool rc_target_ok(const char *target, char *msg, size_t cap)
{
    if (!target) return true; /* no target at all: libmicrohttpd answers that itself */
    for (const char *p = target; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7f) {
            if (msg && cap) snprintf(msg, cap, "a %s (0x%02x) in the request target", c == ' ' ? "space" : "control character", c);
            return false;
        }
    }
    return true;
}

static const char *reason(unsigned status)
{
    return status == 501 ? "Not Implemented" : status == 431 ? "Request Header Fields Too Large"
                                                             : "Bad Request";
}

unsigned rc_head_size(size_t head_bytes, unsigned fields, char *msg, size_t cap)
{
    if (head_bytes > RC_MAX_HEAD_BYTES)
        snprintf(msg, cap, "the request line and headers are %zu bytes, over the %d byte limit", head_bytes,
                 RC_MAX_HEAD_BYTES);
    else if (fields > RC_MAX_HEAD_FIELDS)
        snprintf(msg, cap, "the request has %u header fields, over the limit of %d", fields, RC_MAX_HEAD_FIELDS);
    else return 0;
    return 431;
}

bool rc_content_length_ok(const char *v)
{
    size_t n = 0;
    while (v[n] >= '0' && v[n] <= '9') n++;
    return n > 0 && n <= 19 && v[n] == 0;
}

size_t rc_format_refusal(char *buf, size_t cap, unsigned status, const char *request_id, const char *message)
{
    size_t bl = 0;
    char *body = json_error_body(status == 431 ? "header_too_large" : "malformed_request", message, &bl);
    if (!body) return 0;
    bool rid = request_id && request_id[0];
    int n = snprintf(buf, cap,
                     "HTTP/1.1 %u %s\r\nConnection: close\r\nContent-Type: application/json\r\n%s%s%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     status, reason(status), rid ? "X-Request-Id: " : "", rid ? request_id : "", rid ? "\r\n" : "", bl,
                     body);
    free(body);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rc_send_refusal(int fd, unsigned status, const char *request_id, const char *message, int timeout_ms,
                    int linger_ms)
{
    char buf[1024];
    size_t len = rc_format_refusal(buf, sizeof buf, status, request_id, message);
    size_t off = 0;
    long long end = now_ms() + timeout_ms;
    while (off < len) {
        ssize_t w = send(fd, buf + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) break;
        long long left = end - now_ms();
        if (left <= 0) break;
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, (int)left) <= 0) break;
    }
    shutdown(fd, SHUT_WR);
    /* A lingering close, as web servers do: bytes the client already sent
     * (the rest of a body, pipelined requests) are read and dropped, never
     * parsed. Closing with them unread would send a reset, which can destroy
     * the answer before the client reads it. Bounded in time and bytes. */
    end = now_ms() + linger_ms;
    size_t dropped = 0;
    char sink[4096];
    for (;;) {
        long long left = end - now_ms();
        if (left <= 0 || dropped > (1u << 20)) break;
        struct pollfd p = {fd, POLLIN, 0};
        int pr = poll(&p, 1, (int)left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) break;
        ssize_t r = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (r <= 0) break;
        dropped += (size_t)r;
    }
    return len > 0 && off == len ? 0 : -1;
}
