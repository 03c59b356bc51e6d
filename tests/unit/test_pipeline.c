/* The pipeline with fake stages: the order of a request's lines, a failing
 * stage, cancellation, both ways of shutting down (ending a request's
 * stream, stopping the pipeline with work queued), and a stage's parallel
 * items (sliced detection's tiles) spread over the workers. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "check.h"
#include "pipeline/pipeline.h"

/* A 2x2 grey PNG: every file decodes. */
static const unsigned char PNG[] = "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x02"
                                   "\x00\x00\x00\x02\x08\x02\x00\x00\x00\xfd\xd4\x9a\x73\x00\x00\x00\x0e\x49\x44\x41"
                                   "\x54\x78\x9c\x63\x68\x00\x03\x06\x08\x05\x00\x2a\x0e\x06\x01\x15\x9e\x42\xd7\x00"
                                   "\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool hold;   /* runs wait until it is cleared */
    bool fail;   /* runs fail with "fake_failed" */
    int entered; /* runs started */
} fake;

static int fake_run(void *self, const stage_input *in, json_t **out, sight_error *err)
{
    fake *f = self;
    pthread_mutex_lock(&f->mu);
    int n = ++f->entered;
    pthread_cond_broadcast(&f->cv);
    while (f->hold) pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
    if (f->fail) {
        sight_error_set(err, "fake_failed", "the fake stage failed");
        return -1;
    }
    *out = json_pack("{s:i,s:i}", "run", n, "width", in->image->orig_width);
    return 0;
}

static void fake_init(fake *f, bool hold, bool fail)
{
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->hold = hold;
    f->fail = fail;
    f->entered = 0;
}

static void fake_release(fake *f)
{
    pthread_mutex_lock(&f->mu);
    f->hold = false;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* Waits (up to 10 s) until n runs have started. */
static void fake_wait_entered(fake *f, int n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&f->mu);
    while (f->entered < n && pthread_cond_timedwait(&f->cv, &f->mu, &dl) == 0) {}
    pthread_mutex_unlock(&f->mu);
}

static int fake_entered(fake *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->entered;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static fake yolo_fake, ocr_fake;
static stage yolo_stage = {.name = "yolo", .self = &yolo_fake, .run = fake_run};
static stage ocr_stage = {.name = "ocr", .self = &ocr_fake, .run = fake_run};
static const stage_set STAGES = {.yolo = &yolo_stage, .ocr = &ocr_stage, .llm = NULL, .max_pixels = 1000000};

/* A request of n files; flags: "y" (is_yolo) or "o" (is_ocr) per file. */
static predict_request *request(const char *flags)
{
    size_t n = strlen(flags);
    file_job *files = calloc(n, sizeof *files);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%zu.png", i);
        files[i].filename = strdup(name);
        files[i].filename_len = strlen(name);
        files[i].data = malloc(sizeof PNG - 1);
        memcpy(files[i].data, PNG, sizeof PNG - 1);
        files[i].len = sizeof PNG - 1;
        files[i].is_yolo = flags[i] == 'y';
        files[i].is_ocr = flags[i] == 'o';
    }
    return predict_request_new("test", NULL, NULL, files, n);
}

/* Every line of r's stream up to its end (at most 10 s), parsed. */
static json_t *read_lines(predict_request *r)
{
    event_queue *q = predict_request_events(r);
    char *text = NULL;
    size_t len = 0;
    for (int waits = 0; waits < 100;) {
        char chunk[4096];
        ssize_t n = eq_read(q, chunk, sizeof chunk);
        if (n < 0) break;
        if (n == 0) {
            struct pollfd p = {eq_fd(q), POLLIN, 0};
            if (poll(&p, 1, 100) == 0) waits++;
            continue;
        }
        char *more = realloc(text, len + (size_t)n + 1);
        if (!more) break;
        text = more;
        memcpy(text + len, chunk, (size_t)n);
        len += (size_t)n;
        text[len] = 0;
    }
    json_t *lines = json_array();
    char *save = NULL;
    for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save))
        json_array_append_new(lines, json_loads(l, 0, NULL));
    free(text);
    return lines;
}

/* Checks that the lines are exactly `want`: "processing 0", "done 1",
 * "error 2 code", "complete total succeeded failed". */
static void check_lines(const char *test, json_t *lines, const char *const *want)
{
    size_t n = 0;
    while (want[n]) n++;
    CHECK_EQ_INT(json_array_size(lines), n);
    for (size_t i = 0; i < n && i < json_array_size(lines); i++) {
        json_t *ev = json_array_get(lines, i);
        const char *st = json_string_value(json_object_get(ev, "status"));
        char got[160];
        if (st && !strcmp(st, "complete"))
            snprintf(got, sizeof got, "complete %lld %lld %lld", json_integer_value(json_object_get(ev, "total")),
                     json_integer_value(json_object_get(ev, "succeeded")),
                     json_integer_value(json_object_get(ev, "failed")));
        else if (st && !strcmp(st, "error"))
            snprintf(got, sizeof got, "error %lld %s", json_integer_value(json_object_get(ev, "index")),
                     json_string_value(json_object_get(json_object_get(ev, "error"), "code")));
        else
            snprintf(got, sizeof got, "%s %lld", st ? st : "?", json_integer_value(json_object_get(ev, "index")));
        if (strcmp(got, want[i])) fprintf(stderr, "  %s: line %zu\n", test, i);
        CHECK_STR(got, want[i]);
    }
}

/* One worker: files are taken in request order, each line in its place. */
static void test_order(void)
{
    fake_init(&yolo_fake, false, false);
    pipeline *p = pipeline_start(1, 0, &STAGES, NULL);
    predict_request *r = request("yyy");
    CHECK_EQ_INT(pipeline_submit(p, r), 0);
    json_t *lines = read_lines(r);
    check_lines("order", lines, (const char *const[]){"processing 0", "done 0", "processing 1", "done 1", "processing 2", "done 2", "complete 3 3 0", NULL});
    /* The stage's result is in the done line, the file's name beside it. */
    json_t *done1 = json_array_get(lines, 3);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(json_object_get(done1, "result"), "yolo"), "run")), 2);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(json_object_get(done1, "result"), "yolo"), "width")), 2);
    CHECK_STR(json_string_value(json_object_get(done1, "filename")), "f1.png");
    json_decref(lines);
    predict_request_unref(r);
    pipeline_stop(p);
}

/* A failing stage fails its file only. */
static void test_failing_stage(void)
{
    fake_init(&yolo_fake, false, false);
    fake_init(&ocr_fake, false, true);
    pipeline *p = pipeline_start(1, 0, &STAGES, NULL);
    predict_request *r = request("yoy");
    CHECK_EQ_INT(pipeline_submit(p, r), 0);
    json_t *lines = read_lines(r);
    check_lines("failing", lines, (const char *const[]){"processing 0", "done 0", "processing 1", "error 1 fake_failed", "processing 2", "done 2", "complete 3 2 1", NULL});
    json_t *err = json_object_get(json_array_get(lines, 3), "error");
    CHECK_STR(json_string_value(json_object_get(err, "message")), "the fake stage failed");
    json_decref(lines);
    predict_request_unref(r);
    pipeline_stop(p);
}

/* Cancelled while its first file runs: the rest never run and get no line,
 * and the stream still ends with complete. */
static void test_cancel(void)
{
    fake_init(&yolo_fake, true, false);
    pipeline *p = pipeline_start(1, 0, &STAGES, NULL);
    predict_request *r = request("yyy");
    CHECK_EQ_INT(pipeline_submit(p, r), 0);
    fake_wait_entered(&yolo_fake, 1);
    predict_request_cancel(r);
    fake_release(&yolo_fake);
    json_t *lines = read_lines(r);
    check_lines("cancel", lines, (const char *const[]){"processing 0", "done 0", "complete 3 1 2", NULL});
    CHECK_EQ_INT(fake_entered(&yolo_fake), 1);
    json_decref(lines);
    predict_request_unref(r);
    pipeline_stop(p);
}

/* Shutdown out of patience: the stream ends at once with an error line per
 * unfinished file; the running file's late outcome is dropped. */
static void test_end(void)
{
    fake_init(&yolo_fake, true, false);
    pipeline *p = pipeline_start(1, 0, &STAGES, NULL);
    predict_request *r = request("yy");
    CHECK_EQ_INT(pipeline_submit(p, r), 0);
    fake_wait_entered(&yolo_fake, 1);
    predict_request_end(r, "shutting_down", "the server is shutting down");
    json_t *lines = read_lines(r);
    check_lines("end", lines, (const char *const[]){"processing 0", "error 0 shutting_down", "error 1 shutting_down", "complete 2 0 2", NULL});
    json_decref(lines);
    fake_release(&yolo_fake);
    pipeline_stop(p);
    CHECK_EQ_INT(fake_entered(&yolo_fake), 1);
    /* Nothing more after the end. */
    char buf[64];
    CHECK_EQ_INT(eq_read(predict_request_events(r), buf, sizeof buf), -1);
    predict_request_unref(r);
}

static void *stop_thread(void *p)
{
    pipeline_stop(p);
    return NULL;
}

/* pipeline_stop with files queued: the running one finishes, the queued ones
 * are dropped as cancelled, and the request's stream is complete. */
static void test_stop(void)
{
    fake_init(&yolo_fake, true, false);
    pipeline *p = pipeline_start(1, 0, &STAGES, NULL);
    predict_request *r = request("yyy");
    CHECK_EQ_INT(pipeline_submit(p, r), 0);
    fake_wait_entered(&yolo_fake, 1);
    pthread_t t;
    pthread_create(&t, NULL, stop_thread, p);
    /* Let the stop close the queue before the running file ends. */
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    fake_release(&yolo_fake);
    pthread_join(t, NULL);
    json_t *lines = read_lines(r);
    check_lines("stop", lines, (const char *const[]){"processing 0", "done 0", "complete 3 1 2", NULL});
    CHECK_EQ_INT(fake_entered(&yolo_fake), 1);
    json_decref(lines);
    predict_request_unref(r);
}

/* A stage that fans fan_items items of 50 ms out (stage_input.parallel), as
 * sliced detection does its tiles, and counts how many ran at once. */
static atomic_int fan_now, fan_max, fan_done, fan_items;

static void fan_item(void *arg, size_t i)
{
    (void)arg, (void)i;
    int n = atomic_fetch_add(&fan_now, 1) + 1;
    for (int m = atomic_load(&fan_max); n > m && !atomic_compare_exchange_weak(&fan_max, &m, n);) {}
    nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    atomic_fetch_sub(&fan_now, 1);
    atomic_fetch_add(&fan_done, 1);
}

static int fan_run(void *self, const stage_input *in, json_t **out, sight_error *err)
{
    (void)self, (void)err;
    in->parallel(in->parallel_ctx, (size_t)atomic_load(&fan_items), fan_item, NULL);
    *out = json_object();
    return 0;
}

static void test_parallel_items(void)
{
    static stage fan = {.name = "yolo", .run = fan_run};
    static const stage_set set = {.yolo = &fan, .max_pixels = 1000000};
    /* One file on 4 workers: its items run 4 at once (the file's worker and 3
     * helpers; 400 ms of items leave a late helper time to join). */
    atomic_store(&fan_max, 0), atomic_store(&fan_done, 0), atomic_store(&fan_items, 32);
    pipeline *p = pipeline_start(4, 0, &set, NULL);
    predict_request *r = request("y");
    CHECK_EQ_INT(pipeline_submit(p, r), 0);
    json_t *lines = read_lines(r);
    check_lines("parallel", lines, (const char *const[]){"processing 0", "done 0", "complete 1 1 0", NULL});
    CHECK_EQ_INT(atomic_load(&fan_done), 32);
    CHECK_EQ_INT(atomic_load(&fan_max), 4);
    json_decref(lines);
    predict_request_unref(r);
    pipeline_stop(p);
    /* Every worker busy with a fanning file of its own: no deadlock, each
     * takes its own items when no helper is free. */
    atomic_store(&fan_done, 0), atomic_store(&fan_items, 8);
    p = pipeline_start(2, 0, &set, NULL);
    r = request("yyyyy");
    CHECK_EQ_INT(pipeline_submit(p, r), 0);
    lines = read_lines(r);
    json_t *last = json_array_get(lines, json_array_size(lines) - 1);
    CHECK_STR(json_string_value(json_object_get(last, "status")), "complete");
    CHECK_EQ_INT(json_integer_value(json_object_get(last, "succeeded")), 5);
    CHECK_EQ_INT(atomic_load(&fan_done), 5 * 8);
    json_decref(lines);
    predict_request_unref(r);
    pipeline_stop(p);
}

int main(void)
{
    test_parallel_items();
    test_order();
    test_failing_stage();
    test_cancel();
    test_end();
    test_stop();
    return check_report("pipeline");
}
