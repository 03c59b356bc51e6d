/* GET /api/v1/models: the detection models served by name, for any valid
 * key (checked by the dispatcher before this runs: auth.c). */
#include "detect/model_registry.h"
#include "http/http_internal.h"
#include "util/json_out.h"

front_result models_handle(front_conn *c, http_req *hr, const route_call *call)
{
    (void)call;
    json_t *list = hr->srv->reg ? model_registry_list(hr->srv->reg) : json_pack("{s:[]}", "models");
    size_t len;
    char *body = json_line(list, &len);
    return body ? reply_body(c, hr, 200, "application/json", body, len) : FRONT_CLOSE;
}
