#ifndef SIGHT_CLI_JOBS_CMD_H
#define SIGHT_CLI_JOBS_CMD_H
/* `sightd jobs list [--key ID] [--limit N] [--json] | show ID | cancel ID`:
 * the jobs in the key store's database, as the jobs routes show them, for
 * an operator (every key's). */
int jobs_command(int argc, char **argv);
#endif
