/* The detection models served by name: every --model NAME=PATH (or PATH,
 * named by its file stem), else the built-in YOLOX-Nano; one is the default
 * for requests that name none (--default-model, else the first).
 *
 * Each model is reference-counted: a run holds its model from acquire to
 * release, so a model replaced or removed meanwhile is closed only once the
 * last run on it is over. The registry is one detection stage for the
 * pipeline; the file's "model" (stage_input.model) picks the detector. */
#ifndef SIGHT_DETECT_MODEL_REGISTRY_H
#define SIGHT_DETECT_MODEL_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>

#include "config/config.h"
#include "detect/detector.h"
#include "util/work_queue.h"
#include "pipeline/stages.h"

typedef struct model_registry model_registry;
typedef struct model_entry model_entry;

/* Opens every configured model. NULL with *fatal when one cannot load (msg
 * says which and why), NULL without it when detection is off (--model none). */
model_registry *model_registry_open(const sight_config *cfg, int *fatal, char *msg, size_t msg_len);
void model_registry_close(model_registry *r);

/* The model called name (NULL or "": the default), held until released; NULL if none. */
model_entry *model_registry_acquire(model_registry *r, const char *name);
void model_entry_release(model_entry *e);
detector *model_entry_detector(const model_entry *e);
const char *model_entry_source(const model_entry *e); /* "built-in" or "file" */

bool model_registry_has(model_registry *r, const char *name);
const char *model_registry_default(model_registry *r); /* the default's name (stable for the registry's life) */

/* {"models":[{"name","layout","input":[w,h],"classes":[...],"default","source","loaded_at"}]} */
json_t *model_registry_list(model_registry *r);

const stage *model_registry_stage(model_registry *r);

/* SIGHUP: reloads the model files as a job on wq (see reload_once); it
 * holds one of wq's threads while it loads. Called from one thread (main's
 * signal loop); a call while one runs makes it go over the files again.
 * model_registry_close waits for a reload queued or running. */
void model_registry_reload(model_registry *r, work_queue *wq);

#endif
