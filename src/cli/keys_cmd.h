#ifndef SIGHT_CLI_KEYS_CMD_H
#define SIGHT_CLI_KEYS_CMD_H
/* `sightd keys create|list|revoke`: administration of the key store. */
int keys_command(int argc, char **argv);
#endif
