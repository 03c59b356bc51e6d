#include "http/multipart.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"

#define MAX_BOUNDARY 70
#define MAX_HEADER_BLOCK 8192 /* one part's headers; far above what clients send */
/* Unprocessed input held at once: a header block and what came with it. */
#define MAX_BUFFERED (MAX_HEADER_BLOCK * 4)

typedef enum { S_BODY,
               S_AFTER_DELIM,
               S_HEADERS,
               S_END,
               S_ERROR } mp_state;

struct mp_parser {
    mp_callbacks cb;
    void *ctx;
    char delim[MAX_BOUNDARY + 5]; /* "\r\n--" boundary */
    size_t dlen;
    mp_state state;
    bool in_part; /* a part is open (data goes to part_data) */
    buf in;       /* unprocessed bytes */
    char err[160];
    const char *err_code; /* NULL: malformed_multipart */
};

static int fail_code(mp_parser *p, const char *code, const char *msg)
{
    if (p->state != S_ERROR) {
        snprintf(p->err, sizeof p->err, "%s", msg);
        p->err_code = code;
    }
    p->state = S_ERROR;
    return -1;
}

static int fail(mp_parser *p, const char *msg) { return fail_code(p, NULL, msg); }

int mp_boundary(const char *ct, char *out, size_t out_len)
{
    if (!ct) return -1;
    bool found = false;
    for (const char *s = ct; (s = strchr(s, ';'));) {
        s++;
        while (*s == ' ' || *s == '\t') s++;
        if (strncasecmp(s, "boundary=", 9)) continue;
        /* A second boundary is ambiguous (a proxy may split the body on the
         * other one): refused rather than guessed. */
        if (found) return -1;
        found = true;
        s += 9;
        size_t n = 0;
        if (*s == '"') {
            s++;
            while (s[n] && s[n] != '"') n++;
            if (s[n] != '"') return -1;
        } else {
            while (s[n] && s[n] != ';' && s[n] != ' ' && s[n] != '\t') n++;
        }
        if (n < 1 || n > MAX_BOUNDARY || n >= out_len) return -1;
        memcpy(out, s, n);
        out[n] = 0;
        s += n;
    }
    return found ? 0 : -1;
}

mp_parser *mp_new(const char *boundary, const mp_callbacks *cb, void *ctx)
{
    size_t bl = strlen(boundary);
    if (bl < 1 || bl > MAX_BOUNDARY) return NULL;
    mp_parser *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->cb = *cb;
    p->ctx = ctx;
    p->dlen = (size_t)snprintf(p->delim, sizeof p->delim, "\r\n--%s", boundary);
    /* Pretend the body starts with CRLF: then the first boundary line, which
     * has none before it, is found like every other delimiter. Anything before
     * it is preamble and ignored (we are not in a part yet). */
    buf_init(&p->in, MAX_BUFFERED);
    if (buf_reserve(&p->in, 4095) || buf_add(&p->in, "\r\n", 2)) {
        buf_free(&p->in);
        free(p);
        return NULL;
    }
    p->state = S_BODY;
    return p;
}

void mp_free(mp_parser *p)
{
    if (!p) return;
    buf_free(&p->in);
    free(p);
}

int mp_done(const mp_parser *p) { return p->state == S_END ? 0 : -1; }
const char *mp_error(const mp_parser *p) { return p->err[0] ? p->err : "incomplete multipart body"; }

const char *mp_error_code(const mp_parser *p) { return p->err_code ? p->err_code : "malformed_multipart"; }

/* Copies one header parameter value (token or quoted-string with backslash
 * escapes) into a new string; *s is advanced past it. */
static char *param_value(const char **s)
{
    const char *p = *s;
    size_t cap = strlen(p) + 1, n = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            /* Only \" and \\ are escapes: browsers send other backslashes
             * literally (HTML5 form encoding), Go and httpx escape these two. */
            if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) p++;
            out[n++] = *p;
        }
        if (*p == '"') p++;
    } else {
        while (*p && *p != ';' && *p != ' ' && *p != '\t') out[n++] = *p++;
    }
    out[n] = 0;
    *s = p;
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* RFC 5987 ext-value: charset'lang'pct-encoded. Only UTF-8 (and ASCII, its
 * subset) is decoded; anything else is ignored and the plain filename used. */
static char *ext_value(const char *v)
{
    const char *q1 = strchr(v, '\'');
    const char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
    if (!q2) return NULL;
    size_t cl = (size_t)(q1 - v);
    if (!((cl == 5 && !strncasecmp(v, "utf-8", 5)) || (cl == 8 && !strncasecmp(v, "us-ascii", 8)))) return NULL;
    const char *s = q2 + 1;
    char *out = malloc(strlen(s) + 1), *o = out;
    if (!out) return NULL;
    while (*s) {
        if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *o++ = (char)(hexval(s[1]) << 4 | hexval(s[2]));
            s += 3;
        } else {
            *o++ = *s++;
        }
    }
    *o = 0;
    return out;
}

/* How many bytes ext_value makes of v (valid ext-value): a decoded %00
 * shows as a shorter string. */
static size_t decoded_len(const char *v)
{
    const char *s = strchr(strchr(v, '\'') + 1, '\'') + 1;
    size_t n = 0;
    while (*s) {
        s += *s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0 ? 3 : 1;
        n++;
    }
    return n;
}

/* Parses one part's header block (lines separated by CRLF, NUL-terminated)
 * and opens the part. */
static int begin_part(mp_parser *p, char *block)
{
    char *name = NULL, *filename = NULL, *filename_ext = NULL, *ctype = NULL;
    bool disposition = false;
    int rc = 0;
    for (char *line = block, *next; line && *line; line = next) {
        next = strstr(line, "\r\n");
        if (next) {
            *next = 0;
            next += 2;
        }
        char *colon = strchr(line, ':');
        if (!colon) {
            rc = fail(p, "malformed part header");
            goto out;
        }
        *colon = 0;
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        if (!strcasecmp(line, "Content-Type")) {
            if (ctype) {
                rc = fail_code(p, "ambiguous_part", "a part with two Content-Type headers");
                goto out;
            }
            if (!(ctype = strdup(v))) {
                rc = fail(p, "out of memory");
                goto out;
            }
            continue;
        }
        if (strcasecmp(line, "Content-Disposition")) continue;
        /* Two of them, or a parameter twice: one reader (a proxy that checked
         * the request) may take the first and another the last. Refused
         * rather than guessed, like a second boundary. */
        if (disposition) {
            rc = fail_code(p, "ambiguous_part", "a part with two Content-Disposition headers");
            goto out;
        }
        if (strncasecmp(v, "form-data", 9)) {
            rc = fail(p, "part is not form-data");
            goto out;
        }
        disposition = true;
        for (const char *s = v + 9; *s;) {
            while (*s == ';' || *s == ' ' || *s == '\t') s++;
            const char *eq = strchr(s, '=');
            if (!eq) break;
            size_t kl = (size_t)(eq - s);
            while (kl && (s[kl - 1] == ' ' || s[kl - 1] == '\t')) kl--;
            const char *key = s;
            s = eq + 1;
            while (*s == ' ' || *s == '\t') s++;
            char *val = param_value(&s);
            if (!val) {
                rc = fail(p, "out of memory");
                goto out;
            }
            char **dst = kl == 4 && !strncasecmp(key, "name", 4) ? &name
                : kl == 8 && !strncasecmp(key, "filename", 8)    ? &filename
                : kl == 9 && !strncasecmp(key, "filename*", 9)   ? &filename_ext
                                                                 : NULL;
            if (dst && *dst) {
                free(val);
                rc = fail_code(p, "ambiguous_part",
                               dst == &name           ? "a part with two name parameters"
                                   : dst == &filename ? "a part with two filename parameters"
                                                      : "a part with two filename* parameters");
                goto out;
            }
            if (dst) *dst = val;
            else free(val);
        }
    }
    if (!disposition || !name) {
        rc = fail(p, "part without Content-Disposition: form-data; name=...");
        goto out;
    }
    if (filename_ext) {
        /* filename* wins when it can be decoded (RFC 7578 section 4.2 / RFC 6266). */
        char *dec = ext_value(filename_ext);
        if (dec && strlen(dec) != decoded_len(filename_ext)) {
            /* %00: a name cut short where the client meant more. */
            free(dec);
            rc = fail_code(p, "invalid_filename", "a part's filename* holds a NUL byte");
            goto out;
        }
        if (dec) {
            free(filename);
            filename = dec;
        }
    }
    p->in_part = true;
    if (p->cb.part_begin(p->ctx, name, filename, ctype) != 0) rc = fail(p, "stopped");
out:
    free(name);
    free(filename);
    free(filename_ext);
    free(ctype);
    return rc;
}

/* A NUL byte in a part's header block (b, hl bytes): read as a C string the
 * header would end there, silently shortening a name. In Content-Disposition
 * it is a name's or file name's. */
static int refuse_nul(mp_parser *p, const char *b, size_t hl)
{
    const char *nul = memchr(b, 0, hl);
    const char *line = b;
    for (const char *q; (q = memmem(line, (size_t)(nul - line), "\r\n", 2));) line = q + 2;
    if ((size_t)(nul - line) >= 19 && !strncasecmp(line, "Content-Disposition", 19))
        return fail_code(p, "invalid_filename", "a NUL byte in a part's name or filename");
    return fail(p, "a NUL byte in a part's headers");
}

static int emit(mp_parser *p, const char *data, size_t n)
{
    if (!p->in_part || n == 0) return 0; /* preamble */
    return p->cb.part_data(p->ctx, data, n) == 0 ? 0 : fail(p, "stopped");
}

static int end_part(mp_parser *p)
{
    if (!p->in_part) return 0;
    p->in_part = false;
    return p->cb.part_end(p->ctx) == 0 ? 0 : fail(p, "stopped");
}

/* Works through buf as far as it can; leaves in buf what needs more input. */
static int process(mp_parser *p)
{
    size_t pos = 0;
    while (pos < p->in.len && p->state != S_ERROR && p->state != S_END) {
        char *b = p->in.data + pos;
        size_t avail = p->in.len - pos;
        if (p->state == S_BODY) {
            char *hit = memmem(b, avail, p->delim, p->dlen);
            if (!hit) {
                /* Keep what could be the start of a delimiter split across reads. */
                size_t safe = avail >= p->dlen ? avail - (p->dlen - 1) : 0;
                if (emit(p, b, safe)) return -1;
                pos += safe;
                break;
            }
            if (emit(p, b, (size_t)(hit - b)) || end_part(p)) return -1;
            pos += (size_t)(hit - b) + p->dlen;
            p->state = S_AFTER_DELIM;
        } else if (p->state == S_AFTER_DELIM) {
            /* "--" closes the body; else optional padding, then CRLF and headers. */
            if (avail < 2) break;
            if (b[0] == '-' && b[1] == '-') {
                p->state = S_END;
                pos += 2;
                break;
            }
            size_t k = 0;
            while (k < avail && (b[k] == ' ' || b[k] == '\t')) k++;
            /* The padding limit holds however the body is split into reads. */
            if (k > 64) return fail(p, "malformed delimiter line");
            if (k + 2 > avail) break;
            if (b[k] != '\r' || b[k + 1] != '\n') return fail(p, "malformed delimiter line");
            pos += k + 2;
            p->state = S_HEADERS;
        } else if (p->state == S_HEADERS) {
            char *end = memmem(b, avail, "\r\n\r\n", 4);
            bool empty_block = avail >= 2 && b[0] == '\r' && b[1] == '\n';
            if (!end && !empty_block) {
                /* The blank line could still start in the last 3 bytes, so only
                 * more than that over the limit is certain to be too large. */
                if (avail > MAX_HEADER_BLOCK + 3) return fail(p, "part headers too large");
                break;
            }
            size_t hl = empty_block ? 0 : (size_t)(end - b);
            if (hl > MAX_HEADER_BLOCK) return fail(p, "part headers too large");
            if (memchr(b, 0, hl)) return refuse_nul(p, b, hl);
            char *block = malloc(hl + 1);
            if (!block) return fail(p, "out of memory");
            memcpy(block, b, hl);
            block[hl] = 0;
            int rc = begin_part(p, block);
            free(block);
            if (rc) return -1;
            pos += empty_block ? 2 : hl + 4;
            /* The part's data starts right after the blank line; the CRLF that
             * ends it belongs to the next delimiter. */
            p->state = S_BODY;
        }
    }
    buf_consume(&p->in, pos);
    return p->state == S_ERROR ? -1 : 0;
}

/* Inside a part's data, with at most a delimiter's worth of bytes held: the
 * caller's bytes go to part_data straight from its buffer, so a file's bytes
 * are copied once on the way in (into the form's buffer), not first into
 * ours too. Returns how many bytes of data it took; 0 leaves them to the
 * buffered path (a delimiter that may start in the held bytes, a short
 * piece, headers). */
static size_t feed_direct(mp_parser *p, const char *data, size_t len)
{
    const size_t held = p->in.len, keep = p->dlen - 1;
    if (p->state != S_BODY || !p->in_part || held > keep || len < p->dlen) return 0;
    if (held) {
        /* A delimiter starting in the held bytes ends within the next keep. */
        char joint[2 * sizeof p->delim];
        memcpy(joint, p->in.data, held);
        memcpy(joint + held, data, keep);
        const char *hit = memmem(joint, held + keep, p->delim, p->dlen);
        if (hit && (size_t)(hit - joint) < held) return 0;
        if (emit(p, p->in.data, held)) return 0;
        buf_reset(&p->in);
    }
    const char *hit = memmem(data, len, p->delim, p->dlen);
    if (hit) {
        size_t n = (size_t)(hit - data);
        if (emit(p, data, n) || end_part(p)) return 0;
        p->state = S_AFTER_DELIM;
        return n + p->dlen;
    }
    /* What could be the start of a delimiter split across reads is held. */
    if (emit(p, data, len - keep)) return 0;
    if (buf_add(&p->in, data + len - keep, keep)) {
        fail(p, "out of memory");
        return 0;
    }
    return len;
}

int mp_feed(mp_parser *p, const char *data, size_t len)
{
    if (p->state == S_ERROR) return -1;
    if (p->state == S_END) return 0; /* epilogue: ignored */
    while (len > 0) {
        size_t used = feed_direct(p, data, len);
        if (p->state == S_ERROR) return -1;
        if (used) {
            data += used;
            len -= used;
            continue;
        }
        /* Feed in slices so the buffer stays small whatever the caller passes. */
        if (buf_room(&p->in) < 1024 && buf_reserve(&p->in, 1024)) return fail(p, "out of memory");
        size_t room = buf_room(&p->in);
        if (room == 0) return fail(p, "part headers too large");
        /* Small slices: after a part's headers its data takes the direct path. */
        size_t n = len < room ? len : room;
        if (n > 4096) n = 4096;
        memcpy(p->in.data + p->in.len, data, n);
        buf_commit(&p->in, n);
        data += n;
        len -= n;
        if (process(p)) return -1;
        if (p->state == S_END) {
            buf_reset(&p->in);
            return 0;
        }
    }
    return 0;
}
