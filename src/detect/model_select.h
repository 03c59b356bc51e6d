/* Which detection model to load, from the configuration: --model when given
 * (it must load), else the default model in --models-dir when present. */
#ifndef SIGHT_DETECT_MODEL_SELECT_H
#define SIGHT_DETECT_MODEL_SELECT_H

#include "config/config.h"
#include "detect/detector.h"

/* Returns the detector, or NULL. *fatal tells a broken or missing explicit
 * model (the caller stops) from "no model configured" (the caller goes on
 * without detection); either way msg says what happened and what to do. */
detector *model_select_open(const sight_config *cfg, int *fatal, char *msg, size_t msg_len);

#endif
