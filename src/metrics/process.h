/* The standard process_* metrics of the Prometheus client libraries, read
 * from /proc/self at each scrape (Linux). */
#ifndef SIGHT_METRICS_PROCESS_H
#define SIGHT_METRICS_PROCESS_H

#include "util/buf.h"

typedef struct {
    double cpu_seconds; /* user + system */
    double rss_bytes, vm_bytes;
    double start_time;        /* seconds since the Unix epoch */
    double open_fds, max_fds; /* max_fds: the soft limit; -1 when unlimited or unknown */
} process_stats;

/* 0, or -1 when /proc/self/stat cannot be read (the fields are then 0). */
int process_stats_read(process_stats *ps);

/* HELP, TYPE and value lines of every process_* metric that could be read. */
int process_render(buf *b);

#endif
