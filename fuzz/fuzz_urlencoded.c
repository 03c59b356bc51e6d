/* An application/x-www-form-urlencoded body, then form_finish. */
#include "fuzz_common.h"
#include "http/form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    form f;
    form_limits lim = {.max_file_bytes = 1024, .max_files = 3};
    form_init(&f, &lim);
    form_parse_urlencoded(&f, (const char *)data, size);
    form_finish(&f);
    if (f.nfiles > (size_t)lim.max_files || f.nmetadata > (size_t)lim.max_files) abort();
    for (size_t i = 0; i < f.nfiles; i++)
        if ((int64_t)f.files[i].data.len > lim.max_file_bytes) abort();
    if (f.api_key && strlen(f.api_key) > 256) abort();
    form_free(&f);
    return 0;
}
