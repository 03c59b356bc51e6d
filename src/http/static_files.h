/* The playground's files (web/), embedded into the binary at build time by
 * cmake/embed_web.cmake and served at GET / and GET /<name>. */
#ifndef SIGHT_STATIC_FILES_H
#define SIGHT_STATIC_FILES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *path; /* URL path, "/index.html" */
    const char *content_type;
    const char *etag; /* strong ETag, quoted */
    const unsigned char *data;
    size_t len;
} static_file;

extern const static_file static_files[];
extern const size_t static_files_count;

/* The file served at URL path `url` ("/" is /index.html), or NULL. Paths with
 * "..", a query or anything not in the table give NULL. */
const static_file *static_file_find(const char *url);

/* True when an If-None-Match header value names the file's ETag (or is "*"). */
bool static_file_etag_matches(const static_file *f, const char *if_none_match);

#endif
