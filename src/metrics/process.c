#include "metrics/process.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The system's boot time (btime of /proc/stat), in seconds since the epoch. */
static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f) return 0;
    char line[256];
    double bt = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "btime ", 6)) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

static double count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    double n = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* not the one opendir holds */
}

int process_stats_read(process_stats *ps)
{
    memset(ps, 0, sizeof *ps);
    struct rlimit rl;
    ps->max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (double)rl.rlim_cur : -1;
    ps->open_fds = count_fds();
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f) return -1;
    char text[1024];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    /* The command name, in parentheses, may hold spaces and ')': the fields
     * start after the last ')'. proc(5) numbers them from 1; the first after
     * it is field 3 (state). */
    char *p = strrchr(text, ')');
    if (!p) return -1;
    double v[22] = {0};
    int k = 0;
    for (char *save = NULL, *tok = strtok_r(p + 1, " \n", &save); tok && k < 22; tok = strtok_r(NULL, " \n", &save))
        v[k++] = strtod(tok, NULL); /* field 3 (state), a letter, reads as 0 */
    if (k < 22) return -1;
    double tick = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
    if (tick <= 0) tick = 100;
    ps->cpu_seconds = (v[14 - 3] + v[15 - 3]) / tick; /* utime + stime */
    ps->start_time = boot_time() + v[22 - 3] / tick;  /* starttime: ticks after boot */
    ps->vm_bytes = v[23 - 3];
    ps->rss_bytes = v[24 - 3] * page;
    return 0;
}

int process_render(buf *b)
{
    process_stats ps;
    int failed = 0;
    if (process_stats_read(&ps) == 0)
        failed |= buf_printf(b,
                             "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                             "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
                             "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                             "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %.0f\n"
                             "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                             "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %.0f\n"
                             "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
                             "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
                             ps.cpu_seconds, ps.vm_bytes, ps.rss_bytes, ps.start_time);
    if (ps.open_fds >= 0)
        failed |= buf_printf(b, "# HELP process_open_fds Number of open file descriptors.\n"
                                "# TYPE process_open_fds gauge\nprocess_open_fds %.0f\n",
                             ps.open_fds);
    if (ps.max_fds >= 0)
        failed |= buf_printf(b, "# HELP process_max_fds Maximum number of open file descriptors.\n"
                                "# TYPE process_max_fds gauge\nprocess_max_fds %.0f\n",
                             ps.max_fds);
    return failed;
}
