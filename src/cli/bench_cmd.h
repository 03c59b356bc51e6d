#ifndef SIGHT_CLI_BENCH_CMD_H
#define SIGHT_CLI_BENCH_CMD_H
/* `sightd bench-ort`: back-to-back model Runs, the baseline `make bench` compares with. */
int bench_ort_command(int argc, char **argv);
#endif
