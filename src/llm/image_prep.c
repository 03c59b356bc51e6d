/* The image sent to a vision-language model: downscaled to the configured
 * long side (area average, so small text stays legible rather than aliased),
 * JPEG quality 90, base64 in a data: URL. The model server never fetches. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <vips/vips.h>

#include "llm/llm_internal.h"

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

uint8_t *llm_resample(const uint8_t *src, int w, int h, int tw, int th)
{
    uint8_t *dst = malloc((size_t)tw * th * 3);
    if (!dst) return NULL;
    double sx = (double)w / tw, sy = (double)h / th;
    for (int y = 0; y < th; y++) {
        /* Source rows this target row covers; at least one (upscaling picks the nearest). */
        int y0 = (int)(y * sy), y1 = (int)((y + 1) * sy + 0.999999);
        if (y1 > h) y1 = h;
        if (y1 <= y0) y1 = y0 + 1;
        for (int x = 0; x < tw; x++) {
            int x0 = (int)(x * sx), x1 = (int)((x + 1) * sx + 0.999999);
            if (x1 > w) x1 = w;
            if (x1 <= x0) x1 = x0 + 1;
            unsigned long sum[3] = {0, 0, 0};
            for (int yy = y0; yy < y1; yy++) {
                const uint8_t *p = src + ((size_t)yy * w + x0) * 3;
                for (int xx = x0; xx < x1; xx++, p += 3) {
                    sum[0] += p[0];
                    sum[1] += p[1];
                    sum[2] += p[2];
                }
            }
            unsigned long n = (unsigned long)(y1 - y0) * (unsigned long)(x1 - x0);
            uint8_t *d = dst + ((size_t)y * tw + x) * 3;
            for (int c = 0; c < 3; c++) d[c] = (uint8_t)((sum[c] + n / 2) / n);
        }
    }
    return dst;
}

int llm_jpeg_encode(const uint8_t *rgb, int w, int h, int quality, unsigned char **out, size_t *out_len)
{
    /* libvips' JPEG writer (libjpeg underneath, same quality scale); the
     * result is copied into malloc'd memory, which callers free(). */
    if (image_init(NULL) != 0) return -1;
    VipsImage *in = vips_image_new_from_memory(rgb, (size_t)w * h * 3, w, h, 3, VIPS_FORMAT_UCHAR);
    if (!in) {
        vips_error_clear();
        return -1;
    }
    void *buf = NULL;
    size_t len = 0;
    int rc = vips_jpegsave_buffer(in, &buf, &len, "Q", quality, "strip", TRUE, NULL);
    g_object_unref(in);
    if (rc != 0) {
        vips_error_clear();
        return -1;
    }
    unsigned char *copy = malloc(len ? len : 1);
    if (copy) memcpy(copy, buf, len);
    g_free(buf);
    if (!copy) return -1;
    *out = copy;
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
        scaled = llm_resample(img->pixels, img->width, img->height, tw, th);
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
