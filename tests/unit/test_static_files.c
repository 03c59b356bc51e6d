#include <stdio.h>
#include <string.h>

#include "check.h"
#include "http/static_files.h"

int main(void)
{
    /* The page and its assets are embedded from web/. */
    const static_file *idx = static_file_find("/");
    CHECK(idx != NULL);
    if (idx) {
        CHECK_STR(idx->path, "/index.html");
        CHECK_STR(idx->content_type, "text/html; charset=utf-8");
        CHECK(idx->len > 100);
        CHECK(memmem(idx->data, idx->len, "<!doctype html>", 15) != NULL);
        CHECK(idx->etag[0] == '"' && idx->etag[strlen(idx->etag) - 1] == '"');
    }
    CHECK(static_file_find("/index.html") == idx);
    const static_file *js = static_file_find("/app.js");
    CHECK(js != NULL);
    if (js) CHECK_STR(js->content_type, "text/javascript; charset=utf-8");
    const static_file *css = static_file_find("/style.css");
    CHECK(css != NULL);
    if (css) CHECK_STR(css->content_type, "text/css; charset=utf-8");
    /* Anything else is not a file. */
    CHECK(static_file_find("/nope.js") == NULL);
    CHECK(static_file_find("/../CMakeLists.txt") == NULL);
    CHECK(static_file_find("app.js") == NULL);
    CHECK(static_file_find("") == NULL);
    CHECK(static_file_find(NULL) == NULL);
    CHECK(static_file_find("/healthz") == NULL);
    /* Every embedded file has a distinct path. */
    for (size_t i = 0; i < static_files_count; i++)
        for (size_t j = i + 1; j < static_files_count; j++) CHECK(strcmp(static_files[i].path, static_files[j].path));
    /* If-None-Match. */
    if (idx) {
        CHECK(static_file_etag_matches(idx, idx->etag));
        CHECK(static_file_etag_matches(idx, "*"));
        char list[128];
        snprintf(list, sizeof list, "\"abc\", W/%s", idx->etag);
        CHECK(static_file_etag_matches(idx, list));
        CHECK(!static_file_etag_matches(idx, "\"abc\""));
        CHECK(!static_file_etag_matches(idx, NULL));
        CHECK(!static_file_etag_matches(idx, ""));
    }
    return check_report("static_files");
}
