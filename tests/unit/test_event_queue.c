/* The per-request event queue: ordering, partial reads, EOF, wake-ups, the
 * events taken as objects, and the accounting of their bytes. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "stream/event_queue.h"
#include "util/json_out.h"

/* An event from JSON text; its line is that text compacted, plus "\n". */
static stream_event ev_of(const char *json)
{
    return (stream_event){.kind = EV_PROGRESS, .index = 0, .obj = json_loads(json, 0, NULL)};
}

/* The bytes an event from that text counts for until it is written. */
static size_t held(const char *json)
{
    json_t *o = json_loads(json, 0, NULL);
    size_t n = json_held_estimate(o);
    json_decref(o);
    return n;
}

/* A 10-byte line ({"s":"a"} and its newline). */
#define TEN "{\"s\":\"a\"}"

static int readable(event_queue *q, int timeout_ms)
{
    struct pollfd p = {eq_fd(q), POLLIN, 0};
    return poll(&p, 1, timeout_ms) == 1;
}

static void test_order_and_partial_reads(void)
{
    event_queue *q = eq_new();
    char buf[64];
    CHECK_EQ_INT(eq_read(q, buf, sizeof buf), 0); /* empty, not closed */
    CHECK(!readable(q, 0));                       /* nothing to wake for */
    eq_push(q, ev_of("{\"a\": 1}"));
    eq_push(q, ev_of("{\"b\": 2}"));
    CHECK(readable(q, 0));
    CHECK_EQ_INT(eq_read(q, buf, 5), 5); /* a line split across reads */
    CHECK(memcmp(buf, "{\"a\":", 5) == 0);
    CHECK_EQ_INT(eq_read(q, buf, sizeof buf), 11); /* rest of a, all of b */
    CHECK(memcmp(buf, "1}\n{\"b\":2}\n", 11) == 0);
    CHECK(!readable(q, 0)); /* eq_read cleared the wake-up */
    eq_close(q);
    CHECK(readable(q, 0));
    CHECK_EQ_INT(eq_read(q, buf, sizeof buf), -1);
    CHECK_EQ_INT(eq_push(q, ev_of("{\"l\":0}")), -1); /* dropped after close */
    CHECK_EQ_INT(eq_bytes_pushed(q), 2 * held("{\"a\":1}"));
    eq_free(q);
}

static void test_close_drains_first(void)
{
    event_queue *q = eq_new();
    eq_push(q, ev_of("{}"));
    eq_close(q);
    char buf[8];
    CHECK_EQ_INT(eq_read(q, buf, sizeof buf), 3);
    CHECK_EQ_INT(eq_read(q, buf, sizeof buf), -1);
    eq_free(q);
}

static void test_free_with_pending_lines(void)
{
    event_queue *q = eq_new();
    CHECK_EQ_INT(eq_push(q, ev_of("{}")), 0);
    CHECK_EQ_INT(eq_push(q, ev_of("[]")), 0);
    char buf[1];
    CHECK_EQ_INT(eq_read(q, buf, 1), 1); /* the first written and part read, the second untouched */
    CHECK_EQ_INT(eq_bytes_pushed(q), held("{}") + held("[]"));
    eq_free(q); /* the unread lines go with it: ASan (make test-asan) fails on a leak */
}

#define PRODUCERS 4
#define LINES 2000

static void *producer(void *arg)
{
    event_queue *q = arg;
    for (int i = 0; i < LINES; i++) eq_push(q, ev_of("{\"s\":\"ab\"}")); /* 11 bytes */
    return NULL;
}

/* A consumer that sleeps in poll() gets every byte from concurrent producers,
 * and each wake-up is earned: eq_read clears the descriptor, so there are never
 * more wake-ups than pushes (a descriptor left readable would spin here). */
static void test_concurrent_producers(void)
{
    event_queue *q = eq_new();
    char buf[4096];
    CHECK_EQ_INT(eq_read(q, buf, sizeof buf), 0); /* empty before any producer runs */
    pthread_t t[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) pthread_create(&t[i], NULL, producer, q);
    size_t total = 0;
    int wakeups = 0;
    while (total < (size_t)PRODUCERS * LINES * 11) {
        if (!readable(q, 5000)) {
            CHECK(!"woken within 5 s");
            break;
        }
        wakeups++;
        for (ssize_t n; (n = eq_read(q, buf, sizeof buf)) > 0;) total += (size_t)n;
    }
    for (int i = 0; i < PRODUCERS; i++) pthread_join(t[i], NULL);
    CHECK_EQ_INT(total, PRODUCERS * LINES * 11);
    CHECK(wakeups >= 1);
    CHECK(wakeups <= PRODUCERS * LINES);
    eq_free(q);
}

/* Progress lines are refused once the unread bytes would pass the limit;
 * reading makes room again; ordinary lines are never refused. */
static void test_progress_dropped_when_behind(void)
{
    event_queue *q = eq_new();
    char buf[64];
    size_t c = held("{\"s\":\"ab\"}"), d = held("[1]"), limit = c + c / 2;
    CHECK(d + 3 + c <= limit);                                                 /* what the last push below relies on */
    CHECK_EQ_INT(eq_push_unless_behind(q, ev_of("{\"s\":\"ab\"}"), limit), 0); /* an 11-byte line */
    CHECK_EQ_INT(eq_push_unless_behind(q, ev_of("{\"s\":\"xy\"}"), limit), 1); /* 2c > limit */
    CHECK_EQ_INT(eq_push(q, ev_of("[1]")), 0);                                 /* never refused */
    CHECK_EQ_INT(eq_read(q, buf, 8), 8);                                       /* the first line written: 3 bytes of it left, and d */
    CHECK_EQ_INT(eq_queued(q), 3 + d);
    CHECK_EQ_INT(eq_push_unless_behind(q, ev_of("{\"s\":\"cd\"}"), limit), 0); /* 3 + d + c <= limit */
    CHECK_EQ_INT(eq_read(q, buf, sizeof buf), 18);
    CHECK(memcmp(buf, "\"}\n[1]\n{\"s\":\"cd\"}\n", 18) == 0);
    CHECK_EQ_INT(eq_bytes_pushed(q), 2 * c + d); /* the dropped event was never pushed */
    eq_close(q);
    CHECK_EQ_INT(eq_push_unless_behind(q, ev_of("{}"), 100), -1);
    eq_free(q);
}

static void count_call(void *arg) { (*(int *)arg)++; }

/* Back-pressure: eq_over says when the reader is behind, and the room
 * callback runs once, on the read that brings the queue down to resume_at. */
static void test_room_callback(void)
{
    event_queue *q = eq_new();
    int calls = 0;
    eq_on_room(q, count_call, &calls);
    size_t all0 = eq_queued_all();
    size_t c = held(TEN);
    for (int i = 0; i < 10; i++) eq_push(q, ev_of(TEN));
    CHECK_EQ_INT(eq_queued(q), 10 * c);
    CHECK_EQ_INT(eq_queued_all(), all0 + 10 * c);
    CHECK(!eq_over(q, 10 * c, 5 * c)); /* at the limit is not over it */
    CHECK(eq_over(q, 10 * c - 1, 5 * c));
    CHECK(eq_over(q, 10 * c - 1, 3 * c)); /* the lower mark wins */
    char buf[64];
    CHECK_EQ_INT(eq_read(q, buf, 40), 40); /* four lines: six events left */
    CHECK_EQ_INT(calls, 0);
    CHECK_EQ_INT(eq_read(q, buf, 25), 25); /* 5 bytes of a line and three events left: above 3c */
    CHECK_EQ_INT(eq_queued(q), 3 * c + 5);
    CHECK_EQ_INT(calls, 0);
    CHECK_EQ_INT(eq_read(q, buf, 5), 5); /* 3c left */
    CHECK_EQ_INT(calls, 1);
    CHECK_EQ_INT(eq_read(q, buf, 5), 5); /* once only */
    CHECK_EQ_INT(calls, 1);
    eq_free(q); /* with bytes unread: the process total forgets them */
    CHECK_EQ_INT(eq_queued_all(), all0);
}

/* This thread's voluntary context switches so far (Linux): a thread asleep
 * on a condition adds one per wake-up, a polling one one per poll. */
static long voluntary_switches(void)
{
    FILE *f = fopen("/proc/thread-self/status", "r");
    char l[256];
    long v = -1;
    while (f && fgets(l, sizeof l, f))
        if (sscanf(l, "voluntary_ctxt_switches: %ld", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct {
    event_queue *q;
    size_t limit;
    atomic_int rc; /* eq_wait_room's answer; 2 while it waits */
    long switches; /* the waiter's context switches during the wait */
} room_wait;

static void *room_waiter(void *arg)
{
    room_wait *w = arg;
    long before = voluntary_switches();
    int rc = eq_wait_room(w->q, w->limit);
    w->switches = voluntary_switches() - before;
    atomic_store(&w->rc, rc);
    return NULL;
}

static bool returns_within(room_wait *w, int ms)
{
    for (int i = 0; i < ms && atomic_load(&w->rc) == 2; i++) sleep_ms(1);
    return atomic_load(&w->rc) != 2;
}

static void start_wait(room_wait *w, pthread_t *t, event_queue *q, size_t limit)
{
    *w = (room_wait){.q = q, .limit = limit, .rc = 2};
    pthread_create(t, NULL, room_waiter, w);
}

/* A producer over the limit sleeps until a read makes room: reads that leave
 * it over do not release it, the one that brings the queue to the limit does,
 * and in all that time it woke only for those reads (no polling). */
static void test_wait_room(void)
{
    event_queue *q = eq_new();
    char buf[64];
    size_t c = held(TEN);
    CHECK_EQ_INT(eq_wait_room(q, 10 * c), 0); /* room already: no wait */
    for (int i = 0; i < 20; i++) eq_push(q, ev_of(TEN));
    room_wait w;
    pthread_t t;
    start_wait(&w, &t, q, 10 * c);
    sleep_ms(300);
    CHECK_EQ_INT(atomic_load(&w.rc), 2);   /* 20c queued: still waiting */
    CHECK_EQ_INT(eq_read(q, buf, 60), 60); /* six lines read, 14c left: over */
    sleep_ms(100);
    CHECK_EQ_INT(atomic_load(&w.rc), 2);
    CHECK_EQ_INT(eq_read(q, buf, 40), 40); /* 10c left: room */
    CHECK(returns_within(&w, 2000));
    pthread_join(t, NULL);
    CHECK_EQ_INT(atomic_load(&w.rc), 0);
    /* 400 ms asleep: a 2 ms poll would have switched ~200 times. */
    CHECK(w.switches >= 0 && w.switches <= 10);
    eq_free(q);
}

/* Stopping the waits (a cancelled request) releases a blocked producer at
 * once and keeps later waits from blocking; so does closing the queue. */
static void test_wait_room_stopped(void)
{
    event_queue *q = eq_new();
    size_t c = held(TEN);
    for (int i = 0; i < 20; i++) eq_push(q, ev_of(TEN));
    room_wait w;
    pthread_t t;
    start_wait(&w, &t, q, 10 * c);
    sleep_ms(100);
    CHECK_EQ_INT(atomic_load(&w.rc), 2);
    eq_stop_waits(q);
    CHECK(returns_within(&w, 2000));
    pthread_join(t, NULL);
    CHECK_EQ_INT(atomic_load(&w.rc), -1);
    CHECK_EQ_INT(eq_wait_room(q, 10 * c), -1); /* stopped for good */
    CHECK_EQ_INT(eq_queued(q), 20 * c);        /* nothing was read or dropped */
    eq_free(q);

    q = eq_new();
    for (int i = 0; i < 20; i++) eq_push(q, ev_of(TEN));
    start_wait(&w, &t, q, 10 * c);
    sleep_ms(100);
    CHECK_EQ_INT(atomic_load(&w.rc), 2);
    eq_close(q);
    CHECK(returns_within(&w, 2000));
    pthread_join(t, NULL);
    CHECK_EQ_INT(atomic_load(&w.rc), -1);
    eq_free(q);
}

/* Taken events come out as pushed (header and object, in order); the bytes
 * they were counted for go with them, and the reader's room callback runs. */
static void test_take(void)
{
    event_queue *q = eq_new();
    int calls = 0;
    eq_on_room(q, count_call, &calls);
    size_t all0 = eq_queued_all();
    stream_event ev;
    CHECK_EQ_INT(eq_take(q, &ev), 0);
    json_t *done = json_pack("{s:s,s:i}", "status", "done", "index", 1);
    size_t c = json_held_estimate(done), e = held("{}");
    eq_push(q, (stream_event){.kind = EV_DONE, .index = 1, .obj = done});
    eq_push(q, (stream_event){.kind = EV_END, .end = END_LEDGER_UNAVAILABLE, .index = EV_NO_FILE, .obj = json_object()});
    CHECK(readable(q, 0));
    CHECK_EQ_INT(eq_queued(q), c + e);
    CHECK(eq_over(q, c, e));
    CHECK_EQ_INT(eq_take(q, &ev), 1);
    CHECK(ev.kind == EV_DONE && ev.index == 1 && ev.obj == done); /* the object itself, not a copy */
    json_decref(ev.obj);
    CHECK(!readable(q, 0)); /* eq_take cleared the wake-up */
    CHECK_EQ_INT(eq_queued(q), e);
    CHECK_EQ_INT(calls, 1);
    eq_close(q);
    CHECK_EQ_INT(eq_take(q, &ev), 1);
    CHECK(ev.kind == EV_END && ev.end == END_LEDGER_UNAVAILABLE && ev.index == EV_NO_FILE);
    json_decref(ev.obj);
    CHECK_EQ_INT(eq_take(q, &ev), -1);
    CHECK_EQ_INT(eq_queued(q), 0);
    CHECK_EQ_INT(eq_queued_all(), all0);
    eq_free(q);
}

/* An event is written once, when a read reaches it, as json_line writes it;
 * until then it counts as what its objects hold, then as its line's length. */
static void test_written_when_read(void)
{
    event_queue *q = eq_new();
    size_t all0 = eq_queued_all();
    /* Reals, an escape, a line separator (written escaped). */
    json_t *obj = json_pack("{s:s,s:f,s:[f,f],s:s}", "status", "frame", "t", 0.1, "box", 1234.5678, 1.0 / 3.0, "text",
                            "a\"b\xE2\x80\xA8"
                            "c");
    size_t want_len;
    char *want = json_line(json_incref(obj), &want_len);
    size_t estimate = json_held_estimate(obj);
    CHECK(estimate > want_len); /* the object takes more than its line */
    eq_push(q, (stream_event){.kind = EV_FRAME, .obj = obj});
    CHECK_EQ_INT(eq_queued(q), estimate);
    CHECK_EQ_INT(eq_queued_all(), all0 + estimate);
    char buf[256];
    CHECK_EQ_INT(eq_read(q, buf, 4), 4);
    CHECK_EQ_INT(eq_queued(q), want_len - 4); /* exact once written */
    CHECK_EQ_INT(eq_queued_all(), all0 + want_len - 4);
    CHECK_EQ_INT(eq_read(q, buf + 4, sizeof buf - 4), (ssize_t)want_len - 4);
    CHECK(memcmp(buf, want, want_len) == 0);
    CHECK(memcmp(want, "{\"status\":\"frame\",\"t\":0.1,\"box\":[1234.568,0.3333333],\"text\":\"a\\\"b\\u2028c\"}\n", want_len) == 0);
    CHECK_EQ_INT(eq_queued(q), 0);
    CHECK_EQ_INT(eq_queued_all(), all0);
    free(want);
    eq_free(q);
}

/* A stream's reader that is behind: past 64 KiB of unread events, each new
 * one is written at push, so it counts as its line, not its objects; the
 * bytes read are the same. */
static void test_written_at_push_when_behind(void)
{
    event_queue *q = eq_new();
    eq_for_stream(q);
    json_t *proto = json_array();
    for (int i = 0; i < 200; i++) json_array_append_new(proto, json_pack("{s:i,s:f,s:s}", "x", i, "c", 0.5, "l", "car"));
    size_t line_len;
    char *line = json_line(json_pack("{s:s,s:O}", "status", "done", "boxes", proto), &line_len);
    json_t *one = json_pack("{s:s,s:O}", "status", "done", "boxes", proto);
    size_t estimate = json_held_estimate(one);
    json_decref(one);
    CHECK(estimate > 4 * line_len); /* objects hold several times their line */
    for (int i = 0; i < 40; i++) eq_push(q, (stream_event){.kind = EV_DONE, .obj = json_pack("{s:s,s:O}", "status", "done", "boxes", proto)});
    /* At most 64 KiB of it is objects; the rest is its lines. */
    CHECK(eq_queued(q) <= 64 * 1024 + 40 * line_len);
    CHECK(eq_queued(q) < 40 * estimate / 2);
    char *buf = malloc(40 * line_len + 1);
    size_t got = 0;
    ssize_t n;
    while ((n = eq_read(q, buf + got, 40 * line_len + 1 - got)) > 0) got += (size_t)n;
    CHECK_EQ_INT(got, 40 * line_len);
    for (int i = 0; i < 40; i++) CHECK(memcmp(buf + (size_t)i * line_len, line, line_len) == 0);
    CHECK_EQ_INT(eq_queued(q), 0);
    free(buf);
    free(line);
    json_decref(proto);
    eq_free(q);
}

int main(void)
{
    test_written_at_push_when_behind();
    test_take();
    test_written_when_read();
    test_wait_room();
    test_wait_room_stopped();
    test_room_callback();
    test_progress_dropped_when_behind();
    test_order_and_partial_reads();
    test_close_drains_first();
    test_free_with_pending_lines();
    test_concurrent_producers();
    return check_report("event_queue");
}
