/* The LLM client's SSE parser fed in up to three pieces; each event goes to
 * the chat-chunk reader, as in the client.
 * Input: [split1][split2] stream... */
#include "fuzz_common.h"
#include "llm/llm_internal.h"

static int on_event(void *ctx, const char *data, size_t len)
{
    if (data[len] != 0) abort();  /* documented: NUL-terminated */
    chat_event(ctx, data, len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t s1 = fuzz_byte(&data, &size), s2 = fuzz_byte(&data, &size);
    size_t a, b;
    fuzz_splits(s1, s2, size, &a, &b);
    chat_stream c;
    chat_init(&c, NULL, NULL);
    sse_parser p;
    sse_init(&p, on_event, &c);
    const char *s = (const char *)data;
    if (sse_feed(&p, s, a) == 0 && sse_feed(&p, s + a, b - a) == 0 && sse_feed(&p, s + b, size - b) == 0)
        sse_finish(&p);
    sse_free(&p);
    chat_free(&c);

    /* The whole input as a non-streamed answer and as an error body. */
    chat_init(&c, NULL, NULL);
    chat_whole(&c, s, size);
    chat_free(&c);
    char msg[128];
    llm_error_message(s, size, msg, sizeof msg);
    if (!memchr(msg, 0, sizeof msg)) abort();
    return 0;
}
