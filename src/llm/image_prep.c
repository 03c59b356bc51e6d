/* The image sent to a vision-language model: downscaled to the configured
 * long side (area average, so small text stays legible rather than aliased),
 * JPEG quality 90, base64 in a data: URL. The model server never fetches.
 * libjpeg directly, not libvips: vips' writer runs a pipeline whose worker
 * threads grow with the LLM calls at once, and the HTTP front end keeps the
 * thread count fixed (test_frontend's 200 LLM streams). */
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which needs FILE and size_t */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <openssl/evp.h>

#include "llm/llm_internal.h"
#include "util/rgb_resample.h"

void llm_target_size(int w, int h, int max_side, int *tw, int *th)
{
    int longest = w > h ? w : h;
    if (max_side <= 0 || longest <= max_side) {
        *tw = w;
        *th = h;
        return;
    }
    double s = (double)max_side / longest;
    *tw = (int)(w * s + 0.5);
    *th = (int)(h * s + 0.5);
    if (*tw < 1) *tw = 1;
    if (*th < 1) *th = 1;
}

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
} jerr;

static void on_jpeg_error(j_common_ptr cinfo)
{
    longjmp(((jerr *)cinfo->err)->jb, 1);
}

int llm_jpeg_encode(const uint8_t *rgb, int w, int h, int quality, unsigned char **out, size_t *out_len)
{
    struct jpeg_compress_struct ci;
    jerr je;
    unsigned char *buf = NULL;
    unsigned long len = 0;
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = on_jpeg_error;
    if (setjmp(je.jb)) {
        /* Only reachable on allocation failure (the input is our own valid
         * RGB). The memory destination's buffer is not freed here: libjpeg may
         * have replaced it already, and freeing a stale pointer is worse than
         * a leak on a path that OOM already made fatal for this file. */
        jpeg_destroy_compress(&ci);
        return -1;
    }
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &buf, &len);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)ci.next_scanline * w * 3);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci); /* sets buf and len to the final buffer */
    jpeg_destroy_compress(&ci);
    *out = buf;
    *out_len = len;
    return 0;
}

char *llm_base64(const unsigned char *buf, size_t len)
{
    if (len > (size_t)1 << 30) return NULL; /* EVP_EncodeBlock takes an int */
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out) return NULL;
    EVP_EncodeBlock((unsigned char *)out, buf, (int)len);
    return out;
}

char *llm_image_data_url(const image_t *img, int max_side, int *sent_w, int *sent_h)
{
    /* The target is computed from the full-size dimensions: the decoder may
     * have shrunk the image already (DCT scaling), never below this size. */
    int tw, th;
    llm_target_size(img->orig_width, img->orig_height, max_side, &tw, &th);
    const uint8_t *px = img->pixels;
    uint8_t *scaled = NULL;
    if (tw != img->width || th != img->height) {
        scaled = rgb_resample(img->pixels, img->width, img->height, tw, th);
        if (!scaled) return NULL;
        px = scaled;
    }
    unsigned char *jpg = NULL;
    size_t jlen = 0;
    int rc = llm_jpeg_encode(px, tw, th, 90, &jpg, &jlen);
    free(scaled);
    if (rc) return NULL;
    char *b64 = llm_base64(jpg, jlen);
    free(jpg);
    if (!b64) return NULL;
    static const char prefix[] = "data:image/jpeg;base64,";
    size_t blen = strlen(b64);
    char *url = malloc(sizeof prefix + blen);
    if (url) {
        memcpy(url, prefix, sizeof prefix - 1);
        memcpy(url + sizeof prefix - 1, b64, blen + 1);
    }
    free(b64);
    *sent_w = tw;
    *sent_h = th;
    return url;
}
