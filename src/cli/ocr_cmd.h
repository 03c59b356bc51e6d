#ifndef SIGHT_CLI_OCR_CMD_H
#define SIGHT_CLI_OCR_CMD_H
/* `sightd ocr IMAGE...`: the server's OCR result for files, as NDJSON. */
int ocr_command(int argc, char **argv);
#endif
