/* The v1 form model, fed the way libmicrohttpd's post processor feeds it. */
#include <stdlib.h>

#include "check.h"
#include "http/form.h"

static const form_limits LIM = {.max_file_bytes = 100, .max_files = 3};

/* Feeds value v of field key in pieces of `step` bytes (a new value starts at off 0). */
static int feed(form *f, const char *key, const char *filename, const char *v, size_t step)
{
    size_t n = strlen(v);
    if (n == 0) return form_feed(f, key, filename, "", 0, 0);
    for (size_t off = 0; off < n; off += step) {
        size_t k = n - off < step ? n - off : step;
        if (form_feed(f, key, filename, v + off, off, k)) return -1;
    }
    return 0;
}

static void test_interleaved_fields(void)
{
    form f;
    form_init(&f, &LIM);
    CHECK_EQ_INT(feed(&f, "api_key", NULL, "sk_abc", 2), 0);
    CHECK_EQ_INT(feed(&f, "files", "a.jpg", "AAAA", 3), 0);
    CHECK_EQ_INT(feed(&f, "metadata", NULL, "{\"is_yolo\": true, \"is_llm\": false}", 5), 0);
    CHECK_EQ_INT(feed(&f, "metadata", NULL, "{\"is_yolo\": false, \"is_llm\": true}", 64), 0);
    CHECK_EQ_INT(feed(&f, "files", "b.png", "BBBBBB", 1), 0);
    CHECK_EQ_INT(feed(&f, "query", NULL, "find the serial number", 4), 0);
    CHECK_EQ_INT(form_finish(&f), 0);
    CHECK_STR(f.api_key, "sk_abc");
    CHECK_STR(f.query, "find the serial number");
    CHECK_EQ_INT(f.nfiles, 2);
    CHECK_STR(f.files[0].filename, "a.jpg");
    CHECK_EQ_INT(f.files[0].len, 4);
    CHECK(memcmp(f.files[1].data, "BBBBBB", 6) == 0);
    CHECK(f.meta[0].is_yolo && !f.meta[0].is_llm);
    CHECK(!f.meta[1].is_yolo && f.meta[1].is_llm);
    size_t len;
    uint8_t *d = form_take_file(&f, 1, &len);
    CHECK_EQ_INT(len, 6);
    free(d);
    form_free(&f);
}

static void test_consecutive_same_key(void)
{
    /* Two files back to back: only off == 0 tells them apart. */
    form f;
    form_init(&f, &LIM);
    feed(&f, "files", "x", "12345", 2);
    feed(&f, "files", "y", "678", 2);
    feed(&f, "metadata", NULL, "{}", 10);
    feed(&f, "metadata", NULL, "{\"is_llm\":true}", 10);
    CHECK_EQ_INT(form_finish(&f), 0);
    CHECK_EQ_INT(f.nfiles, 2);
    CHECK_EQ_INT(f.files[0].len, 5);
    CHECK_EQ_INT(f.files[1].len, 3);
    CHECK(!f.meta[0].is_yolo && !f.meta[0].is_llm);
    CHECK(f.meta[1].is_llm);
    form_free(&f);
}

static void expect_error(const char *what, unsigned status, const char *code, form *f, int rc)
{
    if (rc == 0) rc = form_finish(f);
    CHECK_EQ_INT(rc, -1);
    CHECK_EQ_INT(f->err.status, status);
    CHECK_STR(f->err.code, code);
    if (rc != -1 || strcmp(f->err.code, code)) fprintf(stderr, "  case: %s\n", what);
    form_free(f);
}

static void test_errors(void)
{
    form f;
    form_init(&f, &LIM);
    feed(&f, "api_key", NULL, "k", 1);
    expect_error("no files", 422, "no_files", &f, 0);

    form_init(&f, &LIM);
    feed(&f, "files", "a", "xx", 1);
    expect_error("no metadata", 422, "metadata_count_mismatch", &f, 0);

    form_init(&f, &LIM);
    feed(&f, "files", "a", "xx", 1);
    feed(&f, "metadata", NULL, "{}", 1);
    feed(&f, "metadata", NULL, "{}", 1);
    expect_error("extra metadata", 422, "metadata_count_mismatch", &f, 0);

    const char *bad_meta[] = {"not json", "[true]", "\"x\"", "{\"is_yolo\": 1}", "{\"is_yolo\": \"true\"}",
                              "{\"is_yolov\": true}", "{\"is_yolo\": true, \"is_yolo\": false}", ""};
    for (size_t i = 0; i < sizeof bad_meta / sizeof *bad_meta; i++) {
        form_init(&f, &LIM);
        feed(&f, "files", "a", "xx", 1);
        feed(&f, "metadata", NULL, bad_meta[i], 3);
        expect_error(bad_meta[i], 422, "invalid_metadata", &f, 0);
    }

    form_init(&f, &LIM);
    expect_error("unknown field", 422, "unknown_field", &f, feed(&f, "file", "a", "xx", 1));

    form_init(&f, &LIM);
    char big[102];
    memset(big, 'z', 101);
    big[101] = 0;
    expect_error("file over limit", 413, "file_too_large", &f, feed(&f, "files", "a", big, 7));

    form_init(&f, &LIM);
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++) rc = feed(&f, "files", "a", "x", 1);
    expect_error("too many files", 413, "too_many_files", &f, rc);

    form_init(&f, &LIM);
    char *q = malloc(20000);
    memset(q, 'q', 19999);
    q[19999] = 0;
    expect_error("query over limit", 413, "field_too_large", &f, feed(&f, "query", NULL, q, 4096));
    free(q);
}

static void test_file_without_name_and_empty_file(void)
{
    form f;
    form_init(&f, &LIM);
    CHECK_EQ_INT(form_feed(&f, "files", NULL, "", 0, 0), 0);
    feed(&f, "metadata", NULL, "{}", 2);
    CHECK_EQ_INT(form_finish(&f), 0);
    CHECK_EQ_INT(f.nfiles, 1);
    CHECK_STR(f.files[0].filename, "file0");
    CHECK_EQ_INT(f.files[0].len, 0);
    form_free(&f);
}

static void test_announced_values(void)
{
    /* libmicrohttpd's pattern: an empty off-0 call, then the data again at off 0. */
    form f;
    form_init(&f, &LIM);
    form_feed(&f, "metadata", NULL, "", 0, 0);
    form_feed(&f, "metadata", NULL, "{}", 0, 2);
    form_feed(&f, "files", "a.png", "", 0, 0);
    form_feed(&f, "files", "a.png", "abc", 0, 3);
    form_feed(&f, "files", "a.png", "de", 3, 2);
    form_feed(&f, "files", "b.png", "", 0, 0);
    form_feed(&f, "files", "b.png", "xy", 0, 2);
    form_feed(&f, "metadata", NULL, "", 0, 0);
    form_feed(&f, "metadata", NULL, "{\"is_yolo\":true}", 0, 16);
    CHECK_EQ_INT(form_finish(&f), 0);
    CHECK_EQ_INT(f.nfiles, 2);
    CHECK_EQ_INT(f.nmetadata, 2);
    CHECK_EQ_INT(f.files[0].len, 5);
    CHECK_EQ_INT(f.files[1].len, 2);
    CHECK(f.meta[1].is_yolo);
    form_free(&f);

    /* A different file name after an announcement is a new value (an empty file). */
    form_init(&f, &LIM);
    form_feed(&f, "files", "empty.png", "", 0, 0);
    form_feed(&f, "files", "b.png", "xy", 0, 2);
    form_feed(&f, "metadata", NULL, "{}", 0, 2);
    form_feed(&f, "metadata", NULL, "{}", 0, 2);
    CHECK_EQ_INT(form_finish(&f), 0);
    CHECK_EQ_INT(f.nfiles, 2);
    CHECK_EQ_INT(f.files[0].len, 0);
    form_free(&f);
}

static void test_option_fields(void)
{
    form f;
    form_init(&f, &LIM);
    feed(&f, "confidence", NULL, "0.5", 1);
    feed(&f, "classes", NULL, "person", 2);
    feed(&f, "files", "a", "x", 1);
    feed(&f, "classes", NULL, "car", 2);
    feed(&f, "metadata", NULL, "{}", 2);
    CHECK_EQ_INT(form_finish(&f), 0);
    CHECK_STR(json_string_value(json_object_get(f.params, "confidence")), "0.5");
    CHECK_STR(json_string_value(json_object_get(f.params, "classes")), "person,car");
    form_free(&f);
}

static void test_failure_is_sticky(void)
{
    form f;
    form_init(&f, &LIM);
    feed(&f, "bogus", NULL, "1", 1);
    CHECK_EQ_INT(feed(&f, "files", "a", "x", 1), -1);
    CHECK_STR(f.err.code, "unknown_field");
    form_free(&f);
}

int main(void)
{
    test_interleaved_fields();
    test_consecutive_same_key();
    test_errors();
    test_file_without_name_and_empty_file();
    test_announced_values();
    test_option_fields();
    test_failure_is_sticky();
    return check_report("form");
}
