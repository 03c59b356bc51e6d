/* front.h's per-connection calls over the engine: the request's headers
 * and arguments, the head checks' glue, deadlines, waiting, responses and
 * raw refusals. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/front/engine.h"
#include "http/front/request_check.h"

#define MHD(c) ((struct MHD_Connection *)(c))
#define RESP(r) ((struct MHD_Response *)(r))

const char *front_header(front_conn *c, const char *name)
{
    return MHD_lookup_connection_value(MHD(c), MHD_HEADER_KIND, name);
}

const char *front_query(front_conn *c, const char *name)
{
    return MHD_lookup_connection_value(MHD(c), MHD_GET_ARGUMENT_KIND, name);
}

int front_client_fd(front_conn *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(MHD(c), MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

typedef struct {
    rc_state st;
    rc_layout lay;
    uintptr_t head;  /* the method's first byte: the head's start in libmicrohttpd's buffer */
    unsigned fields; /* header fields seen */
} head_check;

/* Offset of p from the head's start, as an integer (the pointers may not
 * point into the same buffer: that is what the layout check looks for). */
static long long head_off(const head_check *h, const char *p)
{
    return (long long)((uintptr_t)p - h->head);
}

/* Every header field as libmicrohttpd parsed it, duplicates included. */
static enum MHD_Result check_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                    const char *value, size_t value_size)
{
    (void)kind;
    head_check *h = cls;
    h->fields++;
    rc_header(&h->st, key, key_size, value, value_size);
    rc_layout_field(&h->lay, head_off(h, key), key_size, head_off(h, value), value_size);
    return MHD_YES;
}

/* RFC 9112 framing and syntax checks (request_check.h) on a request whose
 * headers are in, and its size. The answer to a refusal must be written
 * straight to the socket (front_refuse_head): queued through libmicrohttpd,
 * an early answer to a request with a body of unknown length
 * (Transfer-Encoding) waits for that body, and the bytes after it would be
 * parsed as the next request. */
unsigned front_check_head(front_conn *fc, char *msg, size_t cap)
{
    struct MHD_Connection *c = MHD(fc);
    const front_req *fr = front_current;
    head_check h = {.head = (uintptr_t)fr->method};
    rc_state *st = &h.st;
    rc_begin(st, fr->method, fr->version);
    rc_layout_begin(&h.lay, strlen(fr->method), fr->target_at != 0, head_off(&h, (const char *)fr->target_at),
                    fr->target_len, head_off(&h, fr->version), strlen(fr->version));
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, check_header, &h);
    unsigned status = rc_end(st);
    const union MHD_ConnectionInfo *hs = MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (status != 400 && fr->target_error[0]) {
        status = 400;
        snprintf(st->message, sizeof st->message, "%s", fr->target_error);
    } else if (status != 400 && (!hs || !rc_layout_end(&h.lay, hs->header_size))) {
        status = 400;
        snprintf(st->message, sizeof st->message, "%s",
                 "the request head holds bytes outside its parts: an obs-fold, a NUL, a bare LF, "
                 "a field without a name or a doubled space (RFC 9112 sections 2.2, 3, 5.1, 5.2)");
    }
    if (!status && hs) status = rc_head_size(hs->header_size, h.fields, st->message, sizeof st->message);
    snprintf(msg, cap, "%s", status ? st->message : "");
    return status;
}

void front_headers_done(front_conn *c, const char *request_id) { cg_headers_done(front_guard_of(MHD(c)), request_id); }
void front_body_bytes(front_conn *c, int64_t n) { cg_body_bytes(front_guard_of(MHD(c)), n); }
void front_request_done(front_conn *c) { cg_request_done(front_guard_of(MHD(c))); }

void front_suspend(front_conn *c) { MHD_suspend_connection(MHD(c)); }
void front_resume(front_conn *c) { MHD_resume_connection(MHD(c)); }

front_wait *front_wait_attach(front *f, front_conn *c, int queue_fd)
{
    return (front_wait *)cw_attach(f->cw, MHD(c), queue_fd, front_client_fd(c));
}
bool front_wait_suspend(front_wait *w) { return cw_suspend((cw_slot *)w); }
bool front_wait_client_gone(front_wait *w) { return cw_client_gone((cw_slot *)w); }
void front_wait_detach(front_wait *w) { cw_detach((cw_slot *)w); }

front_resp *front_resp_buffer(void *body, size_t len, front_body who)
{
    return (front_resp *)MHD_create_response_from_buffer(
        len, body, who == FRONT_BODY_FREE ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
}

front_resp *front_resp_stream(size_t block, front_read_fn read, void *cls, void (*free_cls)(void *cls))
{
    return (front_resp *)MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, block, read, cls, free_cls);
}

void front_resp_header(front_resp *r, const char *name, const char *value)
{
    MHD_add_response_header(RESP(r), name, value);
}

void front_resp_free(front_resp *r) { MHD_destroy_response(RESP(r)); }

front_result front_respond(front_conn *c, unsigned status, front_resp *r)
{
    enum MHD_Result ret = MHD_queue_response(MHD(c), status, RESP(r));
    MHD_destroy_response(RESP(r));
    return ret == MHD_YES ? FRONT_OK : FRONT_CLOSE;
}

/* The lingering read happens on the watcher's thread, on a duplicate of the
 * socket that outlives libmicrohttpd's close. */
static void linger_on(front *f, int fd)
{
    int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dupfd >= 0) cw_linger(f->cw, dupfd, 1000);
}

front_result front_refuse_raw(front *f, front_conn *c, const char *bytes, size_t len)
{
    /* From here this thread answers: no request deadline applies. */
    cg_request_done(front_guard_of(MHD(c)));
    int fd = front_client_fd(c);
    if (fd < 0) return FRONT_CLOSE;
    /* A few hundred bytes into an empty send buffer: written without waiting. */
    ssize_t w = send(fd, bytes, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
    shutdown(fd, SHUT_WR);
    linger_on(f, fd);
    return FRONT_CLOSE;
}

front_result front_refuse_head(front *f, front_conn *c, unsigned status, const char *request_id, const char *message)
{
    cg_request_done(front_guard_of(MHD(c)));
    int fd = front_client_fd(c);
    if (fd < 0) return FRONT_CLOSE;
    /* The answer fits an empty send buffer: written without waiting. */
    rc_send_refusal(fd, status, request_id, message, 0, 0);
    linger_on(f, fd);
    return FRONT_CLOSE;
}

const char *front_status_text(unsigned status) { return MHD_get_reason_phrase_for(status); }
