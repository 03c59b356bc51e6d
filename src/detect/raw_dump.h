/* Writes a model's raw output tensors as NumPy .npy files, with the letterbox
 * geometry beside them, for `sightd detect --dump-raw DIR`: an independent
 * reference (the tests' numpy one) can then decode the very same outputs. */
#ifndef SIGHT_DETECT_RAW_DUMP_H
#define SIGHT_DETECT_RAW_DUMP_H

#include <stddef.h>
#include <stdint.h>

#include "detect/letterbox.h"

/* DIR/<seq>-output<i>.npy for each output (float32, C order) and
 * DIR/<seq>-meta.json (gain, pad_left, pad_top, in_w, in_h, img_w, img_h).
 * Returns 0, or -1 when a file cannot be written. */
int raw_dump_write(const char *dir, unsigned seq, const float *const *data, const int64_t (*shapes)[8],
                   const size_t *ndims, int n_out, const letterbox_map *map, int in_w, int in_h, int img_w, int img_h);

#endif
