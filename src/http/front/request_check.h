/* HTTP/1.1 message checks that libmicrohttpd 0.9.75 leaves to the
 * application (RFC 9112), against request smuggling: a proxy in front and
 * Sight must never disagree on where a request ends.
 *
 * libmicrohttpd parses the request line and headers; the handler sees every
 * header field (duplicates included) and feeds them here, one at a time. The
 * verdict is 0 (acceptable), 400, or 501 (a transfer coding Sight does not
 * implement). Pure functions: no I/O, no allocation, so they can be unit
 * tested and fuzzed; rc_send_refusal is the one that writes to a socket.
 *
 * What libmicrohttpd 0.9.75 itself refuses before the handler runs (a
 * Content-Length that is not a number, a bad chunk size, a header line without
 * a colon, a bad HTTP version) never reaches these checks; see
 * docs/http-strictness.md. */
#ifndef SIGHT_HTTP_REQUEST_CHECK_H
#define SIGHT_HTTP_REQUEST_CHECK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    bool http10; /* HTTP/1.0: Host optional, Transfer-Encoding refused */
    unsigned host_n, cl_n, te_n;
    bool te_exact_chunked;   /* the first Transfer-Encoding field is exactly "chunked",
                                 the only value libmicrohttpd frames as chunked */
    unsigned codings;        /* transfer codings over all Transfer-Encoding fields */
    unsigned chunked_n;      /* of which "chunked" */
    bool chunked_last;       /* the last coding seen is chunked */
    char unknown_coding[32]; /* the first coding that is not chunked ("" if none) */
    unsigned status;         /* 0, 400 or 501: the verdict so far */
    char message[200];
} rc_state;

/* The request line: method and version as libmicrohttpd gives them. */
void rc_begin(rc_state *st, const char *method, const char *version);

/* One header field (name and value with their lengths). */
void rc_header(rc_state *st, const char *name, size_t name_len, const char *value, size_t value_len);

/* The checks over all fields together; returns the verdict (st->status), with
 * a message for the client in st->message when it is not 0. */
unsigned rc_end(rc_state *st);

/* What libmicrohttpd 0.9.75 hides: it parses the head in place, in one buffer
 * that starts at the method, replacing CR, LF and the colon with NULs, and
 * reports strlen-based lengths. So in a well-formed head (CRLF line ends),
 * each field name starts exactly 2 bytes after the previous value (or the
 * version) ends, and the head ends 2 bytes after the last line. A NUL in a
 * value (the rest of the line dropped), an obs-fold (0.9.75 appends the
 * continuation to the NAME, copied elsewhere), an empty field name (0.9.75
 * ends the head there and parses the rest as the next request) and a bare LF
 * all break that arithmetic. Offsets are from the method's first byte. */
typedef struct {
    long long expect; /* where the next line must start */
    bool broken;
} rc_layout;

/* The request line: method SP request-target SP version, each SP single (a
 * NUL in the method or the target shows as a gap). have_target false: the
 * target's place is unknown, only the version's is checked. */
void rc_layout_begin(rc_layout *l, size_t method_len, bool have_target, long long target_off, size_t target_len,
                     long long version_off, size_t version_len);
void rc_layout_field(rc_layout *l, long long name_off, size_t name_len, long long value_off, size_t value_len);
/* True when the fields and header_size (MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE) account for every byte. */
bool rc_layout_end(const rc_layout *l, size_t header_size);

/* A Content-Length value as RFC 9112 8.6 has it and libmicrohttpd 0.9.75
 * reads it: 1 to 19 digits, nothing else (no sign, space, list or hex), so
 * that it fits in 64 bits. */
bool rc_content_length_ok(const char *v);

/* The raw request-target, before any percent-decoding: false (with a message)
 * when it holds a control character, a space or DEL (RFC 9112 section 3.2). */
bool rc_target_ok(const char *target, char *msg, size_t cap);

/* The request head's limits: request line and header fields, in bytes (as
 * MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE counts them), and fields. Over
 * either: 431 header_too_large. libmicrohttpd's buffer for a head
 * (RC_HEAD_POOL_BYTES, MHD_OPTION_CONNECTION_MEMORY_LIMIT; it holds the
 * head and ~56 bytes per field) is kept well above them, so that these, with
 * the usual JSON answer, are what refuses a large head; only a head over
 * that buffer (128 KiB, less ~56 bytes per field) gets libmicrohttpd's own
 * page (431, or 414 for a request line alone), counted by status in
 * /metrics. libmicrohttpd 0.9.75 has no hook for that page. The buffer is
 * mapped lazily: an idle connection still costs a few KiB. */
#define RC_MAX_HEAD_BYTES (32 * 1024)
#define RC_MAX_HEAD_FIELDS 200
#define RC_HEAD_POOL_BYTES (128 * 1024)

/* 431 with a message when a head of head_bytes and fields is over the
 * limits above; else 0. */
unsigned rc_head_size(size_t head_bytes, unsigned fields, char *msg, size_t cap);

/* Formats the whole refusal: status line, Connection: close, X-Request-Id,
 * and the usual JSON error body with code "malformed_request" (431:
 * "header_too_large"). Returns its length (< cap), or 0 when it does not fit. */
size_t rc_format_refusal(char *buf, size_t cap, unsigned status, const char *request_id, const char *message);

/* Sends the refusal on fd (waiting at most timeout_ms for room), shuts the
 * sending side, then reads and drops what the client still sends for at most
 * linger_ms, so that closing the socket does not reset the connection before
 * the client has read the answer. Returns 0 when the refusal was sent whole. */
int rc_send_refusal(int fd, unsigned status, const char *request_id, const char *message, int timeout_ms,
                    int linger_ms);

#endif
