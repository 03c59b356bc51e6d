/* The DeepStack / CodeProject.AI dialect of its routes (routes.c): the
 * detection answer and the error body. */
#ifndef SIGHT_HTTP_DEEPSTACK_H
#define SIGHT_HTTP_DEEPSTACK_H

#include <jansson.h>
#include "http/front/front.h"
#include <stddef.h>

struct http_req;

/* POST /v1/vision/custom/{model}: the path's tail names the model. */
#define DEEPSTACK_CUSTOM "/v1/vision/custom/"

/* {"success":false,"error":...,"code":status}; a 422 becomes 400. */
char *deepstack_error_body(unsigned *status, const char *code, const char *message, size_t *len);
/* The answer from the one file's done or error event (files[0]). */
front_result deepstack_answer(front_conn *c, struct http_req *hr, json_t *files, json_t *complete);

#endif
