#include "ocr/ctc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dict_init(ocr_dict *d, int lines)
{
    d->n = 0;
    d->chars = calloc((size_t)lines + 2, sizeof *d->chars);
    if (!d->chars) return -1;
    if (!(d->chars[0] = strdup(""))) return -1;
    d->n = 1;
    return 0;
}

static int dict_add(ocr_dict *d, const char *s)
{
    if (!(d->chars[d->n] = strdup(s))) return -1;
    d->n++;
    return 0;
}

int ocr_dict_from(const char *const *lines, int n, ocr_dict *d)
{
    if (dict_init(d, n)) {
        ocr_dict_free(d);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (dict_add(d, lines[i])) {
            ocr_dict_free(d);
            return -1;
        }
    if (dict_add(d, " ")) {
        ocr_dict_free(d);
        return -1;
    }
    return 0;
}

int ocr_dict_load(const char *path, ocr_dict *d, char *err, size_t err_len)
{
    memset(d, 0, sizeof *d);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "cannot read dictionary %s", path);
        return -1;
    }
    int lines = 0, c, last = '\n';
    while ((c = fgetc(f)) != EOF) {
        if (c == '\n') lines++;
        last = c;
    }
    if (last != '\n') lines++; /* last line without a newline */
    rewind(f);
    if (lines == 0 || dict_init(d, lines)) {
        fclose(f);
        ocr_dict_free(d);
        snprintf(err, err_len, lines ? "out of memory" : "dictionary %s is empty", path);
        return -1;
    }
    char buf[64];
    while (d->n < lines + 1 && fgets(buf, sizeof buf, f)) {
        size_t k = strcspn(buf, "\r\n");
        if (buf[k] == 0 && !feof(f)) { /* over-long line: not a character dictionary */
            fclose(f);
            ocr_dict_free(d);
            snprintf(err, err_len, "dictionary %s has a line over %zu bytes", path, sizeof buf - 2);
            return -1;
        }
        buf[k] = 0;
        if (dict_add(d, buf)) break;
    }
    fclose(f);
    if (d->n != lines + 1 || dict_add(d, " ")) {
        ocr_dict_free(d);
        snprintf(err, err_len, "cannot read dictionary %s", path);
        return -1;
    }
    return 0;
}

void ocr_dict_free(ocr_dict *d)
{
    if (d->chars)
        for (int i = 0; i < d->n; i++) free(d->chars[i]);
    free(d->chars);
    d->chars = NULL;
    d->n = 0;
}

/* A "word character" for gap spacing: printable ASCII other than space. */
static int is_word(const char *s) { return s[0] > ' ' && (unsigned char)s[0] < 0x7f && s[1] == 0; }

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

char *ocr_join_gaps(const char *const *chars, const int *pos, const float *space_p, int n)
{
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(chars[i]) + 1;
    char *out = malloc(len);
    if (!out) return NULL;
    /* The usual pitch: the median step distance between neighbouring word
     * characters. Needs a few of them to mean anything. */
    int *gaps = n > 1 ? malloc((size_t)(n - 1) * sizeof *gaps) : NULL;
    int ng = 0;
    for (int i = 0; gaps && i + 1 < n; i++)
        if (is_word(chars[i]) && is_word(chars[i + 1])) gaps[ng++] = pos[i + 1] - pos[i];
    int pitch = 0;
    if (ng >= 3) {
        qsort(gaps, (size_t)ng, sizeof *gaps, cmp_int);
        pitch = gaps[ng / 2];
    }
    free(gaps);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && is_word(chars[i - 1]) && is_word(chars[i])) {
            int g = pos[i] - pos[i - 1];
            /* Evidence from the model: the space class had a real share of
             * the probability in the gap but lost to the blank (measured:
             * 0.1-0.5 where a space was dropped, under 0.01 inside most
             * words), and the gap is wider than the usual pitch: a monospace
             * hyphen's wide margins also draw some space probability
             * (0.12 at an ordinary pitch in X7K4-2291). */
            bool model_says = space_p && space_p[i] >= OCR_SPACE_EVIDENCE && (pitch == 0 || g > pitch);
            /* Evidence from the geometry alone: a gap of several pitches
             * (steps are 8 input pixels, so a pitch is only 2-5 steps and
             * one step of jitter is common: hence the wide margin). */
            bool wide = pitch > 0 && g * 2 >= pitch * 5 && g >= pitch + 3;
            if (model_says || wide) out[o++] = ' ';
        }
        size_t k = strlen(chars[i]);
        memcpy(out + o, chars[i], k);
        o += k;
    }
    out[o] = 0;
    return out;
}

int ocr_ctc_decode(const float *probs, int T, int C, const ocr_dict *d, char **text, float *conf)
{
    *text = NULL;
    *conf = 0;
    const char **chars = T > 0 ? malloc((size_t)T * sizeof *chars) : NULL;
    int *pos = T > 0 ? malloc((size_t)T * sizeof *pos) : NULL;
    float *space_p = T > 0 ? malloc((size_t)T * sizeof *space_p) : NULL;
    if (T > 0 && (!chars || !pos || !space_p)) {
        free(chars);
        free(pos);
        free(space_p);
        return -1;
    }
    /* The space is the last class when the dictionary matches the model. */
    const int space = d->n == C ? C - 1 : -1;
    int n = 0, prev = -1;
    float gap_space = 0; /* highest space probability since the last character */
    double sum = 0;
    for (int t = 0; t < T; t++) {
        const float *p = probs + (size_t)t * C;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (p[c] > p[best]) best = c;
        if (best != 0 && best != prev && best < d->n) {
            chars[n] = d->chars[best];
            pos[n] = t;
            space_p[n] = gap_space;
            sum += p[best];
            n++;
            gap_space = 0;
        } else if (best == 0 && space >= 0 && p[space] > gap_space) {
            gap_space = p[space];
        }
        prev = best;
    }
    /* Leading and trailing spaces carry nothing. */
    int a = 0, b = n;
    while (a < b && !strcmp(chars[a], " ")) a++;
    while (b > a && !strcmp(chars[b - 1], " ")) b--;
    if (a < b) space_p[a] = 0;
    *text = n ? ocr_join_gaps(chars + a, pos + a, space_p + a, b - a) : strdup("");
    *conf = n ? (float)(sum / n) : 0.0f;
    free(chars);
    free(pos);
    free(space_p);
    return *text ? 0 : -1;
}
