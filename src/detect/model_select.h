/* Which detection model to load, from the configuration: --model / SIGHT_MODEL
 * when given (it must load), "none" for no detection, else the built-in
 * YOLOX-Nano embedded in the binary. */
#ifndef SIGHT_DETECT_MODEL_SELECT_H
#define SIGHT_DETECT_MODEL_SELECT_H

#include <stdbool.h>

#include "config/config.h"
#include "detect/detector.h"

/* Returns the detector, or NULL. *fatal tells a broken or missing explicit
 * model (the caller stops) from detection switched off (the caller goes on
 * without it); either way msg says what happened and what to do. */
detector *model_select_open(const sight_config *cfg, int *fatal, char *msg, size_t msg_len);

/* Where the configured model comes from, for logs and /readyz: "built-in",
 * "file" (--model / SIGHT_MODEL) or "none". */
const char *model_select_source(const sight_config *cfg);

#endif
