/* image_decode through libvips and the BMP reader, with and without the
 * shrink hint. max_pixels is small so the fuzzer does not spend its time on
 * big buffers. Seeds: one small file per format in fuzz/corpus/image. */
#include "fuzz_common.h"
#include "image/decode.h"

static void check(const uint8_t *data, size_t size, const image_decode_opts *o)
{
    image_t img;
    char msg[160];
    image_status st = image_decode(data, size, o, &img, msg, sizeof msg);
    if (st == IMAGE_OK) {
        if (!img.pixels || img.width <= 0 || img.height <= 0 ||
            (uint64_t)img.width * (uint64_t)img.height > o->max_pixels ||
            img.exif_orientation < 1 || img.exif_orientation > 8)
            abort();
        /* Touch the first and the last pixel: the buffer must be that large. */
        volatile uint8_t x = img.pixels[0] ^ img.pixels[(size_t)img.width * img.height * 3 - 1];
        (void)x;
        image_free(&img);
    } else if (img.pixels || !msg[0]) {
        abort();
    }
    (void)image_status_code(st);
}

/* Known upstream leak, left visible to nothing else: libheif 1.15's dav1d
 * plugin hands dav1d a zero-length AV1 chunk from a corrupt AVIF, dav1d
 * refuses it ("Input validation check ... failed in dav1d_send_data") and
 * the 40-byte Dav1dData buffers are never released: 80 bytes per such file.
 * Only libdav1d's allocations are suppressed; leaks of ours still fail. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libdav1d.so\n";
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    return image_init((*argv)[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    image_decode_opts full = {.max_pixels = 4u << 20};
    check(data, size, &full);
    /* The shrink hint; sizes from the last byte so the fuzzer can vary them. */
    uint8_t k = size ? data[size - 1] : 0;
    image_decode_opts hint = {.max_pixels = 4u << 20, .min_width = 1 + (k & 15) * 8, .min_height = 1 + (k >> 4) * 8, .fit = k & 1};
    check(data, size, &hint);
    (void)image_sniff(data, size);
    return 0;
}
