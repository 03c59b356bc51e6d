/* The local provider's reading of OCR text: labels and the values after them,
 * text that has the form of a kind of value, and the OCR lines themselves. */
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/local_text.h"
#include "util/json_out.h"

static const char *const KIND_NAME[] = {"serial_number", "model", "part_number", "lot", "code",
                                        "plate", "price", "date", "text"};
/* Labels that introduce a value on a plate or tag, longest first so "serial
 * no" wins over "serial". Matched case-insensitively at word boundaries. */
static const char *const LABELS[][20] = {
    [K_SERIAL] = {"serial number", "serial no", "serial nr", "serial #", "ser. no", "ser no", "serial", "s/n", "s.n.", "sn", NULL},
    [K_MODEL] = {"model number", "model no", "model nr", "model", "mod.", "m/n", "type", NULL},
    [K_PART] = {"part number", "part no", "part nr", "part #", "p/n", "pn", "ref.", "ref", NULL},
    [K_LOT] = {"lot number", "lot no", "batch number", "batch no", "lot", "batch", "l/n", NULL},
    [K_CODE] = {"product code", "item code", "code", "sku", "ean", "upc", "id", NULL},
    [K_PLATE] = {NULL},
    [K_PRICE] = {"price", "total", "amount", "cost", NULL},
    [K_DATE] = {"expiry date", "expiration date", "exp. date", "exp date", "expires", "best before end", "best before",
                "use by", "mfg date", "mfg", "mfd", "exp.", "exp", "bb", "date", NULL},
};

/* ---- small text helpers ---- */

char *text_lower_dup(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    for (size_t i = 0; i <= n; i++) d[i] = (char)tolower((unsigned char)s[i]);
    return d;
}

bool text_is_word_char(char c) { return isalnum((unsigned char)c) != 0; }

/* Finds needle in hay (both lower case) at word boundaries; returns its offset or -1. */
long text_find_word(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) {
        bool left = p == hay || !text_is_word_char(p[-1]) || !text_is_word_char(needle[0]);
        bool right = !text_is_word_char(p[n]) || !text_is_word_char(needle[n - 1]);
        if (left && right) return p - hay;
    }
    return -1;
}

/* Skips separators and filler ("no.", "number", "#") between a label and its value. */
static const char *skip_to_value(const char *s)
{
    for (;;) {
        while (*s && strchr(" \t:#.=-_|>)", *s)) s++;
        static const char *const filler[] = {"number", "no.", "no", "nr.", "nr", "num", NULL};
        bool again = false;
        for (int i = 0; filler[i]; i++) {
            size_t n = strlen(filler[i]);
            if (!strncasecmp(s, filler[i], n) && !text_is_word_char(s[n])) {
                s += n;
                again = true;
                break;
            }
        }
        if (!again) return s;
    }
}

static bool has_digit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isdigit((unsigned char)s[i])) return true;
    return false;
}

static bool has_alpha(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isalpha((unsigned char)s[i])) return true;
    return false;
}

/* The value of an identifier: its first token, plus the tokens after it that
 * carry digits ("AB12 34567" read as two words), without trailing punctuation. */
static char *identifier_value(const char *s)
{
    const char *end = s;
    const char *p = s;
    bool first = true;
    while (*p) {
        while (*p == ' ') p++;
        const char *t = p;
        while (*p && *p != ' ') p++;
        if (p == t) break;
        if (!first && !has_digit(t, (size_t)(p - t))) break;
        end = p;
        first = false;
    }
    while (end > s && strchr(".,;:)", end[-1])) end--;
    if (end == s) return NULL;
    return strndup(s, (size_t)(end - s));
}

/* ---- OCR lines ---- */


int text_load_lines(const json_t *earlier, ocr_line **out, size_t *n)
{
    json_t *lines = json_object_get(json_object_get(earlier, "ocr"), "lines");
    *n = 0;
    *out = calloc(json_array_size(lines) + 1, sizeof **out);
    if (!*out) return -1;
    size_t i;
    json_t *ln;
    json_array_foreach(lines, i, ln) {
        const char *t = json_string_value(json_object_get(ln, "text"));
        if (!t || !*t) continue;
        ocr_line *o = &(*out)[(*n)++];
        o->obj = ln;
        o->text = t;
        o->lower = text_lower_dup(t);
        o->conf = json_number_value(json_object_get(ln, "confidence"));
        json_t *box = json_object_get(ln, "box");
        double miny = 1e18, maxy = -1e18, sx = 0, sy = 0;
        size_t k, np = json_array_size(box);
        for (k = 0; k < np; k++) {
            double x = json_number_value(json_array_get(json_array_get(box, k), 0));
            double y = json_number_value(json_array_get(json_array_get(box, k), 1));
            sx += x;
            sy += y;
            if (y < miny) miny = y;
            if (y > maxy) maxy = y;
        }
        o->cx = np ? sx / np : 0;
        o->cy = np ? sy / np : 0;
        o->h = np ? maxy - miny : 0;
        if (!o->lower) return -1;
    }
    return 0;
}

void text_free_lines(ocr_line *l, size_t n)
{
    for (size_t i = 0; i < n; i++) free(l[i].lower);
    free(l);
}

/* The line a label without a value on its own line refers to: the nearest one
 * to its right on the same row, else the nearest below. */
static const ocr_line *value_line(const ocr_line *l, size_t n, const ocr_line *label)
{
    const ocr_line *best = NULL;
    double best_d = 1e18;
    double h = label->h > 1 ? label->h : 10;
    for (size_t i = 0; i < n; i++) {
        const ocr_line *o = &l[i];
        if (o == label) continue;
        double dx = o->cx - label->cx, dy = o->cy - label->cy;
        bool right = dx > 0 && dy > -0.6 * h && dy < 0.6 * h;
        bool below = dy > 0.3 * h && dy < 4 * h;
        if (!right && !below) continue;
        double d = right ? dx : dy * 3 + (dx < 0 ? -dx : dx); /* prefer the same row */
        if (d < best_d) {
            best_d = d;
            best = o;
        }
    }
    return best;
}

json_t *text_match(kind k, const char *value, size_t vlen, const ocr_line *o, bool labelled)
{
    json_t *m = json_object();
    json_object_set_new(m, "kind", json_string(KIND_NAME[k]));
    json_object_set_new(m, "text", json_string_lossy(value, vlen)); /* a cut inside UTF-8 must not drop the key */
    json_object_set_new(m, "line", json_string(o->text));
    json_object_set(m, "box", json_object_get(o->obj, "box") ? json_object_get(o->obj, "box") : json_null());
    json_object_set(m, "confidence", json_object_get(o->obj, "confidence") ? json_object_get(o->obj, "confidence") : json_null());
    json_object_set_new(m, "labelled", json_boolean(labelled));
    return m;
}

/* First match of re in s (an original-case line), as offsets; re is case-insensitive. */
static bool re_find(const regex_t *re, const char *s, regoff_t *so, regoff_t *eo)
{
    regmatch_t m[1];
    if (regexec(re, s, 1, m, 0) != 0) return false;
    *so = m[0].rm_so;
    *eo = m[0].rm_eo;
    return true;
}

/* Values written after a label of kind k ("S/N: AB12-34567"). */
void text_find_labelled(kind k, const ocr_line *l, size_t n, const regex_t *pattern, json_t *out)
{
    for (size_t i = 0; i < n; i++) {
        for (int a = 0; LABELS[k][a]; a++) {
            long at = text_find_word(l[i].lower, LABELS[k][a]);
            if (at < 0) continue;
            const ocr_line *src = &l[i];
            const char *v = skip_to_value(l[i].text + at + strlen(LABELS[k][a]));
            if (!*v) { /* the label alone: its value is on the next line */
                src = value_line(l, n, &l[i]);
                if (!src) break;
                v = src->text;
            }
            if (pattern) {
                regoff_t so, eo;
                if (re_find(pattern, v, &so, &eo)) json_array_append_new(out, text_match(k, v + so, (size_t)(eo - so), src, true));
            } else {
                char *val = identifier_value(v);
                /* An identifier has a digit; "Made in Germany" after "Type" is not one. */
                if (val && has_digit(val, strlen(val))) json_array_append_new(out, text_match(k, val, strlen(val), src, true));
                free(val);
            }
            break;
        }
    }
}

/* Text that has the form of the wanted kind, wherever it stands. */
void text_find_unlabelled(kind k, const ocr_line *l, size_t n, const regex_t *pattern, json_t *out)
{
    for (size_t i = 0; i < n; i++) {
        const char *t = l[i].text;
        if (pattern) {
            regoff_t so, eo;
            if (re_find(pattern, t, &so, &eo)) json_array_append_new(out, text_match(k, t + so, (size_t)(eo - so), &l[i], false));
            continue;
        }
        if (k == K_PLATE) {
            /* A plate is a short line of capitals and digits: 4-8 of them, both kinds, at most 3 groups. */
            size_t alnum = 0, groups = 0, len = strlen(t);
            bool ok = len <= 14, in = false;
            for (size_t c = 0; c < len && ok; c++) {
                unsigned char ch = (unsigned char)t[c];
                if (isdigit(ch) || isupper(ch)) {
                    alnum++;
                    if (!in) groups++;
                    in = true;
                } else if (ch == ' ' || ch == '-' || ch == '.' || ch == ':') in = false;
                else ok = false;
            }
            if (ok && alnum >= 4 && alnum <= 8 && groups <= 3 && has_digit(t, len) && has_alpha(t, len))
                json_array_append_new(out, text_match(k, t, len, &l[i], false));
            continue;
        }
        /* Identifiers: the longest token mixing letters and digits, or a long run of digits. */
        const char *p = t, *best = NULL;
        size_t best_len = 0;
        while (*p) {
            while (*p == ' ') p++;
            const char *s = p;
            while (*p && *p != ' ') p++;
            size_t len = (size_t)(p - s);
            while (len && strchr(".,;:)", s[len - 1])) len--;
            size_t digits = 0;
            for (size_t c = 0; c < len; c++) digits += isdigit((unsigned char)s[c]) != 0;
            bool id = len >= 5 && digits >= 2 && (has_alpha(s, len) || digits >= 6);
            if (id && len > best_len) {
                best = s;
                best_len = len;
            }
        }
        if (best) json_array_append_new(out, text_match(k, best, best_len, &l[i], false));
    }
}

static int by_confidence(const void *a, const void *b)
{
    double ca = json_number_value(json_object_get(*(json_t *const *)a, "confidence"));
    double cb = json_number_value(json_object_get(*(json_t *const *)b, "confidence"));
    return ca < cb ? 1 : ca > cb ? -1
                                 : 0;
}

void text_sort_matches(json_t *arr)
{
    size_t n = json_array_size(arr);
    if (n < 2) return;
    json_t **v = malloc(n * sizeof *v);
    if (!v) return;
    for (size_t i = 0; i < n; i++) v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof *v, by_confidence);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, v[i]);
    free(v);
}
