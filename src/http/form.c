#include "http/form.h"
#include "fetch/fetcher.h"
#include "util/array.h"
#include "util/json_out.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const FORM_OPTION_FIELDS[] = {"confidence", "iou", "max_detections", "classes", "mask_format", NULL};

/* Text fields are small; anything bigger is a mistake or an attack. */
#define MAX_API_KEY FORM_MAX_API_KEY
#define MAX_QUERY (16 * 1024)
#define MAX_METADATA 4096
/* Repeated `classes` fields are joined; the whole list has this limit (each
 * join copies it, so without one the cost would grow with the square). */
#define MAX_CLASSES (16 * 1024)

static int fail(form *f, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(form *f, unsigned status, const char *code, const char *fmt, ...)
{
    if (!f->failed) {
        f->failed = true;
        va_list ap;
        va_start(ap, fmt);
        sight_error_vset(&f->err, status, code, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void form_set_error(form *f, unsigned status, const char *code, const char *message)
{
    fail(f, status, code, "%s", message);
}

void form_init(form *f, const form_limits *lim)
{
    memset(f, 0, sizeof *f);
    f->lim = *lim;
}

void form_free(form *f)
{
    free(f->api_key);
    free(f->query);
    json_decref(f->params);
    for (size_t i = 0; i < f->nfiles; i++) {
        free(f->files[i].filename);
        buf_free(&f->files[i].data);
        free(f->files[i].url);
    }
    free(f->files);
    for (size_t i = 0; i < f->nmetadata; i++) free(f->metadata[i]);
    free(f->metadata);
    for (size_t i = 0; f->meta && i < f->nfiles; i++) free(f->meta[i].model);
    free(f->meta);
    buf_free(&f->text);
    memset(f, 0, sizeof *f);
}

/* Finishes the text value being assembled and stores it where it belongs. */
/* Stores an option; a repeated `classes` field adds to the list. */
static int store_param(form *f, char *s)
{
    if (!f->params && !(f->params = json_object())) {
        free(s);
        return -1;
    }
    json_t *old = json_object_get(f->params, f->cur_param);
    char *joined = NULL;
    if (old && !strcmp(f->cur_param, "classes")) {
        if (json_string_length(old) + 1 + strlen(s) > MAX_CLASSES) {
            free(s);
            fail(f, 413, "field_too_large", "the classes fields together are over their %d byte limit", MAX_CLASSES);
            return 0;
        }
        if (asprintf(&joined, "%s,%s", json_string_value(old), s) < 0) {
            free(s);
            return -1;
        }
    }
    int rc = json_object_set_new(f->params, f->cur_param, json_string_lossy(joined ? joined : s, strlen(joined ? joined : s)));
    free(joined);
    free(s);
    return rc;
}

static int end_value(form *f)
{
    if (f->cur == CUR_PARAM) {
        char *s = buf_take(&f->text, NULL);
        f->cur = CUR_NONE;
        if (!s || store_param(f, s)) return fail(f, 500, "out_of_memory", "out of memory");
        return 0;
    }
    if (f->cur == CUR_API_KEY || f->cur == CUR_QUERY || f->cur == CUR_METADATA) {
        char *s = buf_take(&f->text, NULL);
        if (!s) return fail(f, 500, "out_of_memory", "out of memory");
        if (f->cur == CUR_QUERY) {
            /* The query goes into prompts and answers as JSON text: make it
             * valid UTF-8 here, once, rather than at every use. */
            char *clean = utf8_lossy_dup(s, strlen(s), NULL);
            free(s);
            if (!(s = clean)) return fail(f, 500, "out_of_memory", "out of memory");
        }
        if (f->cur == CUR_API_KEY) {
            free(f->api_key);
            f->api_key = s;
        } else if (f->cur == CUR_QUERY) {
            free(f->query);
            f->query = s;
        } else {
            char **m = array_resize(f->metadata, f->nmetadata + 1, sizeof *m);
            if (!m) {
                /* Not a double free: only CUR_QUERY freed s, and it took clean's
                 * pointer; cppcheck does not follow f->cur across the branches. */
                /* cppcheck-suppress doubleFree */
                free(s);
                return fail(f, 500, "out_of_memory", "out of memory");
            }
            f->metadata = m;
            m[f->nmetadata++] = s;
        }
    }
    f->cur = CUR_NONE;
    return 0;
}

static int start_value(form *f, const char *key, const char *filename)
{
    if (!strcmp(key, "api_key")) {
        f->cur = CUR_API_KEY;
        return 0;
    }
    /* After a refusal only the key is still collected. */
    if (f->failed) {
        f->cur = CUR_NONE;
        return 0;
    }
    if (f->deepstack) {
        /* DeepStack's fields; its clients send others (e.g. Blue Iris), ignored as DeepStack does. */
        if (!strcmp(key, "min_confidence")) {
            f->cur = CUR_PARAM;
            f->cur_param = "confidence";
            return 0;
        }
        if (!strcmp(key, "slice")) { /* Sight's extension: read into the file's metadata by deepstack_finish */
            f->cur = CUR_PARAM;
            f->cur_param = "slice";
            return 0;
        }
        if (strcmp(key, "image") || f->nfiles) {
            f->cur = CUR_NONE;
            return 0;
        }
        key = "files";
    }
    if (!strcmp(key, "files")) {
        if (f->nfiles >= (size_t)f->lim.max_files)
            return fail(f, 413, "too_many_files", "more than %d files in one request", f->lim.max_files);
        form_file *nf = array_resize(f->files, f->nfiles + 1, sizeof *nf);
        if (!nf) return fail(f, 500, "out_of_memory", "out of memory");
        f->files = nf;
        form_file *ff = &f->files[f->nfiles];
        memset(ff, 0, sizeof *ff);
        buf_init(&ff->data, (size_t)f->lim.max_file_bytes);
        if (filename && *filename) ff->filename = strdup(filename);
        else if (asprintf(&ff->filename, "file%zu", f->nfiles) < 0) ff->filename = NULL;
        if (!ff->filename) return fail(f, 500, "out_of_memory", "out of memory");
        f->nfiles++;
        f->cur = CUR_FILE;
    } else if (!strcmp(key, "query")) f->cur = CUR_QUERY;
    else if (!strcmp(key, "metadata")) {
        /* More metadata than files can never be valid; stop it growing without bound. */
        if (f->nmetadata >= (size_t)f->lim.max_files)
            return fail(f, 413, "too_many_files", "more than %d metadata entries in one request", f->lim.max_files);
        f->cur = CUR_METADATA;
    } else {
        for (int i = 0; FORM_OPTION_FIELDS[i]; i++)
            if (!strcmp(key, FORM_OPTION_FIELDS[i])) {
                f->cur = CUR_PARAM;
                f->cur_param = FORM_OPTION_FIELDS[i];
                return 0;
            }
        return fail(f, 422, "unknown_field",
                    "unknown form field '%.64s' (expected api_key, query, files, metadata, confidence, iou, "
                    "max_detections, classes, mask_format)",
                    key);
    }
    return 0;
}

int form_part_begin(form *f, const char *name, const char *filename)
{
    end_value(f);
    /* Each part costs a little whatever it holds: 10,000 tiny fields are refused
     * like an oversized one (the body is still read on, linearly, for the key). */
    if (f->lim.max_parts > 0 && ++f->nparts > (size_t)f->lim.max_parts)
        fail(f, 413, "too_many_parts", "more than %d parts in one request", f->lim.max_parts);
    if (start_value(f, name ? name : "", filename)) f->cur = CUR_NONE;
    buf_free(&f->text); /* empty here: end_value took it */
    buf_init(&f->text, f->cur == CUR_API_KEY ? MAX_API_KEY : f->cur == CUR_QUERY ? MAX_QUERY
                                                                                 : MAX_METADATA);
    return 0;
}

static void drop_text(form *f)
{
    buf_free(&f->text);
    f->cur = CUR_NONE;
}

int form_part_data(form *f, const char *data, size_t size)
{
    if (f->cur == CUR_NONE || size == 0) return 0;
    if (f->cur == CUR_FILE) {
        form_file *ff = &f->files[f->nfiles - 1];
        int rc = buf_add(&ff->data, data, size);
        if (rc == BUF_TOO_BIG)
            fail(f, 413, "file_too_large", "file '%.100s' is over the %lld byte limit", ff->filename,
                 (long long)f->lim.max_file_bytes);
        else if (rc)
            fail(f, 500, "out_of_memory", "out of memory");
        if (rc) f->cur = CUR_NONE;
        return 0;
    }
    const char *name = f->cur == CUR_API_KEY ? "api_key" : f->cur == CUR_QUERY ? "query"
        : f->cur == CUR_PARAM                                                  ? f->cur_param
                                                                               : "metadata";
    int rc = buf_add(&f->text, data, size);
    if (rc == BUF_TOO_BIG && f->cur == CUR_API_KEY) f->api_key_too_large = true;
    if (rc == BUF_TOO_BIG)
        fail(f, 413, "field_too_large", "form field '%s' is over its %zu byte limit", name, f->text.max);
    else if (rc)
        fail(f, 500, "out_of_memory", "out of memory");
    if (rc) drop_text(f);
    return 0;
}

int form_part_end(form *f)
{
    end_value(f);
    return 0;
}

static int hexdigit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
        : c >= 'A' && c <= 'F'                                   ? c - 'A' + 10
                                                                 : -1;
}

/* Decodes %XX and '+' in place; returns the new length. */
static size_t url_decode(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') s[o++] = ' ';
        else if (s[i] == '%' && i + 2 < n + 0 && hexdigit(s[i + 1]) >= 0 && hexdigit(s[i + 2]) >= 0) {
            s[o++] = (char)(hexdigit(s[i + 1]) << 4 | hexdigit(s[i + 2]));
            i += 2;
        } else s[o++] = s[i];
    }
    return o;
}

void form_parse_urlencoded(form *f, const char *body, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy) {
        fail(f, 500, "out_of_memory", "out of memory");
        return;
    }
    memcpy(copy, body, len);
    copy[len] = 0;
    char *save = NULL;
    for (char *pair = strtok_r(copy, "&", &save); pair; pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        char *val = eq ? eq + 1 : pair + strlen(pair);
        if (eq) *eq = 0;
        pair[url_decode(pair, strlen(pair))] = 0;
        size_t vl = url_decode(val, strlen(val));
        /* A url-encoded value is text, never an image: say so now rather than
         * start a stream whose files all fail to decode. */
        if (!strcmp(pair, "files") && !f->failed) {
            fail(f, 422, "files_need_multipart", "files must be sent as multipart/form-data file parts, not url-encoded");
            continue;
        }
        form_part_begin(f, pair, NULL);
        form_part_data(f, val, vl);
        form_part_end(f);
    }
    free(copy);
}

/* The flag a metadata key sets (v1 metadata and v2 items alike), or NULL for
 * an unknown key. */
static bool *meta_flag(form_meta *m, const char *key)
{
    return !strcmp(key, "is_yolo") ? &m->is_yolo : !strcmp(key, "is_llm") ? &m->is_llm
        : !strcmp(key, "is_ocr")                                          ? &m->is_ocr
                                                                          : NULL;
}

/* "model" of a file (v1 metadata, v2 item): a model's name. */
static int meta_model(form *f, form_meta *m, const json_t *v, const char *where, size_t i)
{
    if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) >= 64)
        return fail(f, 422, "invalid_model", "%s[%zu].model must be a model's name (GET /api/v1/models)", where, i);
    free(m->model);
    if (!(m->model = strdup(json_string_value(v)))) return fail(f, 500, "out_of_memory", "out of memory");
    return 0;
}

/* "slice" of a file (v1 metadata, v2 item, DeepStack field). */
static int meta_slice(form *f, form_meta *m, const json_t *v, const char *where, size_t i)
{
    char msg[160];
    if (slice_opts_parse(v, &m->slice, msg, sizeof msg) == 0) return 0;
    if (!where) return fail(f, 422, "invalid_slice", "%s", msg);
    return fail(f, 422, "invalid_slice", "%s[%zu].%s", where, i, msg);
}

/* One v2 item: {image_url, filename, is_yolo, is_llm, is_ocr, model, slice}. */
static int json_item(form *f, size_t i, const json_t *item)
{
    if (!json_is_object(item))
        return fail(f, 422, "invalid_item", "data[%zu] must be an object with image_url, filename, is_yolo, is_llm", i);
    const char *k;
    json_t *v;
    const char *url = NULL, *name = NULL;
    char vmsg[128];
    int vr;
    json_object_foreach((json_t *)item, k, v) {
        bool *flag = meta_flag(&f->meta[i], k);
        if (flag) {
            if (!json_is_boolean(v) && !json_is_null(v)) return fail(f, 422, "invalid_item", "data[%zu].%s must be true or false", i, k);
            *flag = json_is_true(v);
        } else if (!strcmp(k, "image_url")) {
            if (!json_is_string(v) || !json_string_length(v)) return fail(f, 422, "invalid_item", "data[%zu].image_url must be a non-empty string", i);
            url = json_string_value(v);
        } else if (!strcmp(k, "filename")) {
            if (!json_is_string(v) && !json_is_null(v)) return fail(f, 422, "invalid_item", "data[%zu].filename must be a string", i);
            name = json_string_value(v);
        } else if (!strcmp(k, "model")) {
            if (meta_model(f, &f->meta[i], v, "data", i)) return -1;
        } else if (!strcmp(k, "slice")) {
            if (meta_slice(f, &f->meta[i], v, "data", i)) return -1;
        } else if ((vr = video_meta_key(&f->meta[i].video, k, v, vmsg, sizeof vmsg)) != 0) {
            if (vr < 0) return fail(f, 422, "invalid_item", "data[%zu].%s", i, vmsg);
        } else {
            return fail(f, 422, "invalid_item", "data[%zu] has unknown key '%.64s' (expected image_url, filename, is_yolo, is_llm, is_ocr, model, slice, fps, max_frames, track, track_stream)", i, k);
        }
    }
    if (!url) return fail(f, 422, "invalid_item", "data[%zu] has no image_url", i);
    form_file *ff = &f->files[i];
    ff->url = strdup(url);
    ff->filename = name && *name ? strdup(name) : fetch_filename_from_url(url);
    if (!ff->url || !ff->filename) return fail(f, 500, "out_of_memory", "out of memory");
    return 0;
}

void form_parse_json(form *f, const char *body, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        fail(f, 400, "malformed_json", "the body is not valid JSON: %s (line %d)", jerr.text, jerr.line);
        return;
    }
    f->meta_given = true;
    if (!json_is_object(root)) {
        fail(f, 422, "invalid_body", "the body must be a JSON object");
        goto out;
    }
    const char *k;
    json_t *v;
    /* The key first, so that a caller without one gets 401 whatever else is wrong. */
    json_t *key = json_object_get(root, "api_key");
    if (json_is_string(key) && !(f->api_key = strdup(json_string_value(key)))) {
        fail(f, 500, "out_of_memory", "out of memory");
        goto out;
    }
    if (f->api_key && strlen(f->api_key) > MAX_API_KEY) f->api_key_too_large = true;
    json_object_foreach(root, k, v) {
        if (!strcmp(k, "api_key")) {
            if (!json_is_string(v) && !json_is_null(v)) {
                fail(f, 422, "invalid_field", "api_key must be a string");
                goto out;
            }
        } else if (!strcmp(k, "query")) {
            if (json_is_string(v)) f->query = strdup(json_string_value(v));
            else if (!json_is_null(v)) {
                fail(f, 422, "invalid_field", "query must be a string");
                goto out;
            }
        } else if (!strcmp(k, "data")) {
            if (!json_is_array(v) && !json_is_null(v)) {
                fail(f, 422, "invalid_field", "data must be an array of {image_url, filename, is_yolo, is_llm}");
                goto out;
            }
        } else {
            int opt = -1;
            for (int i = 0; FORM_OPTION_FIELDS[i]; i++)
                if (!strcmp(k, FORM_OPTION_FIELDS[i])) opt = i;
            if (opt < 0) {
                fail(f, 422, "unknown_field", "unknown field '%.64s' (expected api_key, query, data, confidence, iou, max_detections, classes, mask_format)", k);
                goto out;
            }
            if (!f->params && !(f->params = json_object())) {
                fail(f, 500, "out_of_memory", "out of memory");
                goto out;
            }
            json_object_set(f->params, FORM_OPTION_FIELDS[opt], v);
        }
    }
    json_t *data = json_object_get(root, "data");
    size_t n = json_is_array(data) ? json_array_size(data) : 0;
    if (n > (size_t)f->lim.max_files) {
        fail(f, 413, "too_many_files", "more than %d items in data", f->lim.max_files);
        goto out;
    }
    if (n == 0) goto out; /* form_finish reports it */
    f->files = calloc(n, sizeof *f->files);
    f->meta = calloc(n, sizeof *f->meta);
    if (!f->files || !f->meta) {
        fail(f, 500, "out_of_memory", "out of memory");
        goto out;
    }
    f->nfiles = n;
    for (size_t i = 0; i < n; i++)
        if (json_item(f, i, json_array_get(data, i))) break;
out:
    json_decref(root);
}

size_t form_json_value_bound(const char *body, size_t len)
{
    size_t n = 1;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == ',' || c == '[' || c == '{') {
            n++;
        }
    }
    return n;
}

static int parse_meta(form *f, size_t i)
{
    json_error_t jerr;
    json_t *j = json_loads(f->metadata[i], JSON_REJECT_DUPLICATES, &jerr);
    if (!j) return fail(f, 422, "invalid_metadata", "metadata[%zu] is not valid JSON: %s", i, jerr.text);
    int rc = 0;
    if (!json_is_object(j)) {
        rc = fail(f, 422, "invalid_metadata", "metadata[%zu] must be a JSON object like {\"is_yolo\": true, \"is_llm\": false}", i);
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
        /* is_ocr is Sight's extension; the spec's clients send only the other two. */
        bool *dst = meta_flag(&f->meta[i], k);
        if (!dst && !strcmp(k, "model")) {
            if ((rc = meta_model(f, &f->meta[i], v, "metadata", i))) goto out;
            continue;
        }
        if (!dst && !strcmp(k, "slice")) {
            if ((rc = meta_slice(f, &f->meta[i], v, "metadata", i))) goto out;
            continue;
        }
        char vmsg[128];
        int vr = dst ? 0 : video_meta_key(&f->meta[i].video, k, v, vmsg, sizeof vmsg);
        if (vr < 0) {
            rc = fail(f, 422, "invalid_metadata", "metadata[%zu].%s", i, vmsg);
            goto out;
        }
        if (vr > 0) continue;
        if (!dst) {
            rc = fail(f, 422, "invalid_metadata", "metadata[%zu] has unknown key '%.64s' (expected is_yolo, is_llm, is_ocr, model, slice, fps, max_frames, track, track_stream)", i, k);
            goto out;
        }
        if (!json_is_boolean(v)) {
            rc = fail(f, 422, "invalid_metadata", "metadata[%zu].%s must be true or false", i, k);
            goto out;
        }
        *dst = json_is_true(v);
    }
out:
    json_decref(j);
    return rc;
}

/* DeepStack: the one image is detected, at min_confidence or its 0.4. */
static int deepstack_finish(form *f)
{
    if (f->nfiles == 0) return fail(f, 400, "no_image", "the request has no 'image' part");
    f->meta = calloc(1, sizeof *f->meta);
    if (!f->meta) return fail(f, 500, "out_of_memory", "out of memory");
    f->meta[0].is_yolo = true;
    json_t *slice = f->params ? json_object_get(f->params, "slice") : NULL;
    if (slice) {
        int rc = meta_slice(f, &f->meta[0], slice, NULL, 0);
        json_object_del(f->params, "slice");
        if (rc) return rc;
    }
    if (!f->params) f->params = json_object();
    if (!f->params) return fail(f, 500, "out_of_memory", "out of memory");
    if (!json_object_get(f->params, "confidence") && json_object_set_new(f->params, "confidence", json_string("0.4")))
        return fail(f, 500, "out_of_memory", "out of memory");
    return 0;
}

int form_finish(form *f)
{
    end_value(f);
    if (f->failed) return -1;
    if (f->deepstack) return deepstack_finish(f);
    if (f->nfiles == 0)
        return fail(f, 422, "no_files", f->meta_given ? "'data' is missing or empty" : "the request has no 'files' field");
    if (f->meta_given) return 0;
    if (f->nmetadata != f->nfiles)
        return fail(f, 422, "metadata_count_mismatch", "%zu files but %zu metadata entries: send one metadata JSON string per file",
                    f->nfiles, f->nmetadata);
    f->meta = calloc(f->nfiles, sizeof *f->meta);
    if (!f->meta) return fail(f, 500, "out_of_memory", "out of memory");
    for (size_t i = 0; i < f->nfiles; i++)
        if (parse_meta(f, i)) return -1;
    return 0;
}

uint8_t *form_take_file(form *f, size_t i, size_t *len)
{
    /* An empty part stays NULL, as it always was. */
    if (!f->files[i].data.data) {
        *len = 0;
        return NULL;
    }
    return (uint8_t *)buf_take(&f->files[i].data, len);
}

char *form_take_url(form *f, size_t i)
{
    char *s = f->files[i].url;
    f->files[i].url = NULL;
    return s;
}

char *form_take_model(form *f, size_t i)
{
    char *s = f->meta[i].model;
    f->meta[i].model = NULL;
    return s;
}

char *form_take_filename(form *f, size_t i)
{
    char *s = f->files[i].filename;
    f->files[i].filename = NULL;
    return s;
}
