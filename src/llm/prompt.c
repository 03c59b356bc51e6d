/* The chat request: a system message stating the task, and one user message
 * with the question, what Sight already knows about the image (OCR lines with
 * their boxes, detections), and the image itself. The OCR text is there so a
 * model reads small print right: it sees a downscaled image, OCR saw it whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm_internal.h"

/* Bounds on the grounding context, so a page of text cannot crowd out the answer. */
#define MAX_OCR_LINES 200
#define MAX_DETECTIONS 100

const char LLM_SYSTEM_PROMPT[] =
    "You are the image-analysis step of Sight, an image-inference server. Answer the user's question about the "
    "attached image, accurately and concisely, from what you see in it. The user message also lists what other "
    "models already found in the image: text read by OCR (with its confidence and the pixel corners of each line) "
    "and detected objects (class, confidence, pixel box). Use the OCR text for exact characters such as serial "
    "numbers, codes, prices and dates, unless the image clearly shows otherwise; refer to positions when useful. "
    "If the answer is not in the image, say so rather than guessing.";

/* Beside the query (which the body limit bounds), the prompt holds at most
 * MAX_OCR_LINES + MAX_DETECTIONS short lines: far below this. */
#define MAX_PROMPT_CONTEXT (4u << 20)

static double num(const json_t *j)
{
    return json_number_value(j);
}

char *llm_user_text(const char *query, const json_t *earlier, int width, int height)
{
    buf b;
    buf_init(&b, (query ? strlen(query) : 0) + MAX_PROMPT_CONTEXT);
    int failed = 0;
    if (query && *query) failed |= buf_printf(&b, "Question: %s\n", query);
    else failed |= buf_printf(&b, "Question: Describe this image: what it shows, notable objects, any text in it.\n");
    /* Boxes are in the original's pixels; the attached copy may be smaller. */
    failed |= buf_printf(&b, "\nWhat Sight already found in this image (the original is %dx%d pixels; coordinates below are "
                             "pixels of the original, the attached copy may be scaled down):\n",
                         width, height);

    json_t *ocr = json_object_get(earlier, "ocr");
    json_t *lines = json_object_get(ocr, "lines");
    if (!ocr) failed |= buf_printf(&b, "Text (OCR): not available on this server.\n");
    else if (json_array_size(lines) == 0) failed |= buf_printf(&b, "Text (OCR): none found.\n");
    else {
        failed |= buf_printf(&b, "Text (OCR), one line each: \"text\" (confidence) at corners [[x,y] x4]:\n");
        size_t i;
        json_t *ln;
        json_array_foreach(lines, i, ln) {
            if (i >= MAX_OCR_LINES) {
                failed |= buf_printf(&b, "... and %zu more lines\n", json_array_size(lines) - i);
                break;
            }
            /* json_dumps quotes and escapes the text exactly as read. */
            char *t = json_dumps(json_object_get(ln, "text"), JSON_ENCODE_ANY);
            failed |= buf_printf(&b, "%zu. %s (%.2f) at [", i + 1, t ? t : "\"\"", num(json_object_get(ln, "confidence")));
            free(t);
            json_t *box = json_object_get(ln, "box");
            for (size_t k = 0; k < json_array_size(box); k++) {
                json_t *pt = json_array_get(box, k);
                failed |= buf_printf(&b, "%s[%.0f,%.0f]", k ? "," : "", num(json_array_get(pt, 0)), num(json_array_get(pt, 1)));
            }
            failed |= buf_printf(&b, "]\n");
        }
    }

    json_t *yolo = json_object_get(earlier, "yolo");
    json_t *dets = json_object_get(yolo, "detections");
    if (!yolo) failed |= buf_printf(&b, "Objects: detection not available on this server.\n");
    else if (json_array_size(dets) == 0) failed |= buf_printf(&b, "Objects detected: none.\n");
    else {
        failed |= buf_printf(&b, "Objects detected: class (confidence) at box [x1,y1,x2,y2]:\n");
        size_t i;
        json_t *d;
        json_array_foreach(dets, i, d) {
            if (i >= MAX_DETECTIONS) {
                failed |= buf_printf(&b, "... and %zu more objects\n", json_array_size(dets) - i);
                break;
            }
            json_t *bx = json_object_get(d, "box");
            const char *cls = json_string_value(json_object_get(d, "class"));
            failed |= buf_printf(&b, "- %s (%.2f) at [%.0f,%.0f,%.0f,%.0f]\n", cls ? cls : "?", num(json_object_get(d, "confidence")),
                                 num(json_object_get(bx, "x1")), num(json_object_get(bx, "y1")), num(json_object_get(bx, "x2")),
                                 num(json_object_get(bx, "y2")));
        }
    }
    if (failed) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b, NULL);
}

json_t *llm_request_body(const char *model, int max_tokens, const char *user_text, const char *data_url)
{
    json_t *body = json_pack(
        "{s:s, s:b, s:{s:b}, s:i, s:[{s:s, s:s}, {s:s, s:[{s:s, s:s}, {s:s, s:{s:s}}]}]}",
        "model", model, "stream", 1, "stream_options", "include_usage", 1, "max_tokens", max_tokens,
        "messages", "role", "system", "content", LLM_SYSTEM_PROMPT, "role", "user", "content", "type", "text",
        "text", user_text, "type", "image_url", "image_url", "url", data_url);
    return body;
}
