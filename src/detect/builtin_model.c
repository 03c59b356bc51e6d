#include "detect/builtin_model.h"

/* Defined by the generated builtin_model.S (cmake/builtin_model.S.in). */
extern const unsigned char sight_builtin_model[];
extern const unsigned char sight_builtin_model_end[];
extern const char sight_builtin_names[];

void builtin_model_get(builtin_model *out)
{
    out->name = BUILTIN_MODEL_NAME;
    out->data = sight_builtin_model;
    /* Both symbols bound the one .incbin blob (builtin_model.S), so their
     * difference is its size; cppcheck sees two unrelated arrays. */
    /* cppcheck-suppress comparePointers */
    out->size = (size_t)(sight_builtin_model_end - sight_builtin_model);
    out->names = sight_builtin_names;
}
