#ifndef SIGHT_CLI_USAGE_CMD_H
#define SIGHT_CLI_USAGE_CMD_H
/* `sightd usage [--key ID] [--from DATE] [--to DATE] [--json]`: the usage
 * ledger per key and UTC day, as GET /api/v1/usage reports it. */
int usage_command(int argc, char **argv);
#endif
