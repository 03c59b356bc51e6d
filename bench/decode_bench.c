/* Decode + letterbox time per image, as the detector stage pays it: image_decode
 * with the detector's shrink hint (3 x 640, fit; detector.c's SHRINK_MARGIN),
 * then letterbox to 640x640 floats. scripts/bench builds this against the
 * current tree and against a base commit (same API) and runs them in turns.
 *
 * Usage: decode_bench ROUNDS FILE...   prints "file wall-ms cpu-ms WxH" per round
 * and file, after WARMUP unprinted rounds (the first decodes of a process pay
 * for lazy set-up in the libraries and the allocator, a server only once); cpu-ms is the process's CPU time (all threads), which the other
 * work on a shared machine disturbs less than the wall time. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "detect/letterbox.h"
#include "image/decode.h"

/* Only the libvips decoder has it; weak so the base commit links too. */
extern int image_init(const char *argv0) __attribute__((weak));

static double now_ms(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: decode_bench ROUNDS FILE...\n");
        return 2;
    }
    /* As sightd serve sets it (main.c): buffers of 1 MiB and more get their own mapping. */
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    if (image_init && image_init(argv[0]) != 0)
        return 1;
    enum { WARMUP = 2 };
    int rounds = atoi(argv[1]) + WARMUP;
    float *dst = malloc(sizeof(float) * 3 * 640 * 640);
    for (int r = 0; r < rounds; r++)
        for (int i = 2; i < argc; i++) {
            FILE *f = fopen(argv[i], "rb");
            if (!f) { perror(argv[i]); return 1; }
            fseek(f, 0, SEEK_END);
            long n = ftell(f);
            rewind(f);
            unsigned char *buf = malloc((size_t)n);
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) { perror(argv[i]); return 1; }
            fclose(f);
            image_decode_opts o = {.max_pixels = 100000000, .min_width = 3 * 640, .min_height = 3 * 640, .fit = true};
            image_t img;
            char msg[256];
            double t0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
            image_status st = image_decode(buf, (size_t)n, &o, &img, msg, sizeof msg);
            if (st != IMAGE_OK) { fprintf(stderr, "%s: %s\n", argv[i], msg); return 1; }
            letterbox_map map;
            letterbox(img.pixels, img.width, img.height, dst, 640, 640, LETTERBOX_ULTRALYTICS, &map);
            double t1 = now_ms(CLOCK_MONOTONIC), c1 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
            if (r >= WARMUP)
                printf("%s %.3f %.3f %dx%d\n", argv[i], t1 - t0, c1 - c0, img.width, img.height);
            image_free(&img);
            free(buf);
        }
    free(dst);
    return 0;
}
