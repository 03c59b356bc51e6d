#include "http/static_files.h"

#include <string.h>

const static_file *static_file_find(const char *url)
{
    if (!url || url[0] != '/') return NULL;
    if (!strcmp(url, "/")) url = "/index.html";
    for (size_t i = 0; i < static_files_count; i++)
        if (!strcmp(static_files[i].path, url)) return &static_files[i];
    return NULL;
}

bool static_file_etag_matches(const static_file *f, const char *inm)
{
    if (!f || !inm) return false;
    size_t n = strlen(f->etag);
    /* A comma-separated list of entity tags, weak ones (W/"...") compared weakly. */
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (!*p) break;
        if (*p == '*') return true;
        if (p[0] == 'W' && p[1] == '/') p += 2;
        if (!strncmp(p, f->etag, n) && (p[n] == 0 || p[n] == ',' || p[n] == ' ' || p[n] == '\t')) return true;
        while (*p && *p != ',') p++;
    }
    return false;
}
