/* CTC greedy decoding, the dictionary, and spaces put back from gaps. */
#include <stdlib.h>

#include "check.h"
#include "ocr/ctc.h"

/* T steps over the classes of d: step t puts prob p on class cls[t] and the
 * rest on the blank, plus an optional share sp[t] on the space. */
static float *seq(const ocr_dict *d, const int *cls, const float *sp, int T)
{
    float *p = calloc((size_t)T * d->n, sizeof *p);
    for (int t = 0; t < T; t++) {
        float *r = p + (size_t)t * d->n;
        float s = sp ? sp[t] : 0;
        r[cls[t]] = cls[t] == 0 ? 1 - s : 0.9f;
        if (cls[t] != 0) r[0] = 0.1f;
        r[d->n - 1] += s;
    }
    return p;
}

static const char *const LETTERS[] = {"A", "B", "C", "N", "O", "P", "1", "2", "-", "中"};
enum { A = 1,
       B,
       C,
       N,
       O,
       P,
       D1,
       D2,
       DASH,
       ZH,
       SPACE };

static void test_dict_and_repeats(void)
{
    ocr_dict d;
    CHECK(ocr_dict_from(LETTERS, 10, &d) == 0);
    CHECK_EQ_INT(d.n, 12);
    CHECK_STR(d.chars[0], "");
    CHECK_STR(d.chars[SPACE], " ");
    /* A A _ A B B _ _ C : repeats merge, a blank separates a real double. */
    int cls[] = {A, A, 0, A, B, B, 0, 0, C};
    float *p = seq(&d, cls, NULL, 9);
    char *text;
    float conf;
    CHECK(ocr_ctc_decode(p, 9, d.n, &d, &text, &conf) == 0);
    CHECK_STR(text, "AABC");
    CHECK(conf > 0.89f && conf < 0.91f);
    free(text);
    free(p);
    /* All blank: empty text, confidence 0. */
    int blank[] = {0, 0, 0};
    p = seq(&d, blank, NULL, 3);
    CHECK(ocr_ctc_decode(p, 3, d.n, &d, &text, &conf) == 0);
    CHECK_STR(text, "");
    CHECK(conf == 0);
    free(text);
    free(p);
    /* No steps at all. */
    CHECK(ocr_ctc_decode(NULL, 0, d.n, &d, &text, &conf) == 0);
    CHECK_STR(text, "");
    free(text);
    ocr_dict_free(&d);
}

static void test_spaces(void)
{
    ocr_dict d;
    ocr_dict_from(LETTERS, 10, &d);
    char *text;
    float conf;
    /* A space the model emitted stays; leading and trailing ones go. */
    int c1[] = {SPACE, N, 0, O, 0, SPACE, 0, P, SPACE};
    float *p = seq(&d, c1, NULL, 9);
    ocr_ctc_decode(p, 9, d.n, &d, &text, &conf);
    CHECK_STR(text, "NO P");
    free(text);
    free(p);
    /* NO PARKING as the recogniser saw it: the space lost to the blank at
     * 0.21 (measured on opencv_scenetext05.jpg); inside words it stays ~0. */
    int c2[] = {0, N, 0, O, 0, 0, P, 0, A, 0};
    float sp2[] = {0, 0, 0.001f, 0, 0.015f, 0.21f, 0, 0.002f, 0, 0};
    p = seq(&d, c2, sp2, 10);
    ocr_ctc_decode(p, 10, d.n, &d, &text, &conf);
    CHECK_STR(text, "NO PA");
    free(text);
    free(p);
    /* Weak evidence (under OCR_SPACE_EVIDENCE) is not a space. */
    sp2[5] = 0.05f;
    p = seq(&d, c2, sp2, 10);
    ocr_ctc_decode(p, 10, d.n, &d, &text, &conf);
    CHECK_STR(text, "NOPA");
    free(text);
    free(p);
    ocr_dict_free(&d);
}

static void test_join_gaps(void)
{
    /* Regular pitch 2; one gap of 8 steps (4 pitches) is a space. */
    const char *ch[] = {"A", "B", "1", "2", "C", "N"};
    int pos[] = {1, 3, 5, 7, 15, 17};
    char *s = ocr_join_gaps(ch, pos, NULL, 6);
    CHECK_STR(s, "AB12 CN");
    free(s);
    /* One step of jitter (PROHIBITED: R@3 O@7 with pitch 2) is not. */
    int pos2[] = {1, 3, 7, 9, 11, 13};
    s = ocr_join_gaps(ch, pos2, NULL, 6);
    CHECK_STR(s, "AB12CN");
    free(s);
    /* CJK characters never get spaces; too few characters give no pitch. */
    const char *zh[] = {"中", "中", "中", "中"};
    int pz[] = {1, 3, 20, 22};
    float ev[] = {0, 0.9f, 0.9f, 0.9f};
    s = ocr_join_gaps(zh, pz, ev, 4);
    CHECK_STR(s, "中中中中");
    free(s);
    const char *two[] = {"A", "B"};
    int p2[] = {1, 30};
    s = ocr_join_gaps(two, p2, NULL, 2);
    CHECK_STR(s, "AB");
    free(s);
    /* Space evidence at an ordinary pitch (a monospace hyphen's margins) is
     * not a space; the same evidence over a wider gap is. */
    const char *serial[] = {"X", "7", "-", "2", "2", "9"};
    int ps[] = {1, 6, 11, 16, 21, 26}, pw[] = {1, 6, 11, 18, 23, 28};
    float es[] = {0, 0, 0, 0.12f, 0, 0};
    s = ocr_join_gaps(serial, ps, es, 6);
    CHECK_STR(s, "X7-229");
    free(s);
    s = ocr_join_gaps(serial, pw, es, 6);
    CHECK_STR(s, "X7- 229");
    free(s);
    s = ocr_join_gaps(NULL, NULL, NULL, 0);
    CHECK_STR(s, "");
    free(s);
}

static void test_dict_file(void)
{
    char err[256];
    ocr_dict d;
    char path[] = "/tmp/sight_dict_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("a\r\nb\n中\nz", f); /* CRLF, UTF-8, no final newline */
    fclose(f);
    CHECK(ocr_dict_load(path, &d, err, sizeof err) == 0);
    CHECK_EQ_INT(d.n, 6);
    CHECK_STR(d.chars[1], "a");
    CHECK_STR(d.chars[3], "中");
    CHECK_STR(d.chars[4], "z");
    CHECK_STR(d.chars[5], " ");
    ocr_dict_free(&d);
    f = fopen(path, "w");
    fclose(f);
    CHECK(ocr_dict_load(path, &d, err, sizeof err) == -1);
    remove(path);
    CHECK(ocr_dict_load("/nonexistent/dict.txt", &d, err, sizeof err) == -1);
}

int main(void)
{
    test_dict_and_repeats();
    test_spaces();
    test_join_gaps();
    test_dict_file();
    return check_report("test_ocr_ctc");
}
