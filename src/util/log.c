#include "util/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/json_out.h"

static log_level current = LOG_INFO;
static bool json;
static _Thread_local char thread_request[48];

void log_set_level(const char *name)
{
    if (!strcmp(name, "error")) current = LOG_ERROR;
    else if (!strcmp(name, "warn")) current = LOG_WARN;
    else if (!strcmp(name, "debug")) current = LOG_DEBUG;
    else current = LOG_INFO;
}

void log_set_format(const char *name) { json = name && !strcmp(name, "json"); }

void log_set_request(const char *id) { snprintf(thread_request, sizeof thread_request, "%s", id ? id : ""); }

/* The JSON record; NULL when out of memory. */
static char *json_record(const char *ts, const char *level, const char *rid, const char *msg)
{
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level));
    /* Messages quote what clients sent (file names, URLs): any bytes. */
    json_object_set_new(o, "msg", json_string_lossy(msg, strlen(msg)));
    if (rid && rid[0]) json_object_set_new(o, "request_id", json_string_lossy(rid, strlen(rid)));
    /* Compact: control characters, newlines included, are escaped, so a record is one line. */
    char *text = json_dumps_safe(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static void vlog(log_level lvl, const char *rid, const char *fmt, va_list ap)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (!rid || !rid[0]) rid = thread_request[0] ? thread_request : NULL;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!json) {
        if (rid) fprintf(stderr, "%s %s request %s: %s\n", ts, names[lvl], rid, msg);
        else fprintf(stderr, "%s %s %s\n", ts, names[lvl], msg);
        return;
    }
    char *text = json_record(ts, names[lvl], rid, msg);
    if (text) fprintf(stderr, "%s\n", text);
    else fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"error\",\"msg\":\"a log record was lost: out of memory\"}\n", ts);
    free(text);
}

void log_msg(log_level lvl, const char *fmt, ...)
{
    if (lvl > current) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(lvl, NULL, fmt, ap);
    va_end(ap);
}

void log_req(log_level lvl, const char *request_id, const char *fmt, ...)
{
    if (lvl > current) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(lvl, request_id, fmt, ap);
    va_end(ap);
}
