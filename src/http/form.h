/* The v1 request's form fields, assembled part by part as the multipart
 * parser reports them, with every limit enforced as bytes arrive (an oversized
 * upload is refused without being stored).
 *
 * A refusal (unknown field, a size limit) does not stop the reading: the rest
 * of the body is still read, its data dropped, so that the API key can be
 * checked first wherever it sits in the body (401 before 413/422). */
#ifndef SIGHT_HTTP_FORM_H
#define SIGHT_HTTP_FORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "pipeline/slice_opts.h"
#include "util/buf.h"
#include "util/error.h"
#include "video/video_meta.h"

typedef struct {
    int64_t max_file_bytes;
    int max_files;
    int max_parts; /* parts (or url-encoded fields) in all; 0: no limit */
} form_limits;

typedef struct {
    char *filename; /* as sent, or "file<N>" when the part had none */
    buf data;       /* capped at max_file_bytes */
    char *url;      /* v2: the image_url to fetch (data stays empty) */
} form_file;

typedef struct {
    bool is_yolo, is_ocr, is_llm;
    char *model;      /* "model": the detection model by name (Sight's extension); NULL = the default */
    slice_opts slice; /* "slice": sliced detection (Sight's extension) */
    video_meta video; /* fps, max_frames, track, track_stream */
} form_meta;

/* The api_key field's limit, in bytes. */
#define FORM_MAX_API_KEY 256

typedef struct {
    form_limits lim;
    char *api_key;  /* NULL when absent */
    char *query;    /* NULL when absent */
    json_t *params; /* stage options as strings: confidence, iou, max_detections, classes */
    form_file *files;
    size_t nfiles;
    size_t nparts;   /* parts begun so far */
    char **metadata; /* raw JSON strings, parsed by form_finish */
    size_t nmetadata;
    form_meta *meta; /* nfiles entries after a successful form_finish */
    bool meta_given; /* v2: meta filled from the JSON items, no metadata strings */
    bool deepstack;  /* DeepStack's form: one 'image' part, 'min_confidence' (set before parsing) */

    /* the value being received */
    enum { CUR_NONE,
           CUR_API_KEY,
           CUR_QUERY,
           CUR_METADATA,
           CUR_FILE,
           CUR_PARAM } cur;
    const char *cur_param; /* name of the option being received */
    buf text;              /* text value being assembled, capped at its field's limit */
    sight_error err;       /* the first refusal, with its HTTP status */
    bool failed;
    bool api_key_too_large; /* the key itself was over its limit: 413, not 401 missing_api_key */
} form;

void form_init(form *f, const form_limits *lim);
void form_free(form *f);

/* A part starts, continues, ends (the multipart parser's callbacks). They
 * always return 0: problems are recorded in f->err (first one wins). */
int form_part_begin(form *f, const char *name, const char *filename);
int form_part_data(form *f, const char *data, size_t len);
int form_part_end(form *f);

/* Records an error found outside the form (e.g. the body's size), so that it
 * is reported like the form's own. The first error wins. */
void form_set_error(form *f, unsigned status, const char *code, const char *message);

/* Feeds an application/x-www-form-urlencoded body as parts (no files). */
void form_parse_urlencoded(form *f, const char *body, size_t len);

/* Fills the form from a v2 JSON body: {api_key, query, data: [{image_url,
 * filename, is_yolo, is_llm, is_ocr}], confidence, iou, max_detections, classes}. */
void form_parse_json(form *f, const char *body, size_t len);

/* An upper bound on the number of values in a JSON text (each is the first
 * in its container or follows a comma), found without parsing it: a parser
 * spends about 30 bytes of memory per 1-byte value, so the count is checked
 * before any parse. */
size_t form_json_value_bound(const char *body, size_t len);

/* Called once the body is complete: checks counts and parses metadata. */
int form_finish(form *f);

/* The names of the per-request option fields (NULL-terminated). */
extern const char *const FORM_OPTION_FIELDS[];

/* Takes the bytes of file i out of the form (caller frees). */
uint8_t *form_take_file(form *f, size_t i, size_t *len);
char *form_take_filename(form *f, size_t i);
char *form_take_url(form *f, size_t i);
char *form_take_model(form *f, size_t i);

#endif
