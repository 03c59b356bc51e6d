/* util/paths: the installation's folders come from the executable's location. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "util/paths.h"

static void touch(const char *p)
{
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
}

int main(void)
{
    char root[] = "/tmp/sight-paths-XXXXXX";
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    char d[512], e[512];
    install_paths p;

    /* Nothing beside the executable: no share dir, the absolute state folder. */
    snprintf(d, sizeof d, "%s/bin", root);
    mkdir(d, 0700);
    paths_from_exe_dir(&p, d);
    CHECK_STR(p.kind, "unknown");
    CHECK_STR(p.share_dir, "");
    CHECK_STR(p.data_dir, PATHS_INSTALLED_DATA_DIR);

    /* A build tree: BUILD/sightd beside SRC/share/coco80.names. */
    snprintf(d, sizeof d, "%s/share", root);
    mkdir(d, 0700);
    snprintf(d, sizeof d, "%s/share/coco80.names", root);
    touch(d);
    snprintf(d, sizeof d, "%s/bin", root);
    paths_from_exe_dir(&p, d);
    CHECK_STR(p.kind, "build tree");
    snprintf(e, sizeof e, "%s/share", root);
    CHECK_STR(p.share_dir, e);
    snprintf(e, sizeof e, "%s/models/ocr", root);
    CHECK_STR(p.ocr_dir, e);
    snprintf(e, sizeof e, "%s/data", root);
    CHECK_STR(p.data_dir, e);

    /* Installed: PREFIX/bin/sightd and PREFIX/share/sight win over the above. */
    snprintf(d, sizeof d, "%s/share/sight", root);
    mkdir(d, 0700);
    snprintf(d, sizeof d, "%s/bin", root);
    paths_from_exe_dir(&p, d);
    CHECK_STR(p.kind, "installed");
    snprintf(e, sizeof e, "%s/share/sight", root);
    CHECK_STR(p.share_dir, e);
    snprintf(e, sizeof e, "%s/share/sight/ocr", root);
    CHECK_STR(p.ocr_dir, e);
    CHECK_STR(p.data_dir, PATHS_INSTALLED_DATA_DIR);

    /* The running test binary is in a build tree (build/): found from /proc/self/exe. */
    paths_detect(&p);
    CHECK(p.exe_dir[0] == '/');
    CHECK_STR(p.kind, "build tree");

    snprintf(d, sizeof d, "rm -rf '%s'", root);
    CHECK_EQ_INT(system(d), 0);
    return check_report("paths");
}
