/* Recognition output to text: the character dictionary and greedy CTC
 * decoding (PaddleOCR's CTCLabelDecode), with spaces recovered from gaps. */
#ifndef SIGHT_OCR_CTC_H
#define SIGHT_OCR_CTC_H

#include <stddef.h>

/* Class i of the recogniser's output: 0 is the CTC blank, 1..N the lines of
 * the dictionary file, N+1 a space (PaddleOCR's use_space_char). */
typedef struct {
    char **chars; /* UTF-8, chars[0] = "" (blank) */
    int n;        /* number of classes */
} ocr_dict;

/* Reads a dictionary file, one character per line. Returns 0, or -1 with err. */
int ocr_dict_load(const char *path, ocr_dict *d, char *err, size_t err_len);
/* Builds one from an array of strings (tests); the blank and the space are added. */
int ocr_dict_from(const char *const *lines, int n, ocr_dict *d);
void ocr_dict_free(ocr_dict *d);

/* Greedy decode of one sequence of T steps of C class probabilities: argmax
 * per step, repeats merged, blanks dropped. *text (malloc'd) gets the
 * characters, with spaces put back by ocr_join_gaps; *conf the mean of the
 * kept characters' probabilities (0 when there are none). Returns 0 or -1. */
int ocr_ctc_decode(const float *probs, int T, int C, const ocr_dict *d, char **text, float *conf);

/* A dropped space is put back where the space class reached this probability
 * between two characters. */
#define OCR_SPACE_EVIDENCE 0.1f

/* Joins n characters that the decoder found at steps pos[] (increasing),
 * adding the spaces the recogniser dropped: it often runs words together when
 * the space between them is narrow. A space goes between two characters when
 * the gap between them shows one: space_p[i] (the highest probability of the
 * space class on the blank steps between character i-1 and i; may be NULL)
 * reaches OCR_SPACE_EVIDENCE and the gap is wider than the line's usual pitch
 * (median step distance between characters), or the gap is several pitches. Only between ASCII letters, digits and punctuation (CJK text has no
 * spaces), never next to a space already there. Returns a malloc'd string. */
char *ocr_join_gaps(const char *const *chars, const int *pos, const float *space_p, int n);

#endif
