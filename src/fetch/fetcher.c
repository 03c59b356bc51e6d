#include "fetch/fetcher.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch/addr_policy.h"
#include "metrics/metrics.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"

typedef struct transfer {
    struct transfer *next; /* in the pending list */
    struct fetcher *f;
    CURL *easy;
    char *url;
    buf body; /* capped at the configured max_bytes */
    bool too_large, blocked;
    const atomic_bool *cancelled;
    fetch_done_fn done;
    void *ctx;
    double t0; /* when it was added (clock_s) */
    char errbuf[CURL_ERROR_SIZE];
} transfer;

struct fetcher {
    fetch_config cfg;
    char *allow_copy, *resolve_copy;
    addr_policy *policy;
    struct curl_slist *resolve;
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t mu;
    transfer *pending; /* added, not yet in the multi handle */
    transfer *active;  /* in the multi handle (the fetcher thread's own list) */
    bool stopping;
};


static void fail_now(fetch_done_fn done, void *ctx, const char *code, const char *msg)
{
    sight_error e;
    sight_error_set(&e, code, "%s", msg);
    done(ctx, NULL, 0, &e);
}

char *fetch_filename_from_url(const char *url)
{
    CURLU *u = curl_url();
    char *path = NULL, *host = NULL, *out = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE);
        curl_url_get(u, CURLUPART_HOST, &host, 0);
    }
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : path;
    if (base && *base) out = strdup(base);
    else if (host) out = strdup(host);
    else out = strdup("image");
    curl_free(path);
    curl_free(host);
    curl_url_cleanup(u);
    return out;
}

/* data:image/...;base64,.... */
static void fetch_data_url(fetcher *f, const char *url, fetch_done_fn done, void *ctx)
{
    const char *comma = strchr(url, ',');
    if (strncasecmp(url, "data:image/", 11) || !comma || comma - url < 18 || strncasecmp(comma - 7, ";base64", 7)) {
        fail_now(done, ctx, "url_forbidden", "only data:image/...;base64, URLs are accepted inline");
        return;
    }
    const char *b64 = comma + 1;
    size_t n = strlen(b64);
    if ((int64_t)(n / 4 * 3) > f->cfg.max_bytes) {
        fail_now(done, ctx, "url_too_large", "the inline image is over the size limit");
        return;
    }
    if (n % 4 != 0) {
        fail_now(done, ctx, "url_invalid", "the data: URL is not valid base64");
        return;
    }
    uint8_t *out = malloc(n / 4 * 3 + 1);
    if (!out) {
        fail_now(done, ctx, "out_of_memory", "out of memory");
        return;
    }
    int len = n ? EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n) : 0;
    if (len < 0) {
        free(out);
        fail_now(done, ctx, "url_invalid", "the data: URL is not valid base64");
        return;
    }
    /* EVP_DecodeBlock counts padding as data; drop the zero bytes it stands for. */
    if (n >= 1 && b64[n - 1] == '=') len--;
    if (n >= 2 && b64[n - 2] == '=') len--;
    done(ctx, out, (size_t)len, NULL);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    transfer *t = userp;
    size_t n = size * nmemb;
    int rc = buf_add(&t->body, data, n);
    if (rc == BUF_TOO_BIG) t->too_large = true; /* also without a Content-Length: stop reading now */
    return rc == BUF_OK ? n : 0;
}

static int on_progress(void *clientp, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    transfer *t = clientp;
    return t->cancelled && atomic_load(t->cancelled) ? 1 : 0;
}

/* The SSRF gate: curl calls this for every connection it opens, with the
 * address it resolved, on the first request and on every redirect. */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    transfer *t = clientp;
    char *url = NULL, *host = NULL;
    curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &url);
    CURLU *u = curl_url();
    if (u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) curl_url_get(u, CURLUPART_HOST, &host, 0);
    bool ok = addr_policy_permits(t->f->policy, &a->addr, host);
    curl_free(host);
    curl_url_cleanup(u);
    if (!ok) {
        t->blocked = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static void finish(transfer *t, CURLcode rc)
{
    sight_error e;
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    const char *what = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
    bool ok = false;
    if (t->blocked) sight_error_set(&e, "url_forbidden", "the URL leads to an address that is not publicly routable");
    else if (t->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        sight_error_set(&e, "url_too_large", "the image at the URL is over the %lld byte limit", (long long)t->f->cfg.max_bytes);
    else if (rc == CURLE_ABORTED_BY_CALLBACK) sight_error_set(&e, "cancelled", "request cancelled");
    else if (rc == CURLE_OPERATION_TIMEDOUT) sight_error_set(&e, "url_timeout", "fetching the URL took too long: %s", what);
    else if (rc == CURLE_UNSUPPORTED_PROTOCOL) sight_error_set(&e, "url_forbidden", "only http and https URLs are fetched: %s", what);
    else if (rc == CURLE_TOO_MANY_REDIRECTS) sight_error_set(&e, "url_too_many_redirects", "more than %d redirects", t->f->cfg.max_redirects);
    else if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT)
        sight_error_set(&e, "url_unreachable", "cannot reach the URL: %s", what);
    else if (rc != CURLE_OK) sight_error_set(&e, "url_fetch_failed", "fetching the URL failed: %s", what);
    else if (status < 200 || status > 299) sight_error_set(&e, "url_http_status", "the URL answered HTTP %ld", status);
    else ok = true;
    metrics_fetch_outcome fo = FETCH_OK;
    if (!ok) fo = strcmp(e.code, "cancelled") ? FETCH_ERROR : FETCH_CANCELLED;
    metrics_fetch(fo, clock_s() - t->t0);
    if (ok) {
        size_t len = t->body.len;
        t->done(t->ctx, t->body.data ? (uint8_t *)buf_take(&t->body, NULL) : NULL, len, NULL);
    } else {
        t->done(t->ctx, NULL, 0, &e);
    }
}

static void transfer_free(transfer *t)
{
    if (t->easy) curl_easy_cleanup(t->easy);
    buf_free(&t->body);
    free(t->url);
    free(t);
}

static void unlink_active(fetcher *f, transfer *t)
{
    for (transfer **pp = &f->active; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            return;
        }
}

static void *run(void *arg)
{
    fetcher *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        transfer *add = f->pending;
        f->pending = NULL;
        bool stop = f->stopping;
        pthread_mutex_unlock(&f->mu);
        for (transfer *t = add, *n; t; t = n) {
            n = t->next;
            if (curl_multi_add_handle(f->multi, t->easy) != CURLM_OK) {
                finish(t, CURLE_FAILED_INIT);
                transfer_free(t);
                continue;
            }
            t->next = f->active;
            f->active = t;
        }
        if (stop) {
            /* Shutting down: whatever is still in flight ends as cancelled. */
            while (f->active) {
                transfer *t = f->active;
                f->active = t->next;
                curl_multi_remove_handle(f->multi, t->easy);
                finish(t, CURLE_ABORTED_BY_CALLBACK);
                transfer_free(t);
            }
            break;
        }
        int running = 0;
        curl_multi_perform(f->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(f->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            transfer *t = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            CURLcode rc = m->data.result;
            curl_multi_remove_handle(f->multi, t->easy);
            unlink_active(f, t);
            finish(t, rc);
            transfer_free(t);
        }
        /* Sleeps until a socket is ready, a timer is due or fetcher_add wakes us. */
        curl_multi_poll(f->multi, NULL, 0, 1000, NULL);
    }
    return NULL;
}

fetcher *fetcher_start(const fetch_config *cfg, char *err, size_t err_len)
{
    fetcher *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->cfg = *cfg;
    f->policy = addr_policy_new(cfg->allow, err, err_len);
    if (!f->policy) {
        free(f);
        return NULL;
    }
    if (cfg->resolve && *cfg->resolve) {
        char *copy = strdup(cfg->resolve), *save = NULL;
        for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save))
            f->resolve = curl_slist_append(f->resolve, tok);
        free(copy);
    }
    f->multi = curl_multi_init();
    pthread_mutex_init(&f->mu, NULL);
    if (!f->multi || pthread_create(&f->thread, NULL, run, f) != 0) {
        snprintf(err, err_len, "cannot start the URL fetcher");
        if (f->multi) curl_multi_cleanup(f->multi);
        pthread_mutex_destroy(&f->mu);
        addr_policy_free(f->policy);
        curl_slist_free_all(f->resolve);
        free(f);
        return NULL;
    }
    return f;
}

void fetcher_stop(fetcher *f)
{
    if (!f) return;
    pthread_mutex_lock(&f->mu);
    f->stopping = true;
    pthread_mutex_unlock(&f->mu);
    curl_multi_wakeup(f->multi);
    pthread_join(f->thread, NULL);
    /* Adds that raced with the stop. */
    for (transfer *t = f->pending, *n; t; t = n) {
        n = t->next;
        finish(t, CURLE_ABORTED_BY_CALLBACK);
        transfer_free(t);
    }
    curl_multi_cleanup(f->multi);
    curl_slist_free_all(f->resolve);
    addr_policy_free(f->policy);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void fetcher_add(fetcher *f, const char *url, const atomic_bool *cancelled, fetch_done_fn done, void *ctx)
{
    if (!strncasecmp(url, "data:", 5)) {
        fetch_data_url(f, url, done, ctx);
        return;
    }
    /* The scheme is checked here, before curl sees the URL; redirects are held
     * to the same schemes by CURLOPT_REDIR_PROTOCOLS_STR. */
    CURLU *u = curl_url();
    char *scheme = NULL;
    CURLUcode uc = u ? curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) : CURLUE_OUT_OF_MEMORY;
    if (uc == CURLUE_OK) curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_cleanup(u);
    if (uc != CURLUE_OK || !scheme) {
        curl_free(scheme);
        fail_now(done, ctx, "url_invalid", "image_url is not a valid URL");
        return;
    }
    bool https = !strcasecmp(scheme, "https"), http = !strcasecmp(scheme, "http");
    curl_free(scheme);
    if (!https && !(http && f->cfg.allow_http)) {
        fail_now(done, ctx, "url_forbidden", f->cfg.allow_http ? "only http, https and data:image URLs are fetched" : "only https and data:image URLs are fetched");
        return;
    }
    transfer *t = calloc(1, sizeof *t);
    if (t) t->easy = curl_easy_init();
    if (t) t->url = strdup(url);
    if (!t || !t->easy || !t->url) {
        if (t) transfer_free(t);
        fail_now(done, ctx, "out_of_memory", "out of memory");
        return;
    }
    t->f = f;
    buf_init(&t->body, (size_t)f->cfg.max_bytes);
    t->cancelled = cancelled;
    t->done = done;
    t->ctx = ctx;
    t->t0 = clock_s();
    const char *protos = f->cfg.allow_http ? "http,https" : "https";
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, protos);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, protos);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)f->cfg.max_redirects);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never through an environment proxy */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)f->cfg.connect_timeout_s);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)f->cfg.timeout_s);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->cfg.max_bytes);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "sightd/" SIGHT_VERSION);
    if (f->resolve) curl_easy_setopt(e, CURLOPT_RESOLVE, f->resolve);
    pthread_mutex_lock(&f->mu);
    t->next = f->pending;
    f->pending = t;
    pthread_mutex_unlock(&f->mu);
    curl_multi_wakeup(f->multi);
}
