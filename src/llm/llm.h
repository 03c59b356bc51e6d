/* LLM analysis (is_llm): answers the request's query about one image.
 *
 * Two providers behind one pipeline stage named "llm":
 *  - openai: any OpenAI-compatible /v1/chat/completions endpoint, streamed;
 *  - local:  no generative model; answers from the OCR text and detections
 *            that ran before on the image (the default when no URL is set).
 * Both set wants_grounding, so detection and OCR run first when configured. */
#ifndef SIGHT_LLM_LLM_H
#define SIGHT_LLM_LLM_H

#include <stddef.h>

#include "config/config.h"
#include "pipeline/stages.h"

typedef struct llm llm;

/* Builds the analyser the configuration asks for (openai when llm_url is set,
 * local otherwise). Call before any worker thread starts (curl's global init).
 * NULL with msg filled when the configuration cannot work. */
llm *llm_open(const sight_config *cfg, char *msg, size_t msg_len);
void llm_close(llm *l);
const stage *llm_stage(llm *l);
/* "openai (model M at URL)" or "local (...)" for the start-up log; never the key. */
void llm_describe(const llm *l, char *buf, size_t len);

#endif
