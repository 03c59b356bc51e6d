/* The Python-repr metadata parsers (ONNX metadata comes from the user's file). */
#include "detect/pyrepr.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    char **names = NULL;
    int n = -1;
    if (pyrepr_parse_names(s, &names, &n) == 0) {
        if (n <= 0 || !names) abort();
        for (int i = 0; i < n; i++)
            if (!names[i]) abort();
        pyrepr_free_names(names, n);
    }
    int vals[4];
    int k = pyrepr_parse_ints(s, vals, 4);
    if (k < -1 || k > 4) abort();
    int b = pyrepr_parse_bool(s);
    if (b < -1 || b > 1) abort();
    free(s);
    return 0;
}
