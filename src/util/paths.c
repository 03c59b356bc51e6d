#include "util/paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* dst = a + b, or "" when it does not fit (an unusable path beats a cut one). */
static void join(char *dst, size_t len, const char *a, const char *b)
{
    if ((size_t)snprintf(dst, len, "%s%s", a, b) >= len) dst[0] = 0;
}

void paths_from_exe_dir(install_paths *p, const char *exe_dir)
{
    memset(p, 0, sizeof *p);
    snprintf(p->exe_dir, sizeof p->exe_dir, "%s", exe_dir ? exe_dir : "");
    snprintf(p->data_dir, sizeof p->data_dir, "%s", PATHS_INSTALLED_DATA_DIR);
    p->kind = "unknown";
    if (!p->exe_dir[0]) return;

    char parent[PATH_MAX], probe[PATH_MAX], root[PATH_MAX]; /* realpath() writes up to PATH_MAX */
    join(parent, sizeof parent, p->exe_dir, "/..");
    join(probe, sizeof probe, parent, "/share/sight");
    /* A location too long for the fields below counts as no installation at all. */
    if (is_dir(probe) && realpath(probe, root) && strlen(root) + sizeof "/ocr" <= sizeof p->ocr_dir) {
        p->kind = "installed";
        join(p->share_dir, sizeof p->share_dir, root, "");
        join(p->ocr_dir, sizeof p->ocr_dir, root, "/ocr");
        return;
    }
    join(probe, sizeof probe, parent, "/share/coco80.names");
    if (is_file(probe) && realpath(parent, root) && strlen(root) + sizeof "/models/ocr" <= sizeof p->ocr_dir) {
        p->kind = "build tree";
        join(p->share_dir, sizeof p->share_dir, root, "/share");
        join(p->ocr_dir, sizeof p->ocr_dir, root, "/models/ocr");
        join(p->data_dir, sizeof p->data_dir, root, "/data");
    }
}

void paths_detect(install_paths *p)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        paths_from_exe_dir(p, NULL);
        return;
    }
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    paths_from_exe_dir(p, slash ? (exe[0] ? exe : "/") : NULL);
}
