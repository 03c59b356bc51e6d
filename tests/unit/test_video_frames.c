/* A video's frame lines and back-pressure: preq_emit_frame never drops a
 * line, waits while the client is more than 256 KiB behind (the decoder with
 * it), goes on as the client reads, and stops waiting when the request is
 * cancelled. Also the video sniffing: ISO BMFF with an image's brand stays an
 * image. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "pipeline/request_internal.h"
#include "video/video_decode.h"

#define LINES 1000
#define PAD 1024

static atomic_int emitted;

static void *producer(void *arg)
{
    emit_ctx *ec = arg;
    char pad[PAD];
    memset(pad, 'x', sizeof pad - 1);
    pad[PAD - 1] = 0;
    for (int i = 0; i < LINES; i++) {
        preq_emit_frame(ec, json_pack("{s:s,s:i,s:s}", "status", "frame", "frame", i, "pad", pad));
        atomic_fetch_add(&emitted, 1);
    }
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static predict_request *one_file_request(void)
{
    file_job *files = calloc(1, sizeof *files);
    files[0].filename = strdup("v.mp4");
    files[0].filename_len = 5;
    return predict_request_new("test", NULL, NULL, files, 1);
}

static void test_backpressure(void)
{
    predict_request *r = one_file_request();
    emit_ctx ec = {r, 0, false};
    atomic_store(&emitted, 0);
    pthread_t t;
    pthread_create(&t, NULL, producer, &ec);
    sleep_ms(300);
    /* Nobody reads: the producer waits with ~256 KiB queued. */
    int stalled = atomic_load(&emitted);
    size_t queued = eq_queued(predict_request_events(r));
    CHECK(stalled < LINES);
    CHECK(queued >= (256u << 10) && queued < (256u << 10) + 2 * PAD);
    sleep_ms(100);
    CHECK_EQ_INT(atomic_load(&emitted), stalled);
    /* The client reads: every line arrives, in order. */
    /* Everything read is kept, so a line split between two reads is parsed whole. */
    size_t cap = (size_t)LINES * PAD * 2, got = 0;
    char *buf = malloc(cap + 1);
    int lines = 0, next = 0;
    bool ordered = true;
    while (atomic_load(&emitted) < LINES || eq_queued(predict_request_events(r)) > 0) {
        size_t room = cap - got < (1 << 16) ? cap - got : (1 << 16);
        ssize_t n = room ? eq_read(predict_request_events(r), buf + got, room) : -1;
        if (n <= 0) {
            if (!room) break;
            sleep_ms(1);
            continue;
        }
        got += (size_t)n;
    }
    pthread_join(t, NULL);
    buf[got] = 0;
    for (size_t i = 0; i < got; i++) lines += buf[i] == '\n';
    /* Frame numbers appear in order ("frame":N). */
    for (char *p = buf; (p = strstr(p, "\"frame\":")); p += 8) {
        ordered &= atoi(p + 8) == next;
        next++;
    }
    free(buf);
    CHECK_EQ_INT(lines, LINES);
    CHECK(ordered);
    CHECK(got > (size_t)LINES * PAD);
    /* A cancelled request stops the wait at once. */
    atomic_store(&emitted, 0);
    pthread_create(&t, NULL, producer, &ec);
    sleep_ms(200);
    CHECK(atomic_load(&emitted) < LINES);
    predict_request_cancel(r);
    pthread_join(t, NULL);
    CHECK_EQ_INT(atomic_load(&emitted), LINES);
    predict_request_unref(r);
}

static void test_sniff(void)
{
    uint8_t b[32] = {0, 0, 0, 24};
    memcpy(b + 4, "ftypisom\0\0\0\0isomavc1", 20);
    CHECK_EQ_INT(video_sniff(b, sizeof b), VIDEO_FMT_MP4);
    memcpy(b + 4, "ftypqt  \0\0\0\0qt  qt  ", 20);
    CHECK_EQ_INT(video_sniff(b, sizeof b), VIDEO_FMT_MP4);
    const char *images[] = {"heic", "heix", "mif1", "avif", "msf1"};
    for (int i = 0; i < 5; i++) {
        memcpy(b + 8, images[i], 4);
        CHECK_EQ_INT(video_sniff(b, sizeof b), VIDEO_FMT_NONE);
    }
    /* An MP4 listing an image brand among its compatible ones is the image's. */
    memcpy(b + 4, "ftypisom\0\0\0\0isomavif", 20);
    CHECK_EQ_INT(video_sniff(b, sizeof b), VIDEO_FMT_NONE);
    const uint8_t ebml[16] = {0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01};
    CHECK_EQ_INT(video_sniff(ebml, sizeof ebml), VIDEO_FMT_MKV);
    CHECK_EQ_INT(video_sniff(ebml, 3), VIDEO_FMT_NONE);
    CHECK_EQ_INT(video_sniff(NULL, 0), VIDEO_FMT_NONE);
    const uint8_t jpeg[16] = {0xFF, 0xD8, 0xFF, 0xE0};
    CHECK_EQ_INT(video_sniff(jpeg, sizeof jpeg), VIDEO_FMT_NONE);
}

int main(void)
{
    test_backpressure();
    test_sniff();
    return check_report("video_frames");
}
