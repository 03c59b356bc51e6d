/* The webhook sender (webhook_sender.h): a ticker chore on the work queue. */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "fetch/addr_policy.h"
#include "jobs/webhook_sender.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#define BATCH 8
#define HOLD_MS 60000 /* a claimed message is not tried by another node meanwhile */
#define TIMEOUT_S 10
#define GIVE_UP_S 86400
#define MAX_BACKOFF_S 3600
#define IDLE_MS 250

struct webhook_sender {
    job_store *js;
    addr_policy *policy;
    bool allow_http;
    atomic_bool stop;
    ticker *tk;
    tk_chore *chore;
};

int webhook_sign(const char *secret, const char *id, long long timestamp, const char *body, char *out, size_t out_len)
{
    if (!secret || strncmp(secret, "whsec_", 6)) return -1;
    const char *b64 = secret + 6;
    size_t n = strlen(b64);
    if (n == 0 || n % 4 || n > 256) return -1;
    unsigned char key[200];
    int klen = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)n);
    if (klen <= 0) return -1;
    klen -= (n >= 1 && b64[n - 1] == '=') + (n >= 2 && b64[n - 2] == '='); /* DecodeBlock counts the padding */
    if (klen <= 0) return -1;
    if (!body) return 0;
    char head[128];
    int hl = snprintf(head, sizeof head, "%s.%lld.", id, timestamp);
    size_t blen = strlen(body);
    unsigned char *msg = malloc((size_t)hl + blen);
    if (!msg) return -1;
    memcpy(msg, head, (size_t)hl);
    memcpy(msg + hl, body, blen);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    bool ok = HMAC(EVP_sha256(), key, klen, msg, (size_t)hl + blen, mac, &mlen) != NULL;
    free(msg);
    if (!ok || out_len < 4 + 4 * ((mlen + 2) / 3) + 1) return -1;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mlen);
    return 0;
}

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    const addr_policy *p = clientp;
    /* The host name is for allowlisted names; the check is on the address. */
    if (!addr_policy_permits(p, &a->addr, NULL)) return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype, a->protocol);
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

/* One attempt: the HTTP status, or 0 when there was no answer. */
static long deliver(webhook_sender *w, const job_webhook *m)
{
    long long ts = (long long)time(NULL);
    char sig[128], h_id[80], h_ts[64], h_sig[160];
    if (webhook_sign(m->secret, m->id, ts, m->body, sig, sizeof sig)) return 0;
    snprintf(h_id, sizeof h_id, "webhook-id: %s", m->id);
    snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", ts);
    snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, h_id);
    h = curl_slist_append(h, h_ts);
    h = curl_slist_append(h, h_sig);
    long status = 0;
    if (e && h) {
        const char *protos = w->allow_http ? "http,https" : "https";
        curl_easy_setopt(e, CURLOPT_URL, m->url);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, protos);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, m->body);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, w->policy);
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)TIMEOUT_S);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        if (curl_easy_perform(e) == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return status;
}

/* The ticker's chore, every IDLE_MS on the work queue (one run at a time):
 * sends what is due, batch after batch while there is any, so a burst is
 * not paced by the tick. One delivery may hold a work-queue thread for up
 * to TIMEOUT_S. */
static void send_due(void *arg)
{
    webhook_sender *w = arg;
    while (!atomic_load(&w->stop)) {
        job_webhook *msgs = NULL;
        size_t n = 0;
        if (job_store_webhooks_due(w->js, BATCH, HOLD_MS, &msgs, &n) == 0) {
            for (size_t i = 0; i < n; i++) {
                job_webhook *m = &msgs[i];
                long status = atomic_load(&w->stop) ? 0 : deliver(w, m);
                bool ok = status >= 200 && status < 300;
                int64_t wait_s = 1LL << (m->attempts - 1 < 12 ? m->attempts - 1 : 12);
                if (wait_s > MAX_BACKOFF_S) wait_s = MAX_BACKOFF_S;
                bool give_up = !ok && (int64_t)time(NULL) + wait_s - m->created_at > GIVE_UP_S;
                if (!ok)
                    log_warn("jobs: webhook %s to a job's URL %s (attempt %lld)%s", m->id,
                             status ? "was answered with a non-2xx status" : "got no answer", (long long)m->attempts,
                             give_up ? "; giving up after a day" : "; retrying");
                job_store_webhook_after(w->js, m->id, ok, give_up, clock_unix_ms() + wait_s * 1000);
                job_webhook_clear(m);
            }
            free(msgs);
        }
        if (!n) break;
    }
}

webhook_sender *webhook_sender_start(job_store *js, const char *allow, bool allow_http, ticker *tk, char *err,
                                     size_t err_len)
{
    webhook_sender *w = calloc(1, sizeof *w);
    if (!w) {
        err_printf(err, err_len, "out of memory");
        return NULL;
    }
    w->js = js;
    w->allow_http = allow_http;
    if (!(w->policy = addr_policy_new(allow, err, err_len))) {
        free(w);
        return NULL;
    }
    w->tk = tk;
    if (!(w->chore = ticker_add(tk, IDLE_MS / 1000.0, true, send_due, w))) {
        err_printf(err, err_len, "out of memory");
        addr_policy_free(w->policy);
        free(w);
        return NULL;
    }
    return w;
}

void webhook_sender_stop(webhook_sender *w)
{
    if (!w) return;
    atomic_store(&w->stop, true); /* a run in progress ends after its current delivery */
    ticker_remove(w->tk, w->chore);
    addr_policy_free(w->policy);
    free(w);
}
