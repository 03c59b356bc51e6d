/* video_open / video_next over hostile bytes: the mov and matroska demuxers
 * and the allowed decoders through the in-memory I/O context, with small
 * limits so the fuzzer does not spend its time on big frames or long files.
 * Every frame handed out must be as large as it says and within the budget.
 * Seeds: fuzz/corpus/video (tiny H.264/MP4, VP8/WebM and VP9/WebM clips). */
#include <stdlib.h>

#include "fuzz_common.h"
#include "video/video_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t k = size ? data[size - 1] : 0;
    video_limits lim = {.fps = k & 1 ? 0 : 5, .max_frames = 16, .max_seconds = 30, .max_pixels = 1u << 20, .fit_w = k & 2 ? 64 : 0, .fit_h = k & 2 ? 64 : 0};
    sight_error err;
    video_reader *v = video_open(data, size, &lim, &err);
    if (!v) {
        if (!err.code[0]) abort();
        return 0;
    }
    image_t img;
    int64_t frame, ms, last = -1;
    int rc;
    while ((rc = video_next(v, &img, &frame, &ms, &err)) == 1) {
        if (!img.pixels || img.width <= 0 || img.height <= 0 || (uint64_t)img.orig_width * (uint64_t)img.orig_height > lim.max_pixels ||
            frame <= last || ms < 0)
            abort();
        volatile uint8_t x = img.pixels[0] ^ img.pixels[(size_t)img.width * img.height * 3 - 1];
        (void)x;
        last = frame;
        image_free(&img);
    }
    if (rc < 0 && !err.code[0]) abort();
    video_close(v);
    return 0;
}
