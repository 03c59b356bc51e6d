#ifndef SIGHT_CLI_STORE_OPEN_H
#define SIGHT_CLI_STORE_OPEN_H

/* Says on stderr that a sightd command could not open a store ("key store",
 * "the job store") at db_path, and why (err), showing a database URL without
 * its password. Returns 1, the commands' exit code for it. */
int cli_store_unopened(const char *what, const char *db_path, const char *err);

#endif
