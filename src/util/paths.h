/* Where an installation keeps its files, found from the executable's own
 * location and never from the working directory, so `sightd` behaves the same
 * whichever directory it is started in.
 *
 *   installed:   PREFIX/bin/sightd, read-only files in PREFIX/share/sight
 *                (ocr/ holds the OCR models), writable state in /var/lib/sight;
 *   build tree:  SRC/BUILD/sightd beside SRC/share/coco80.names: read-only files
 *                in SRC/share, OCR models in SRC/models/ocr (scripts/bootstrap
 *                links them there), writable state in SRC/data. */
#ifndef SIGHT_UTIL_PATHS_H
#define SIGHT_UTIL_PATHS_H

#include <stddef.h>

#define PATHS_INSTALLED_DATA_DIR "/var/lib/sight"

typedef struct {
    char exe_dir[1024];   /* the directory of the running executable ("" when unknown) */
    char share_dir[1024]; /* read-only files ("" when none was found) */
    char ocr_dir[1024];   /* default OCR models folder ("" when no share dir) */
    char data_dir[1024];  /* default writable state folder */
    const char *kind;     /* "installed", "build tree" or "unknown" */
} install_paths;

/* Fills p from the executable's location (/proc/self/exe). */
void paths_detect(install_paths *p);

/* The same from a given executable directory (for tests). */
void paths_from_exe_dir(install_paths *p, const char *exe_dir);

#endif
