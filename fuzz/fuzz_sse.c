/* The LLM client's SSE parser fed in up to three pieces; each event goes to
 * the chat-chunk reader, as in the client. The same stream fed whole must
 * give the same events.
 * Input: [split1][split2] stream... */
#include "fuzz_common.h"
#include "llm/llm_internal.h"

typedef struct {
    chat_stream *chat;
    fuzz_trace t;
} run;

static int on_event(void *ctx, const char *data, size_t len)
{
    run *r = ctx;
    if (data[len] != 0) abort(); /* documented: NUL-terminated */
    trace_add(&r->t, &len, sizeof len);
    trace_add(&r->t, data, len);
    if (r->chat) chat_event(r->chat, data, len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t s1 = fuzz_byte(&data, &size), s2 = fuzz_byte(&data, &size);
    size_t a, b;
    fuzz_splits(s1, s2, size, &a, &b);
    const char *s = (const char *)data;

    chat_stream c;
    chat_init(&c, NULL, NULL);
    run split = {.chat = &c};
    sse_parser p;
    sse_init(&p, on_event, &split);
    if (sse_feed(&p, s, a) || sse_feed(&p, s + a, b - a) || sse_feed(&p, s + b, size - b) || sse_finish(&p)) abort();
    sse_free(&p);
    chat_free(&c);

    run whole = {0};
    sse_init(&p, on_event, &whole);
    if (sse_feed(&p, s, size) || sse_finish(&p)) abort();
    sse_free(&p);
    if (!trace_eq(&split.t, &whole.t)) abort();
    free(split.t.b);
    free(whole.t.b);

    /* The whole input as a non-streamed answer and as an error body. */
    chat_init(&c, NULL, NULL);
    chat_whole(&c, s, size);
    chat_free(&c);
    char msg[128];
    llm_error_message(s, size, msg, sizeof msg);
    if (!memchr(msg, 0, sizeof msg)) abort();
    return 0;
}
