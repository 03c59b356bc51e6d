/* The v2 JSON body: form_parse_json, then form_finish. */
#include "fuzz_common.h"
#include "http/form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    form f;
    form_limits lim = {.max_file_bytes = 1024, .max_files = 4};
    form_init(&f, &lim);
    form_parse_json(&f, (const char *)data, size);
    if (form_finish(&f) == 0) {
        if (f.nfiles == 0 || f.nfiles > (size_t)lim.max_files || !f.meta) abort();
        for (size_t i = 0; i < f.nfiles; i++) {
            if (!f.files[i].url || !f.files[i].filename) abort();
            free(form_take_url(&f, i));
            free(form_take_filename(&f, i));
        }
    }
    form_free(&f);
    return 0;
}
