/* The one error shape: a machine-readable code and a message for people, plus
 * the HTTP status where one applies. A file's error line, a form refusal and
 * a refusal deferred until the body is read all carry it. A leaf: it includes
 * nothing of Sight's, so any module may use it. */
#ifndef SIGHT_UTIL_ERROR_H
#define SIGHT_UTIL_ERROR_H
#include <stdarg.h>
#include <stddef.h>

typedef struct {
    unsigned status; /* HTTP status to answer with; 0 where none applies (a file's error line) */
    char code[48];   /* e.g. "corrupt_image", "yolo_unavailable", "file_too_large" */
    char message[512];
} sight_error;

/* Sets the code and message (status 0). */
void sight_error_set(sight_error *e, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sight_error_vset(sight_error *e, unsigned status, const char *code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* A message into a caller's (buf, len), the err/err_len pair of so many
 * functions here; a NULL buf or a zero len writes nothing. */
void err_printf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void err_vprintf(char *buf, size_t len, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
#endif
