/* The engine alone: libmicrohttpd 0.9.75 configured as Sight's front
 * configures it (src/http/front/engine.c: epoll threads, a pool of 2, a
 * 128 KiB connection memory limit, strict level 0, suspend/resume allowed),
 * with none of Sight's head checks, raw refusals or lingering close. Every
 * request is answered 200 with a small JSON body once its body is read.
 *
 *   mhd_min PORT      (prints "ready PORT" once listening; runs until killed)
 *
 * Differences from Sight, on purpose: libmicrohttpd listens itself (Sight
 * has its own acceptor thread), and the client timeout is 300 s so that the
 * idle-connection count is not cut by it. */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char BODY[] = "{\"status\":\"ok\"}";

/* One marker per request: the first call only says the head is in; each
 * later call with upload bytes consumes them; the call with none left
 * answers. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **req)
{
    static int seen;
    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    if (!*req) {
        *req = &seen;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof BODY - 1, (void *)BODY, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

static void quiet(void *cls, const char *fmt, va_list ap) { (void)cls, (void)fmt, (void)ap; }

int main(int argc, char **argv)
{
    unsigned port = argc > 1 ? (unsigned)atoi(argv[1]) : 8080;
    signal(SIGPIPE, SIG_IGN);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, NULL,
                                            MHD_OPTION_EXTERNAL_LOGGER, quiet, NULL,
                                            MHD_OPTION_THREAD_POOL_SIZE, 2u,
                                            /* the default (FD_SETSIZE - 4) would refuse the idle test */
                                            MHD_OPTION_CONNECTION_LIMIT, 30000u,
                                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u,
                                            MHD_OPTION_CONNECTION_TIMEOUT, 300u,
                                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
                                            MHD_OPTION_STRICT_FOR_CLIENT, 0,
                                            MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
                                            MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cannot start libmicrohttpd on port %u\n", port);
        return 1;
    }
    printf("ready %u\n", port);
    fflush(stdout);
    for (;;) pause();
}
