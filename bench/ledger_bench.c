/* The usage ledger's commit latency on a key store (a SQLite path or a
 * PostgreSQL URL): THREADS callers each commit N rows through ledger_commit,
 * one after another, as requests do when they end. With one caller that is
 * one transaction per row; with several, the writer groups them.
 * Prints one JSON line: p50/p95/max ms per commit and commits/s.
 * Usage: ledger_bench DB THREADS N */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/keystore.h"
#include "limits/ledger.h"
#include "util/clock.h"

typedef struct {
    ledger *lg;
    int64_t key_id;
    int n;
    double *ms;
} worker;

static void *run(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < w->n; i++) {
        usage_row r = {.key_id = w->key_id, .requests = 1, .files = 1, .succeeded = 1, .megapixels = 0.3, .bytes_in = 1000};
        strcpy(r.day, "2026-01-01");
        double t = clock_ms();
        if (ledger_commit(w->lg, &r) != 0) {
            fprintf(stderr, "ledger_bench: a commit failed\n");
            exit(1);
        }
        w->ms[i] = clock_ms() - t;
    }
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: ledger_bench DB THREADS N\n");
        return 2;
    }
    int threads = atoi(argv[2]), n = atoi(argv[3]);
    if (threads < 1 || threads > 256 || n < 1) return 2;
    char err[512];
    keystore *ks = keystore_open(argv[1], err, sizeof err);
    if (!ks) {
        fprintf(stderr, "ledger_bench: %s\n", err);
        return 1;
    }
    char key[KEYSTORE_KEY_MAX + 1];
    int64_t id;
    if (keystore_create(ks, "ledger-bench", key, sizeof key, &id) != 0) return 1;
    ledger *lg = ledger_start(ks, 30);
    worker *w = calloc((size_t)threads, sizeof *w);
    double *ms = calloc((size_t)threads * (size_t)n, sizeof *ms);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    if (!lg || !w || !ms || !th) return 1;
    double t0 = clock_ms();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){lg, id, n, ms + (size_t)i * (size_t)n};
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    double wall = clock_ms() - t0;
    size_t total = (size_t)threads * (size_t)n;
    qsort(ms, total, sizeof *ms, cmp);
    printf("{\"threads\": %d, \"commits\": %zu, \"p50_ms\": %.3f, \"p95_ms\": %.3f, \"max_ms\": %.3f, "
           "\"commits_per_s\": %.1f}\n",
           threads, total, ms[total / 2], ms[total * 95 / 100], ms[total - 1], (double)total / (wall / 1000));
    ledger_stop(lg);
    keystore_close(ks);
    free(w);
    free(ms);
    free(th);
    return 0;
}
