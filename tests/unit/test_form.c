/* The v1 form model, fed the way libmicrohttpd's post processor feeds it. */
#include <stdlib.h>

#include "check.h"
#include "http/form.h"

static const form_limits LIM = {.max_file_bytes = 100, .max_files = 3};

/* Feeds one part, its value in pieces of `step` bytes; returns -1 once the form has failed. */
static int feed(form *f, const char *key, const char *filename, const char *v, size_t step)
{
    size_t n = strlen(v);
    form_part_begin(f, key, filename);
    for (size_t off = 0; off < n; off += step) form_part_data(f, v + off, n - off < step ? n - off : step);
    form_part_end(f);
    return f->failed ? -1 : 0;
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
    CHECK_EQ_INT(f.files[0].data.len, 4);
    CHECK(memcmp(f.files[1].data.data, "BBBBBB", 6) == 0);
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
    CHECK_EQ_INT(f.files[0].data.len, 5);
    CHECK_EQ_INT(f.files[1].data.len, 3);
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

    /* An oversized key is said to be so (413), not taken for a missing one. */
    form_init(&f, &LIM);
    q[FORM_MAX_API_KEY + 1] = 0;
    CHECK_EQ_INT(feed(&f, "api_key", NULL, q, 100), -1);
    CHECK(f.api_key_too_large);
    CHECK(f.api_key == NULL);
    expect_error("api_key over limit", 413, "field_too_large", &f, -1);
    form_init(&f, &LIM);
    q[FORM_MAX_API_KEY] = 0;
    CHECK_EQ_INT(feed(&f, "api_key", NULL, q, 100), 0);
    CHECK(!f.api_key_too_large);
    form_free(&f);
    free(q);
}

static void test_file_without_name_and_empty_file(void)
{
    form f;
    form_init(&f, &LIM);
    CHECK_EQ_INT(feed(&f, "files", NULL, "", 1), 0);
    feed(&f, "metadata", NULL, "{}", 2);
    CHECK_EQ_INT(form_finish(&f), 0);
    CHECK_EQ_INT(f.nfiles, 1);
    CHECK_STR(f.files[0].filename, "file0");
    CHECK_EQ_INT(f.files[0].data.len, 0);
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

static void test_failure_keeps_only_the_key(void)
{
    /* After a refusal the rest is dropped, but a later api_key is still read
     * (so the key can be checked before the refusal is reported). */
    form f;
    form_init(&f, &LIM);
    feed(&f, "bogus", NULL, "1", 1);
    CHECK_EQ_INT(feed(&f, "files", "a", "x", 1), -1);
    feed(&f, "api_key", NULL, "sk_late", 3);
    CHECK_STR(f.err.code, "unknown_field");
    CHECK_EQ_INT(f.nfiles, 0);
    CHECK_STR(f.api_key, "sk_late");
    CHECK_EQ_INT(form_finish(&f), -1);
    form_free(&f);
}

static void test_urlencoded(void)
{
    form f;
    form_init(&f, &LIM);
    const char *body = "api_key=sk_a%2Bb&query=find+the+serial%21&metadata=%7B%7D";
    form_parse_urlencoded(&f, body, strlen(body));
    CHECK_STR(f.api_key, "sk_a+b");
    CHECK_STR(f.query, "find the serial!");
    CHECK_EQ_INT(f.nmetadata, 1);
    CHECK_EQ_INT(form_finish(&f), -1);
    CHECK_STR(f.err.code, "no_files");
    form_free(&f);

    /* A url-encoded files value is text: refused as such, the key still read after it. */
    form_init(&f, &LIM);
    body = "files=aGVsbG8%3D&metadata=%7B%7D&api_key=sk_k";
    form_parse_urlencoded(&f, body, strlen(body));
    CHECK_EQ_INT(f.nfiles, 0);
    CHECK_STR(f.api_key, "sk_k");
    CHECK_EQ_INT(form_finish(&f), -1);
    CHECK_STR(f.err.code, "files_need_multipart");
    CHECK_EQ_INT(f.err.status, 422);
    form_free(&f);
}

/* Hostile shapes: thousands of parts, a classes list grown by repetition, a query that is not UTF-8. */
static void test_part_count_and_join_limits(void)
{
    form_limits lim = {.max_file_bytes = 100, .max_files = 3, .max_parts = 50};
    form f;
    form_init(&f, &lim);
    for (int i = 0; i < 10000; i++) feed(&f, "query", NULL, "q", 1);
    feed(&f, "api_key", NULL, "sk_late", 3); /* still collected after the refusal */
    CHECK_EQ_INT(form_finish(&f), -1);
    CHECK_EQ_INT(f.err.status, 413);
    CHECK_STR(f.err.code, "too_many_parts");
    CHECK_STR(f.api_key, "sk_late");
    form_free(&f);

    form_init(&f, &LIM); /* max_parts 0: no part limit, the joined list still has one */
    char chunk[4001];
    memset(chunk, 'a', 4000);
    chunk[4000] = 0;
    int i;
    for (i = 0; i < 100 && !f.failed; i++) feed(&f, "classes", NULL, chunk, 4000);
    CHECK(f.failed);
    CHECK(i <= 5);
    CHECK_STR(f.err.code, "field_too_large");
    form_free(&f);

    form_init(&f, &LIM);
    feed(&f, "query", NULL, "bad \xff\xfe, overlong \xc0\xaf, surrogate \xed\xa0\x80.", 3);
    CHECK_STR(f.query, "bad \xef\xbf\xbd\xef\xbf\xbd, overlong \xef\xbf\xbd\xef\xbf\xbd, surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd.");
    form_free(&f);

    CHECK_EQ_INT(form_json_value_bound("{}", 2), 2);
    CHECK_EQ_INT(form_json_value_bound("{\"a\":[1,2,{}],\"b\":\"x,y[\\\",{\"}", 30), 7);
    CHECK_EQ_INT(form_json_value_bound("[{},{},{}]", 10), 7);
}

int main(void)
{
    test_part_count_and_join_limits();
    test_interleaved_fields();
    test_consecutive_same_key();
    test_errors();
    test_file_without_name_and_empty_file();
    test_option_fields();
    test_failure_keeps_only_the_key();
    test_urlencoded();
    return check_report("form");
}
