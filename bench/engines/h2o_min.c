/* The same minimal server on libh2o-evloop 2.2.5 (Debian 12): plain
 * HTTP/1.1 (and HTTP/2 over cleartext when the client starts with its
 * preface), 2 threads, each with its own evloop and its own listening
 * socket on the same port (SO_REUSEPORT: the kernel spreads connections
 * over them). Every request is answered 200 with a small JSON body; h2o
 * 2.2 reads the whole body (req->entity) before it calls the handler.
 *
 *   h2o_min PORT [show]   (prints "ready PORT" once listening; runs until killed)
 *
 * With "show", the body says what the handler was given instead (version,
 * method, authority, path, body length, the header list): what an
 * application's own checks could still look at (compare.py, section 1b).
 *
 * The request timeout is 300 s, as mhd_min's client timeout. */
#define H2O_USE_EPOLL 1
#include <h2o.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define THREADS 2

static const char BODY[] = "{\"status\":\"ok\"}";
static h2o_globalconf_t config;
static unsigned port;
static pthread_barrier_t listening;
static int show;

/* The request as the handler sees it, as text ("entity -1": no body). */
static size_t describe(const h2o_req_t *req, char *out, size_t cap)
{
    int n = snprintf(out, cap, "version %x; method %.*s; authority [%.*s]; path %.*s; entity %zd\n", req->version,
                     (int)req->method.len, req->method.base, (int)req->authority.len, req->authority.base,
                     (int)req->path.len, req->path.base, req->entity.base ? (ssize_t)req->entity.len : (ssize_t)-1);
    size_t o = n > 0 && (size_t)n < cap ? (size_t)n : 0;
    for (size_t i = 0; i < req->headers.size && o + 1 < cap; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        n = snprintf(out + o, cap - o, "[%.*s]: [%.*s]\n", (int)h->name->len, h->name->base, (int)h->value.len,
                     h->value.base);
        if (n < 0 || (size_t)n >= cap - o) break;
        o += (size_t)n;
    }
    return o;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    const char *body = BODY;
    size_t len = sizeof BODY - 1;
    if (show) {
        char *buf = h2o_mem_alloc_pool(&req->pool, 4096);
        len = describe(req, buf, 4096);
        body = buf;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = len; /* as mhd_min: Content-Length, not chunked */
    h2o_iovec_t type = show ? h2o_iovec_init(H2O_STRLIT("text/plain")) : h2o_iovec_init(H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type.base, type.len);
    h2o_send_inline(req, body, len);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err) return;
    h2o_socket_t *s = h2o_evloop_socket_accept(listener);
    if (s) h2o_accept(listener->data, s);
}

static int listen_on(unsigned p)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        listen(fd, 4096))
        return -1;
    return fd;
}

static void *serve(void *arg)
{
    (void)arg;
    h2o_context_t ctx;
    h2o_accept_ctx_t actx = {0};
    h2o_evloop_t *loop = h2o_evloop_create();
    h2o_context_init(&ctx, loop, &config);
    actx.ctx = &ctx;
    actx.hosts = config.hosts;
    int fd = listen_on(port);
    if (fd < 0) {
        perror("listen");
        exit(1);
    }
    h2o_socket_t *ls = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    ls->data = &actx;
    h2o_socket_read_start(ls, on_accept);
    pthread_barrier_wait(&listening);
    while (h2o_evloop_run(loop, INT32_MAX) == 0) {
    }
    return NULL;
}

int main(int argc, char **argv)
{
    port = argc > 1 ? (unsigned)atoi(argv[1]) : 8080;
    show = argc > 2 && !strcmp(argv[2], "show");
    signal(SIGPIPE, SIG_IGN);
    h2o_config_init(&config);
    config.http1.req_timeout = 300 * 1000;
    config.http2.idle_timeout = 300 * 1000;
    h2o_hostconf_t *host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(path, sizeof *h);
    h->on_req = on_req;
    pthread_barrier_init(&listening, NULL, THREADS + 1);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, serve, NULL);
    pthread_barrier_wait(&listening);
    printf("ready %u\n", port);
    fflush(stdout);
    pthread_join(t[0], NULL);
    return 0;
}
