/* The testable pieces of the LLM stage: SSE parsing, the chat stream's state,
 * image preparation, the prompt, and the local provider's answers. */
#ifndef SIGHT_LLM_INTERNAL_H
#define SIGHT_LLM_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/decode.h"
#include "util/buf.h"

/* ---- Server-sent events, parsed incrementally (chunks may split anywhere) ---- */

/* Called with one event's data (the data: lines joined by "\n", NUL-terminated).
 * Returns 0 to go on, non-zero to stop parsing (sse_feed returns it). */
typedef int (*sse_event_fn)(void *ctx, const char *data, size_t len);

typedef struct {
    buf line; /* the line being read */
    buf data; /* data of the event being read */
    bool has_data;
    bool skip_lf; /* the last byte was CR: a following LF belongs to it */
    sse_event_fn on_event;
    void *ctx;
} sse_parser;

void sse_init(sse_parser *p, sse_event_fn fn, void *ctx);
int sse_feed(sse_parser *p, const char *buf, size_t len);
/* End of stream: dispatches an event left without its blank line. */
int sse_finish(sse_parser *p);
void sse_free(sse_parser *p);

/* ---- OpenAI chat-completions stream ---- */

typedef enum {
    CHAT_OK = 0,
    CHAT_MALFORMED,      /* a data line that is not a chunk */
    CHAT_UPSTREAM_ERROR, /* an {"error": ...} event */
    CHAT_CONTENT_FILTER, /* finish_reason "content_filter" */
} chat_status;

typedef void (*chat_delta_fn)(void *ctx, const char *text, size_t len);

typedef struct {
    buf text;        /* the answer so far */
    json_t *usage;   /* as the provider sent it, or NULL */
    char model[256]; /* as the provider names it */
    char finish_reason[32];
    bool done; /* [DONE] seen */
    int events;
    chat_status status;
    char message[512]; /* for the non-OK statuses */
    chat_delta_fn on_delta;
    void *ctx;
} chat_stream;

void chat_init(chat_stream *c, chat_delta_fn fn, void *ctx);
/* One SSE data payload; returns non-zero once the stream is in error. */
int chat_event(chat_stream *c, const char *data, size_t len);
/* A whole non-streamed chat.completion body (servers that ignore stream:true). */
int chat_whole(chat_stream *c, const char *body, size_t len);
void chat_free(chat_stream *c);

/* The provider's own words from an error body ({"error":{"message":...}},
 * {"error":"..."}, {"detail":...}) or the start of the text itself. */
void llm_error_message(const char *body, size_t len, char *out, size_t out_len);

/* ---- The image sent ---- */

/* Size of the image as sent: the original scaled so its long side is at most
 * max_side (never enlarged). */
void llm_target_size(int w, int h, int max_side, int *tw, int *th);
/* JPEG at the given quality into a malloc'd buffer. */
int llm_jpeg_encode(const uint8_t *rgb, int w, int h, int quality, unsigned char **out, size_t *out_len);
/* "data:image/jpeg;base64,..." for img scaled to max_side; *sent_w/h get its size. */
char *llm_image_data_url(const image_t *img, int max_side, int *sent_w, int *sent_h);
char *llm_base64(const unsigned char *buf, size_t len);

/* ---- The prompt ---- */

extern const char LLM_SYSTEM_PROMPT[];
/* The user text: the query (or a request to describe the image) and the
 * grounding context from earlier (OCR lines with boxes, detections). */
char *llm_user_text(const char *query, const json_t *earlier, int width, int height);
/* The chat-completions request body. */
json_t *llm_request_body(const char *model, int max_tokens, const char *user_text, const char *data_url);

/* ---- The local provider ---- */

/* The "llm" result answering query from earlier's "ocr" and "yolo"
 * (either may be absent). Never fails for lack of data: it says what it lacks. */
json_t *llm_local_answer(const char *query, const json_t *earlier);

#endif
