#include "util/error.h"

#include <stdio.h>

void sight_error_vset(sight_error *e, unsigned status, const char *code, const char *fmt, va_list ap)
{
    e->status = status;
    snprintf(e->code, sizeof e->code, "%s", code);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
}

void sight_error_set(sight_error *e, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sight_error_vset(e, 0, code, fmt, ap);
    va_end(ap);
}

void err_vprintf(char *buf, size_t len, const char *fmt, va_list ap)
{
    if (buf && len) vsnprintf(buf, len, fmt, ap);
}

void err_printf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vprintf(buf, len, fmt, ap);
    va_end(ap);
}
