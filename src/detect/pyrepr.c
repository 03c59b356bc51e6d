#include "detect/pyrepr.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <strings.h>

#include "util/array.h"
#include "util/buf.h"

#define MAX_CLASSES 100000

static void skip_ws(const char **p)
{
    while (isspace((unsigned char)**p)) (*p)++;
}

static int parse_int(const char **p, long *out)
{
    skip_ws(p);
    char *end;
    errno = 0;
    long v = strtol(*p, &end, 10);
    if (end == *p || errno) return -1;
    *p = end;
    *out = v;
    return 0;
}

/* A Python string literal in single or double quotes with the common escapes. */
static char *parse_str(const char **p)
{
    skip_ws(p);
    char q = **p;
    if (q != '\'' && q != '"') return NULL;
    const char *s = *p + 1;
    /* The literal only shrinks when its escapes are resolved: the input,
     * already in memory, bounds it. */
    buf out;
    buf_init(&out, SIZE_MAX);
    for (; *s && *s != q; s++) {
        char c = *s;
        if (c == '\\') {
            s++;
            switch (*s) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case '\\':
            case '\'':
            case '"': c = *s; break;
            case 0: buf_free(&out); return NULL;
            default: c = *s; break; /* rare escapes: keep the character */
            }
        }
        if (buf_addc(&out, c)) {
            buf_free(&out);
            return NULL;
        }
    }
    if (*s != q) {
        buf_free(&out);
        return NULL;
    }
    *p = s + 1;
    return buf_take(&out, NULL);
}

void pyrepr_free_names(char **names, int n)
{
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int set_name(char ***names, int *n, long id, char *name)
{
    if (id < 0 || id >= MAX_CLASSES) return -1;
    if (id >= *n) {
        char **nn = array_resize(*names, (size_t)id + 1, sizeof *nn);
        if (!nn) return -1;
        for (long i = *n; i <= id; i++) nn[i] = NULL;
        *names = nn;
        *n = (int)id + 1;
    }
    free((*names)[id]);
    (*names)[id] = name;
    return 0;
}

int pyrepr_parse_names(const char *s, char ***out, int *count)
{
    char **names = NULL;
    int n = 0;
    const char *p = s;
    skip_ws(&p);
    char open = *p, close = open == '{' ? '}' : open == '[' ? ']'
                                                            : 0;
    if (!close) return -1;
    p++;
    long next_id = 0;
    for (;;) {
        skip_ws(&p);
        if (*p == close) {
            p++;
            break;
        }
        long id = next_id;
        if (open == '{') {
            if (parse_int(&p, &id)) goto fail;
            skip_ws(&p);
            if (*p++ != ':') goto fail;
        }
        char *name = parse_str(&p);
        if (!name || set_name(&names, &n, id, name)) {
            free(name);
            goto fail;
        }
        next_id = id + 1;
        skip_ws(&p);
        if (*p == ',') p++;
        else if (*p != close) goto fail;
    }
    skip_ws(&p);
    if (*p || n == 0) goto fail;
    for (int i = 0; i < n; i++) {
        if (names[i]) continue;
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        if (!(names[i] = strdup(num))) goto fail;
    }
    *out = names;
    *count = n;
    return 0;
fail:
    pyrepr_free_names(names, n);
    return -1;
}

int pyrepr_parse_ints(const char *s, int *vals, int max)
{
    const char *p = s;
    skip_ws(&p);
    char close = *p == '[' ? ']' : *p == '(' ? ')'
                                             : 0;
    if (close) p++;
    int n = 0;
    for (;;) {
        skip_ws(&p);
        if (close && *p == close) {
            p++;
            break;
        }
        long v;
        if (parse_int(&p, &v) || v < INT_MIN || v > INT_MAX) return -1;
        if (n < max) vals[n] = (int)v;
        n++;
        skip_ws(&p);
        if (!close) break;
        if (*p == ',') p++;
        else if (*p != close) return -1;
    }
    skip_ws(&p);
    if (*p) return -1;
    return n < max ? n : max;
}

int pyrepr_parse_bool(const char *s)
{
    if (!strcasecmp(s, "true") || !strcmp(s, "1")) return 1;
    if (!strcasecmp(s, "false") || !strcmp(s, "0")) return 0;
    return -1;
}
