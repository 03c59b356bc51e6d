/* The v1 request's form fields, assembled from the pieces libmicrohttpd's
 * multipart post processor hands over, with every limit enforced as bytes
 * arrive (so an oversized upload is refused without being stored).
 *
 * form_feed() is the post processor's iterator in testable form: a new value
 * starts whenever off == 0, which is how repeated fields ("files", "metadata")
 * in any interleaving are told apart. One wrinkle: libmicrohttpd 0.9.7x may
 * announce a value with an empty call (off 0, size 0) and then deliver its
 * first bytes with off 0 again; such a pair is one value. (The price: an empty
 * value directly followed by a non-empty one of the same name and filename
 * reads as one value, so the counts disagree and the request gets a 422.) */
#ifndef SIGHT_HTTP_FORM_H
#define SIGHT_HTTP_FORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct {
    int64_t max_file_bytes;
    int max_files;
} form_limits;

typedef struct {
    unsigned status;     /* HTTP status to answer with */
    char code[48];
    char message[256];
} form_error;

typedef struct {
    char *filename;      /* as sent, or "file<N>" when the part had none */
    uint8_t *data;
    size_t len, cap;
} form_file;

typedef struct {
    bool is_yolo, is_llm;
} form_meta;

typedef struct {
    form_limits lim;
    char *api_key;        /* NULL when absent */
    char *query;          /* NULL when absent */
    json_t *params;       /* stage options as strings: confidence, iou, max_detections, classes */
    form_file *files;
    size_t nfiles;
    char **metadata;      /* raw JSON strings, parsed by form_finish */
    size_t nmetadata;
    form_meta *meta;      /* nfiles entries after a successful form_finish */

    /* the value being received */
    enum { CUR_NONE, CUR_API_KEY, CUR_QUERY, CUR_METADATA, CUR_FILE, CUR_PARAM } cur;
    const char *cur_param;  /* name of the option being received */
    bool cur_announced;   /* current value began with an empty off-0 call, no bytes yet */
    char *cur_key, *cur_filename;
    char *text;           /* text value being assembled */
    size_t text_len, text_cap;
    form_error err;
    bool failed;
} form;

void form_init(form *f, const form_limits *lim);
void form_free(form *f);

/* Adds a piece of the value of field key. Returns 0, or -1 with f->err set
 * (and every later call failing the same way). */
int form_feed(form *f, const char *key, const char *filename, const char *data, uint64_t off, size_t size);

/* Records an error found outside the form (e.g. the body's size), so that it
 * is reported like the form's own. The first error wins. */
void form_set_error(form *f, unsigned status, const char *code, const char *message);

/* Called once the body is complete: checks counts and parses metadata. */
int form_finish(form *f);

/* The names of the per-request option fields (NULL-terminated). */
extern const char *const FORM_OPTION_FIELDS[];

/* Takes the bytes of file i out of the form (caller frees). */
uint8_t *form_take_file(form *f, size_t i, size_t *len);
char *form_take_filename(form *f, size_t i);

#endif
