#ifndef SIGHT_CLI_DETECT_CMD_H
#define SIGHT_CLI_DETECT_CMD_H
/* `sightd detect IMAGE...`: the server's detection result for files, as NDJSON. */
int detect_command(int argc, char **argv);
#endif
