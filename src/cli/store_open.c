#include "cli/store_open.h"

#include <stdio.h>

#include "keys/db_url.h"

int cli_store_unopened(const char *what, const char *db_path, const char *err)
{
    char shown[2048]; /* a --db value, its password masked */
    db_url_mask(db_path, shown, sizeof shown);
    fprintf(stderr, "sightd: cannot open %s %s: %s\n", what, shown, err);
    return 1;
}
