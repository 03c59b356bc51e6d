/* Line-oriented logging to stderr, one record a line, as text
 * ("time level message") or as JSON (--log-format json: one object a line,
 * for log shippers). Thread-safe because each line is written with one
 * fprintf on an unbuffered stream.
 *
 * A line that belongs to a request carries its id: log_req names it, and a
 * thread working for one request (a pipeline worker) sets it once with
 * log_set_request, for every line it writes meanwhile. */
#ifndef SIGHT_UTIL_LOG_H
#define SIGHT_UTIL_LOG_H

typedef enum { LOG_ERROR = 0,
               LOG_WARN,
               LOG_INFO,
               LOG_DEBUG } log_level;

void log_set_level(const char *name);
/* "text" (the default) or "json"; anything else is text. Set before threads start. */
void log_set_format(const char *name);
/* The request this thread works for now (copied; NULL or "": none). */
void log_set_request(const char *request_id);

void log_msg(log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line about request_id (NULL: as log_msg): as text "request ID: message". */
void log_req(log_level lvl, const char *request_id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
