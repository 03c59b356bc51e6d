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
    form_free(&f);
    return 0;
}
