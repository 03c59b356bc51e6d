/* Line-oriented logging to stderr: "time level message". Thread-safe because
 * each line is written with one fprintf on an unbuffered stream. */
#ifndef SIGHT_UTIL_LOG_H
#define SIGHT_UTIL_LOG_H

typedef enum { LOG_ERROR = 0,
               LOG_WARN,
               LOG_INFO,
               LOG_DEBUG } log_level;

void log_set_level(const char *name);
void log_msg(log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
