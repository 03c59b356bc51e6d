/* SSE parsing and chat chunks, the provider's error messages, the image sent
 * (size, resampling, JPEG, base64) and the prompt. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "llm/llm_internal.h"
#include "util/rgb_resample.h"

typedef struct {
    char got[16][256];
    int n;
} events;

static int collect(void *ctx, const char *data, size_t len)
{
    events *e = ctx;
    CHECK_EQ_INT(strlen(data), len); /* NUL-terminated at len */
    if (e->n < 16) snprintf(e->got[e->n++], 256, "%s", data);
    return 0;
}

static void feed_split(const char *s, size_t step, events *ev)
{
    sse_parser p;
    sse_init(&p, collect, ev);
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i += step) CHECK_EQ_INT(sse_feed(&p, s + i, i + step > n ? n - i : step), 0);
    CHECK_EQ_INT(sse_finish(&p), 0);
    sse_free(&p);
}

static void test_sse(void)
{
    const char *s = ": keep-alive\n\ndata: {\"a\":1}\n\nevent: x\ndata:{\"b\":2}\r\n\r\ndata: one\ndata: two\n\nid: 7\n\ndata: [DONE]\n\n";
    for (size_t step = 1; step <= 8; step++) {
        events ev = {.n = 0};
        feed_split(s, step, &ev);
        CHECK_EQ_INT(ev.n, 4);
        CHECK_STR(ev.got[0], "{\"a\":1}");
        CHECK_STR(ev.got[1], "{\"b\":2}");
        CHECK_STR(ev.got[2], "one\ntwo");
        CHECK_STR(ev.got[3], "[DONE]");
    }
    /* CR alone ends lines too; a last event without its blank line is kept at the end. */
    events ev = {.n = 0};
    feed_split("data: x\r\rdata: y", 3, &ev);
    CHECK_EQ_INT(ev.n, 2);
    CHECK_STR(ev.got[1], "y");
}

typedef struct {
    char text[512];
    int n;
} deltas;

static void on_delta(void *ctx, const char *t, size_t len)
{
    deltas *d = ctx;
    strncat(d->text, t, len);
    d->n++;
}

static int ev(chat_stream *c, const char *s) { return chat_event(c, s, strlen(s)); }

/* A provider that never sends a newline is cut off, not buffered without end. */
static void test_sse_endless_line(void)
{
    events ev = {0};
    sse_parser p;
    sse_init(&p, collect, &ev);
    char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    memcpy(chunk, "data: ", 6);
    int rc = 0;
    for (int i = 0; i < 512 && rc == 0; i++) rc = sse_feed(&p, chunk, sizeof chunk); /* up to 32 MiB */
    CHECK_EQ_INT(rc, -1);
    CHECK_EQ_INT(ev.n, 0);
    sse_free(&p);
}

static void test_chat(void)
{
    deltas d = {"", 0};
    chat_stream c;
    chat_init(&c, on_delta, &d);
    CHECK_EQ_INT(ev(&c, "{\"id\":\"x\",\"model\":\"llava:7b\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}"), 0);
    CHECK_EQ_INT(ev(&c, "{\"choices\":[{\"delta\":{\"content\":\"The serial \"}}]}"), 0);
    CHECK_EQ_INT(ev(&c, "{\"choices\":[{\"delta\":{\"content\":\"is AB12 \\u00e9\"},\"finish_reason\":null}]}"), 0);
    CHECK_EQ_INT(ev(&c, "{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}"), 0);
    CHECK_EQ_INT(ev(&c, "{\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15}}"), 0);
    CHECK_EQ_INT(ev(&c, "[DONE]"), 0);
    CHECK(c.done);
    CHECK_STR(buf_str(&c.text), "The serial is AB12 \xc3\xa9");
    CHECK_STR(d.text, buf_str(&c.text));
    CHECK_EQ_INT(d.n, 2);
    CHECK_STR(c.model, "llava:7b");
    CHECK_STR(c.finish_reason, "stop");
    CHECK_EQ_INT(json_integer_value(json_object_get(c.usage, "total_tokens")), 15);
    chat_free(&c);

    chat_init(&c, NULL, NULL);
    CHECK(ev(&c, "{not json") != 0);
    CHECK_EQ_INT(c.status, CHAT_MALFORMED);
    chat_free(&c);
    chat_init(&c, NULL, NULL);
    CHECK(ev(&c, "{\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"content_filter\"}]}") != 0);
    CHECK_EQ_INT(c.status, CHAT_CONTENT_FILTER);
    chat_free(&c);
    chat_init(&c, NULL, NULL);
    CHECK(ev(&c, "{\"error\":{\"message\":\"model overloaded\",\"type\":\"server_error\"}}") != 0);
    CHECK_EQ_INT(c.status, CHAT_UPSTREAM_ERROR);
    CHECK_STR(c.message, "model overloaded");
    chat_free(&c);

    /* A server that ignored stream:true. */
    memset(&d, 0, sizeof d);
    chat_init(&c, on_delta, &d);
    const char *whole = "{\"model\":\"gpt-4o\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},"
                        "\"finish_reason\":\"stop\"}],\"usage\":{\"total_tokens\":3}}";
    CHECK_EQ_INT(chat_whole(&c, whole, strlen(whole)), 0);
    CHECK_STR(buf_str(&c.text), "Hi");
    CHECK_STR(d.text, "Hi");
    CHECK(c.usage != NULL);
    chat_free(&c);
}

static void test_error_message(void)
{
    char m[128];
    const char *b = "{\"error\":{\"message\":\"Invalid API key\",\"code\":\"invalid_api_key\"}}";
    llm_error_message(b, strlen(b), m, sizeof m);
    CHECK_STR(m, "Invalid API key");
    b = "{\"error\":\"model 'llava' not found\"}";
    llm_error_message(b, strlen(b), m, sizeof m);
    CHECK_STR(m, "model 'llava' not found");
    b = "<html>\n502 Bad Gateway</html>";
    llm_error_message(b, strlen(b), m, sizeof m);
    CHECK_STR(m, "<html> 502 Bad Gateway</html>");
    llm_error_message("", 0, m, sizeof m);
    CHECK_STR(m, "(empty body)");
}

static void test_image(void)
{
    int tw, th;
    llm_target_size(810, 1080, 512, &tw, &th);
    CHECK(tw == 384 && th == 512);
    llm_target_size(4000, 3000, 1024, &tw, &th);
    CHECK(tw == 1024 && th == 768);
    llm_target_size(300, 200, 1024, &tw, &th);
    CHECK(tw == 300 && th == 200);

    /* Area average: a 4x2 image of two flat halves becomes 2x1 of those colours. */
    uint8_t src[4 * 2 * 3];
    for (int i = 0; i < 8; i++) {
        uint8_t v = (i % 4) < 2 ? 10 : 200;
        src[i * 3] = src[i * 3 + 1] = src[i * 3 + 2] = v;
    }
    uint8_t *dst = rgb_resample(src, 4, 2, 2, 1);
    CHECK(dst && dst[0] == 10 && dst[3] == 200);
    free(dst);

    char *b = llm_base64((const unsigned char *)"Man", 3);
    CHECK_STR(b, "TWFu");
    free(b);
    b = llm_base64((const unsigned char *)"Ma", 2);
    CHECK_STR(b, "TWE=");
    free(b);

    /* The data URL decodes to a JPEG of the scaled size. */
    int w = 640, h = 480;
    image_t img = {.width = w, .height = h, .orig_width = w, .orig_height = h, .format = IMAGE_FMT_PNG};
    img.pixels = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) img.pixels[i] = (uint8_t)(i * 7);
    int sw, sh;
    char *url = llm_image_data_url(&img, 320, &sw, &sh);
    CHECK(url && !strncmp(url, "data:image/jpeg;base64,/9j/", 27));
    CHECK(sw == 320 && sh == 240);
    free(url);
    /* Decoded smaller than the original (shrink-on-load): the size sent still follows the original. */
    img.width = 320;
    img.height = 240;
    url = llm_image_data_url(&img, 200, &sw, &sh);
    CHECK(sw == 200 && sh == 150);
    free(url);
    unsigned char *jpg;
    size_t jlen;
    CHECK_EQ_INT(llm_jpeg_encode(img.pixels, 320, 240, 90, &jpg, &jlen), 0);
    image_t back;
    image_decode_opts o = {0};
    CHECK_EQ_INT(image_decode(jpg, jlen, &o, &back, NULL, 0), IMAGE_OK);
    CHECK(back.width == 320 && back.height == 240);
    image_free(&back);
    free(jpg);
    free(img.pixels);
}

static void test_prompt(void)
{
    json_t *e = json_pack("{s:{s:[{s:s,s:f,s:[[i,i],[i,i],[i,i],[i,i]]}],s:s},s:{s:[{s:s,s:f,s:{s:f,s:f,s:f,s:f}}]}}",
                          "ocr", "lines", "text", "S/N: \"AB12\"", "confidence", 0.93, "box", 10, 90, 270, 90, 270, 120, 10,
                          120, "text", "S/N: AB12", "yolo", "detections", "class", "person", "confidence", 0.9, "box",
                          "x1", 1.0, "y1", 2.0, "x2", 30.0, "y2", 40.0);
    char *t = llm_user_text("find the serial number", e, 810, 1080);
    CHECK(strstr(t, "Question: find the serial number") != NULL);
    CHECK(strstr(t, "1. \"S/N: \\\"AB12\\\"\" (0.93) at [[10,90],[270,90],[270,120],[10,120]]") != NULL);
    CHECK(strstr(t, "- person (0.90) at [1,2,30,40]") != NULL);
    CHECK(strstr(t, "810x1080") != NULL);
    free(t);
    json_t *none = json_object();
    t = llm_user_text(NULL, none, 10, 10);
    CHECK(strstr(t, "Describe this image") != NULL);
    CHECK(strstr(t, "OCR): not available") != NULL);
    free(t);
    json_decref(none);
    json_decref(e);

    json_t *body = llm_request_body("llava", 256, "Q", "data:image/jpeg;base64,AAAA");
    CHECK_STR(json_string_value(json_object_get(body, "model")), "llava");
    CHECK(json_is_true(json_object_get(body, "stream")));
    CHECK(json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage")));
    CHECK_EQ_INT(json_integer_value(json_object_get(body, "max_tokens")), 256);
    json_t *msgs = json_object_get(body, "messages");
    CHECK_STR(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "system");
    json_t *parts = json_object_get(json_array_get(msgs, 1), "content");
    CHECK_STR(json_string_value(json_object_get(json_array_get(parts, 0), "type")), "text");
    CHECK_STR(json_string_value(json_object_get(json_array_get(parts, 1), "type")), "image_url");
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_array_get(parts, 1), "image_url"), "url")),
              "data:image/jpeg;base64,AAAA");
    json_decref(body);
}

int main(void)
{
    test_sse();
    test_sse_endless_line();
    test_chat();
    test_error_message();
    test_image();
    test_prompt();
    return check_report("test_llm_stream");
}
