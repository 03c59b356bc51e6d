#include "cli/bench_cmd.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/run_files.h"
#include "config/config.h"
#include "util/clock.h"
#include "util/parallel.h"

typedef struct {
    detector *d;
    int n;
    double *ms;
    int next;
    pthread_mutex_t mu;
    float *input;
} bench_ctx;

static void bench_worker(void *arg, int caller)
{
    (void)caller;
    bench_ctx *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        int i = b->next < b->n ? b->next++ : -1;
        pthread_mutex_unlock(&b->mu);
        if (i < 0) break;
        /* Each caller uses the shared input read-only: ORT does not write inputs. */
        detector_time_run(b->d, b->input, &b->ms[i]);
    }
}

/* Benchmark support: times n back-to-back Runs on one prepared input, using up
 * to `threads` callers at once; fills the per-Run milliseconds (n entries). */
static int detector_bench_runs(detector *d, int n, int threads, double *ms, double *wall_s)
{
    size_t nin = detector_input_floats(d);
    bench_ctx b = {.d = d, .n = n, .ms = ms, .next = 0, .input = malloc(nin * sizeof(float))};
    if (!b.input) return -1;
    for (size_t i = 0; i < nin; i++) b.input[i] = (float)(i % 251) / 255.0f;
    pthread_mutex_init(&b.mu, NULL);
    double t0 = clock_ms();
    parallel_run(threads, bench_worker, &b);
    *wall_s = (clock_ms() - t0) / 1000.0;
    pthread_mutex_destroy(&b.mu);
    free(b.input);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int bench_ort_command(int argc, char **argv)
{
    sight_config cfg;
    config_defaults(&cfg);
    int runs = 50, threads = 1;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    for (int i = 1; rest && i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--callers") && i + 1 < argc) threads = atoi(argv[++i]);
        else rest[nrest++] = argv[i];
    }
    int pr = rest ? config_parse(&cfg, nrest, rest, 0, "bench-ort") : -1;
    free(rest);
    if (pr != 0 || runs < 1 || threads < 1) {
        fprintf(stderr, "usage: sightd bench-ort [--runs N] [--callers N] [--model PATH] [--ort-threads N] [--ort-concurrency N]\n");
        return pr > 0 ? 0 : 2;
    }
    detector *det = cli_open_detector(&cfg, "bench-ort");
    if (!det) return 1;
    double *ms = calloc((size_t)runs, sizeof *ms), wall = 0;
    if (!ms || detector_bench_runs(det, runs, threads, ms, &wall)) {
        free(ms);
        detector_close(det);
        return 1;
    }
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    printf("{\"model\":\"%s\",\"runs\":%d,\"callers\":%d,\"run_ms_p50\":%.3f,\"run_ms_p95\":%.3f,\"runs_per_s\":%.3f}\n",
           detector_model_name(det), runs, threads, ms[runs / 2], ms[(int)(runs * 0.95) < runs ? (int)(runs * 0.95) : runs - 1],
           runs / wall);
    free(ms);
    detector_close(det);
    return 0;
}
