/* Shared by the local provider's two halves: reading the query and
 * answering (local.c), and finding values in the OCR text (local_text.c). */
#ifndef SIGHT_LLM_LOCAL_TEXT_H
#define SIGHT_LLM_LOCAL_TEXT_H

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum { K_SERIAL,
               K_MODEL,
               K_PART,
               K_LOT,
               K_CODE,
               K_PLATE,
               K_PRICE,
               K_DATE,
               K_TEXT,
               K_NONE } kind;

typedef struct {
    const json_t *obj;
    const char *text;
    char *lower;
    double conf;
    double cx, cy, h; /* centre and height of its box */
} ocr_line;

char *text_lower_dup(const char *s);
bool text_is_word_char(char c);
long text_find_word(const char *hay, const char *needle);
int text_load_lines(const json_t *earlier, ocr_line **out, size_t *n);
void text_free_lines(ocr_line *l, size_t n);
json_t *text_match(kind k, const char *value, size_t vlen, const ocr_line *o, bool labelled);
void text_find_labelled(kind k, const ocr_line *l, size_t n, const regex_t *pattern, json_t *out);
void text_find_unlabelled(kind k, const ocr_line *l, size_t n, const regex_t *pattern, json_t *out);
void text_sort_matches(json_t *arr);

#endif
