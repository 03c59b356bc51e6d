/* GET /api/v1/models: the detection models served by name, for any valid
 * key. The key is checked as for prediction: from the key cache, else on a
 * key_check thread with the connection suspended. */
#include "detect/model_registry.h"
#include "http/http_internal.h"
#include "util/json_out.h"

enum MHD_Result models_handle(struct MHD_Connection *c, http_req *hr)
{
    int64_t id;
    key_limits own;
    enum MHD_Result ret;
    if (get_key_check(c, hr, &id, &own, &ret) <= 0) return ret;
    json_t *list = hr->srv->reg ? model_registry_list(hr->srv->reg) : json_pack("{s:[]}", "models");
    size_t len;
    char *body = json_line(list, &len);
    return body ? reply_body(c, hr, 200, "application/json", body, len) : MHD_NO;
}
