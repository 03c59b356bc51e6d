/* The local provider: no generative model, so it never invents an answer.
 * It reads the query for what is wanted and answers from what earlier stages
 * found on the image:
 *  - text-seeking queries (serial number, model, part, lot, code, plate,
 *    price, date, "what does it say") -> the matching OCR text, its box and
 *    confidence; a value next to its label ("S/N: X") wins over text that
 *    merely looks like one;
 *  - counting and presence queries ("how many people", "is there a dog")
 *    -> the detections of that class;
 *  - anything else -> the OCR text and detections, with a sentence saying that
 *    no language model is configured.
 * The result says "provider": "local" so nobody mistakes it for an LLM. */
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm_internal.h"
#include "llm/local_text.h"
#include "util/json_out.h"

static const char *const KIND_WORDS[] = {"serial number", "model", "part number", "lot/batch number", "code",
                                         "licence plate", "price", "date", "text"};

/* Query words that select each kind, checked in this order (first hit wins). */
static const struct {
    kind k;
    const char *words[16];
} QUERY_WORDS[] = {
    {K_SERIAL, {"serial", "s/n", "sn", NULL}},
    {K_PLATE, {"plate", "license", "licence", "registration", "number plate", NULL}},
    {K_PRICE, {"price", "cost", "how much", "costs", "$", "€", "£", NULL}},
    {K_DATE, {"date", "expiry", "expiration", "expires", "best before", "use by", "when was", "manufactured", NULL}},
    {K_PART, {"part number", "part no", "p/n", NULL}},
    {K_LOT, {"lot", "batch", NULL}},
    {K_MODEL, {"model", NULL}},
    {K_CODE, {"code", "sku", "ean", "upc", "identifier", "id", NULL}},
    {K_TEXT, {"text", "read", "written", "write", "say", "says", "label", "sign", "word", "words", "number", NULL}},
};

#define DATE_RE                                                                                          \
    "([0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}|[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{2,4}|"                  \
    "[0-9]{1,2}[ .-]?(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\\.?[ .,-]*[0-9]{2,4}|" \
    "(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\\.?[ .-]*[0-9]{1,2},?[ .-]*[0-9]{4}|"  \
    "[0-9]{1,2}/[0-9]{4})"
#define PRICE_RE                                                                  \
    "((\\$|€|£|¥|usd|eur|gbp|chf)[ ]?[0-9]+([.,][0-9]{3})*([.,][0-9]{1,2})?|" \
    "[0-9]+([.,][0-9]{3})*([.,][0-9]{1,2})?[ ]?(\\$|€|£|¥|usd|eur|gbp|chf|kr|zł))"

/* ---- the query ---- */

static kind text_kind(const char *q)
{
    for (size_t i = 0; i < sizeof QUERY_WORDS / sizeof QUERY_WORDS[0]; i++)
        for (int w = 0; QUERY_WORDS[i].words[w]; w++)
            if (text_find_word(q, QUERY_WORDS[i].words[w]) >= 0) return QUERY_WORDS[i].k;
    return K_NONE;
}

/* Words a person uses for the detector's classes (COCO names). */
static const struct {
    const char *word, *cls;
} SYNONYMS[] = {
    {"people", "person"},
    {"persons", "person"},
    {"man", "person"},
    {"men", "person"},
    {"woman", "person"},
    {"women", "person"},
    {"child", "person"},
    {"children", "person"},
    {"kid", "person"},
    {"kids", "person"},
    {"human", "person"},
    {"humans", "person"},
    {"pedestrian", "person"},
    {"pedestrians", "person"},
    {"adult", "person"},
    {"adults", "person"},
    {"bike", "bicycle"},
    {"bikes", "bicycle"},
    {"motorbike", "motorcycle"},
    {"motorbikes", "motorcycle"},
    {"phone", "cell phone"},
    {"phones", "cell phone"},
    {"television", "tv"},
    {"plane", "airplane"},
    {"planes", "airplane"},
    {"sofa", "couch"},
    {"sofas", "couch"},
    {"puppy", "dog"},
    {"puppies", "dog"},
    {"kitten", "cat"},
    {"kittens", "cat"},
    {"mice", "mouse"},
    {"buses", "bus"},
    {"glasses", "wine glass"},
    {"knives", "knife"},
    {"sheep", "sheep"},
};

/* Lower-case singular of one word (buses -> bus, ponies -> pony, cars -> car). */
static void singular(const char *w, char *out, size_t len)
{
    for (size_t i = 0; i < sizeof SYNONYMS / sizeof SYNONYMS[0]; i++)
        if (!strcmp(w, SYNONYMS[i].word)) {
            snprintf(out, len, "%s", SYNONYMS[i].cls);
            return;
        }
    size_t n = strlen(w);
    snprintf(out, len, "%s", w);
    if (n > 3 && !strcmp(w + n - 3, "ies")) snprintf(out + n - 3, len - (n - 3), "y");
    else if (n > 4 && (!strcmp(w + n - 4, "ches") || !strcmp(w + n - 4, "shes") || !strcmp(w + n - 3, "xes") || !strcmp(w + n - 3, "ses")))
        out[n - 2] = 0;
    else if (n > 2 && w[n - 1] == 's' && w[n - 2] != 's') out[n - 1] = 0;
}

typedef enum { Q_NONE,
               Q_COUNT,
               Q_PRESENCE } qtype;

/* "how many X", "count X", "number of X" -> COUNT; "is/are there X", "any X", "do you see X" -> PRESENCE.
 * noun gets the (up to two-word) phrase after the cue, articles skipped. */
static qtype object_query(const char *q, char *noun, size_t len)
{
    static const struct {
        const char *cue;
        qtype t;
    } CUES[] = {
        {"how many", Q_COUNT},
        {"number of", Q_COUNT},
        {"count the", Q_COUNT},
        {"count", Q_COUNT},
        {"is there", Q_PRESENCE},
        {"are there", Q_PRESENCE},
        {"do you see", Q_PRESENCE},
        {"can you see", Q_PRESENCE},
        {"does it contain", Q_PRESENCE},
        {"contains", Q_PRESENCE},
        {"any", Q_PRESENCE},
    };
    for (size_t i = 0; i < sizeof CUES / sizeof CUES[0]; i++) {
        long at = text_find_word(q, CUES[i].cue);
        if (at < 0) continue;
        const char *p = q + at + strlen(CUES[i].cue);
        char words[2][64] = {"", ""};
        int nw = 0;
        while (*p && nw < 2) {
            while (*p && !text_is_word_char(*p)) {
                if (strchr("?.!,", *p) && nw > 0) goto done; /* the phrase ends at punctuation */
                p++;
            }
            const char *s = p;
            while (text_is_word_char(*p)) p++;
            size_t wl = (size_t)(p - s);
            if (!wl) break;
            static const char *const skip[] = {"a", "an", "the", "any", "some", "of", "there", "visible", NULL};
            bool skipped = false;
            for (int k = 0; skip[k] && nw == 0; k++)
                if (wl == strlen(skip[k]) && !strncmp(s, skip[k], wl)) skipped = true;
            if (skipped) continue;
            static const char *const stop[] = {"in", "on", "at", "are", "is", "do", "does", "can", "you", "there", "visible", "here", NULL};
            for (int k = 0; stop[k]; k++)
                if (wl == strlen(stop[k]) && !strncmp(s, stop[k], wl)) goto done;
            snprintf(words[nw++], sizeof words[0], "%.*s", (int)wl, s);
        }
    done:
        if (nw == 0) continue;
        if (nw == 2) snprintf(noun, len, "%s %s", words[0], words[1]);
        else snprintf(noun, len, "%s", words[0]);
        return CUES[i].t;
    }
    return Q_NONE;
}

/* The detections whose class the noun phrase names (two words first: "stop sign"). */
static json_t *detections_of(const json_t *dets, const char *noun, char *cls, size_t cls_len)
{
    char two[128], one[64], sing[64];
    snprintf(two, sizeof two, "%s", noun);
    const char *sp = strchr(noun, ' ');
    snprintf(one, sizeof one, "%.*s", sp ? (int)(sp - noun) : (int)strlen(noun), noun);
    /* "traffic lights": singular of the last word. */
    if (sp) {
        singular(sp + 1, sing, sizeof sing);
        snprintf(two, sizeof two, "%.*s %s", (int)(sp - noun), noun, sing);
    }
    singular(one, sing, sizeof sing);
    json_t *out = json_array();
    for (int pass = 0; pass < 2; pass++) {
        const char *want = pass == 0 ? two : sing;
        if (pass == 0 && !sp) continue;
        size_t i;
        json_t *d;
        json_array_foreach(dets, i, d) {
            const char *c = json_string_value(json_object_get(d, "class"));
            if (!c) continue;
            char lc[64];
            snprintf(lc, sizeof lc, "%s", c);
            for (char *x = lc; *x; x++) *x = (char)tolower((unsigned char)*x);
            if (!strcmp(lc, want)) json_array_append(out, d);
        }
        if (json_array_size(out)) {
            snprintf(cls, cls_len, "%s", want);
            return out;
        }
    }
    snprintf(cls, cls_len, "%s", sp ? two : sing);
    return out;
}

/* "4 person, 1 bus" from the detections. */
static json_t *class_counts(const json_t *dets)
{
    json_t *counts = json_object();
    size_t i;
    json_t *d;
    json_array_foreach(dets, i, d) {
        const char *c = json_string_value(json_object_get(d, "class"));
        if (!c) continue;
        json_int_t n = json_integer_value(json_object_get(counts, c));
        json_object_set_new(counts, c, json_integer(n + 1));
    }
    return counts;
}

static void counts_text(const json_t *counts, char *buf, size_t len)
{
    buf[0] = 0;
    const char *k;
    json_t *v;
    size_t off = 0;
    json_object_foreach((json_t *)counts, k, v) {
        int n = snprintf(buf + off, len - off, "%s%lld %s", off ? ", " : "", (long long)json_integer_value(v), k);
        if (n < 0 || (size_t)n >= len - off) break;
        off += (size_t)n;
    }
    if (!off) snprintf(buf, len, "nothing");
}

static const char NO_LLM[] = "No language model is configured on this server (set SIGHT_LLM_URL), so this answer "
                             "comes from OCR and object detection only.";

static json_t *answer_objects(qtype t, const char *noun, const json_t *earlier, json_t *res, char *resp, size_t len)
{
    json_t *yolo = json_object_get(earlier, "yolo");
    json_object_set_new(res, "answer_type", json_string(t == Q_COUNT ? "count" : "presence"));
    if (!yolo) {
        snprintf(resp, len, "Cannot tell how many %s there are: this server has no object detection model configured. %s",
                 noun, NO_LLM);
        return res;
    }
    json_t *dets = json_object_get(yolo, "detections");
    char cls[128];
    json_t *found = detections_of(dets, noun, cls, sizeof cls);
    size_t n = json_array_size(found);
    json_object_set_new(res, "class", json_string(cls));
    json_object_set_new(res, "count", json_integer((json_int_t)n));
    json_object_set_new(res, "detections", found);
    char others[512];
    json_t *counts = class_counts(dets);
    counts_text(counts, others, sizeof others);
    json_decref(counts);
    if (t == Q_COUNT)
        snprintf(resp, len, "%zu %s detected (%s; the detector found: %s).", n, n == 1 ? cls : noun,
                 n ? "each with its box and confidence below" : "none of that class", others);
    else if (n)
        snprintf(resp, len, "Yes: %zu %s detected (the detector found: %s).", n, n == 1 ? cls : noun, others);
    else
        snprintf(resp, len, "No %s detected (the detector found: %s).", noun, others);
    return res;
}

static void answer_text(kind k, const ocr_line *l, size_t n, bool have_ocr, json_t *res, char *resp, size_t len)
{
    json_object_set_new(res, "answer_type", json_string("text"));
    json_t *matches = json_array();
    json_object_set_new(res, "matches", matches);
    if (!have_ocr) {
        snprintf(resp, len, "Cannot read the %s: this server has no OCR stage configured. %s", KIND_WORDS[k], NO_LLM);
        return;
    }
    if (k == K_TEXT) {
        for (size_t i = 0; i < n; i++) json_array_append_new(matches, text_match(K_TEXT, l[i].text, strlen(l[i].text), &l[i], false));
        if (!n) snprintf(resp, len, "No text found in the image.");
        else snprintf(resp, len, "The image has %zu line%s of text (each below with its box and confidence).", n,
                      n == 1 ? "" : "s");
        return;
    }
    regex_t re;
    bool has_re = false;
    if (k == K_DATE || k == K_PRICE) {
        has_re = regcomp(&re, k == K_DATE ? DATE_RE : PRICE_RE, REG_EXTENDED | REG_ICASE) == 0;
    }
    text_find_labelled(k, l, n, has_re ? &re : NULL, matches);
    /* A serial number read as "S/N" labels nothing else: without a label,
     * fall back to text of the right form. */
    bool labelled = json_array_size(matches) > 0;
    if (!labelled) text_find_unlabelled(k, l, n, has_re ? &re : NULL, matches);
    if (has_re) regfree(&re);
    text_sort_matches(matches);
    json_t *best = json_array_get(matches, 0);
    if (!best) {
        snprintf(resp, len, "No %s found in the text of the image (%zu OCR line%s read).", KIND_WORDS[k], n, n == 1 ? "" : "s");
        return;
    }
    const char *v = json_string_value(json_object_get(best, "text"));
    double c = json_number_value(json_object_get(best, "confidence"));
    if (labelled)
        snprintf(resp, len, "The %s is %s (read as \"%s\", OCR confidence %.2f).", KIND_WORDS[k], v,
                 json_string_value(json_object_get(best, "line")), c);
    else
        snprintf(resp, len, "No text is labelled as a %s; the text that looks most like one is %s (OCR confidence %.2f).",
                 KIND_WORDS[k], v, c);
}

static void answer_summary(const json_t *earlier, const ocr_line *l, size_t n, json_t *res, char *resp, size_t len)
{
    json_object_set_new(res, "answer_type", json_string("summary"));
    json_t *ocr = json_object_get(earlier, "ocr");
    json_t *yolo = json_object_get(earlier, "yolo");
    char objs[512] = "no detection model configured";
    if (yolo) {
        json_t *counts = class_counts(json_object_get(yolo, "detections"));
        counts_text(counts, objs, sizeof objs);
        json_object_set_new(res, "objects", counts);
    }
    if (ocr) {
        json_t *t = json_object_get(ocr, "text");
        json_object_set_new(res, "text", json_is_string(t) ? json_incref(t) : json_string(""));
    }
    snprintf(resp, len, "%s Objects detected: %s. Text read: %s.", NO_LLM, objs,
             !ocr ? "no OCR stage configured" : n ? "see \"text\""
                                                  : "none");
    (void)l;
}

/* Whether a presence query's noun is about text ("any text", "a label") rather than an object. */
static bool names_text(const char *noun)
{
    static const char *const words[] = {"text", "writing", "words", "word", "label", "labels", "sign", "signs", "number", NULL};
    for (int i = 0; words[i]; i++)
        if (!strcmp(noun, words[i])) return true;
    return false;
}

json_t *llm_local_answer(const char *query, const json_t *earlier)
{
    json_t *res = json_object();
    json_object_set_new(res, "provider", json_string("local"));
    char resp[2048] = "";
    ocr_line *lines = NULL;
    size_t n = 0;
    char *q = text_lower_dup(query ? query : "");
    if (!q || text_load_lines(earlier, &lines, &n) != 0) {
        free(q);
        text_free_lines(lines, n);
        json_decref(res);
        return NULL;
    }
    bool have_ocr = json_object_get(earlier, "ocr") != NULL;
    char noun[128];
    qtype ot = object_query(q, noun, sizeof noun);
    kind k = text_kind(q);
    /* Counting wins ("how many labels" is about objects); a specific text kind
     * wins over presence ("is there a serial number"); generic words like
     * "sign" or "number" only when no object is asked about. */
    if (ot == Q_PRESENCE && k == K_TEXT && names_text(noun)) ot = Q_NONE; /* "is there any text" */
    if (ot == Q_COUNT || (ot == Q_PRESENCE && (k == K_TEXT || k == K_NONE)))
        answer_objects(ot, noun, earlier, res, resp, sizeof resp);
    else if (k != K_NONE)
        answer_text(k, lines, n, have_ocr, res, resp, sizeof resp);
    else
        answer_summary(earlier, lines, n, res, resp, sizeof resp);
    json_object_set_new(res, "response", json_string_lossy(resp, strlen(resp)));
    free(q);
    text_free_lines(lines, n);
    return res;
}
