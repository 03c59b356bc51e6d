#include "pipeline/video_sheet.h"

#include <stdlib.h>
#include <string.h>

#include "util/block_reuse.h"
#include "util/buf.h"
#include "util/rgb_resample.h"

#define MAX_TRACKS_SAID 50

typedef struct {
    uint8_t *px; /* cw x ch RGB */
    int64_t ms;
    int ow, oh; /* the frame's own size: its boxes are in these pixels */
    json_t *yolo, *ocr;
} cell;

struct video_sheet {
    int64_t span_ms;
    int side, cw, ch;
    int n;
    cell c[VIDEO_SHEET_CELLS];
};

video_sheet *video_sheet_new(int64_t span_ms, int cell_side)
{
    video_sheet *s = calloc(1, sizeof *s);
    if (s) {
        s->span_ms = span_ms > 0 ? span_ms : 0;
        s->side = cell_side > 0 ? cell_side : 512;
    }
    return s;
}

void video_sheet_free(video_sheet *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        free(s->c[i].px);
        json_decref(s->c[i].yolo);
        json_decref(s->c[i].ocr);
    }
    free(s);
}

bool video_sheet_wants(const video_sheet *s, int64_t ms)
{
    if (s->n >= VIDEO_SHEET_CELLS) return false;
    /* Cell i shows the first frame at or after the middle of quarter i. */
    int64_t target = s->span_ms * (2 * s->n + 1) / (2 * VIDEO_SHEET_CELLS);
    return ms >= target;
}

int video_sheet_add(video_sheet *s, const image_t *img, int64_t ms, const json_t *earlier)
{
    if (s->n >= VIDEO_SHEET_CELLS) return 0;
    int ow = img->orig_width > 0 ? img->orig_width : img->width, oh = img->orig_height > 0 ? img->orig_height : img->height;
    if (s->n == 0) {
        /* Every cell has the first frame's shape, scaled down to the side (never up). */
        int longest = ow > oh ? ow : oh;
        double k = longest > s->side ? (double)s->side / longest : 1.0;
        s->cw = (int)(ow * k + 0.5);
        s->ch = (int)(oh * k + 0.5);
        if (s->cw < 1) s->cw = 1;
        if (s->ch < 1) s->ch = 1;
    }
    cell *c = &s->c[s->n];
    if (!(c->px = rgb_resample(img->pixels, img->width, img->height, s->cw, s->ch))) return -1;
    c->ms = ms;
    c->ow = ow;
    c->oh = oh;
    c->yolo = json_deep_copy(json_object_get(earlier, "yolo"));
    c->ocr = json_deep_copy(json_object_get(earlier, "ocr"));
    s->n++;
    return 0;
}

static double round1(double v) { return (double)(long long)(v * 10.0 + (v < 0 ? -0.5 : 0.5)) / 10.0; }

static void move_key(json_t *o, const char *key, double k, double d)
{
    json_t *v = json_object_get(o, key);
    if (json_is_number(v)) json_object_set_new(o, key, json_real(round1(json_number_value(v) * k + d)));
}

/* A cell's detections and OCR lines, moved into the sheet's pixels, onto all. */
static void ground_cell(const video_sheet *s, int i, json_t *dets, json_t *lines)
{
    const cell *c = &s->c[i];
    double kx = (double)s->cw / c->ow, ky = (double)s->ch / c->oh;
    double dx = (double)(i % 2) * s->cw, dy = (double)(i / 2) * s->ch;
    size_t j;
    json_t *d;
    json_array_foreach(json_object_get(c->yolo, "detections"), j, d) {
        json_t *m = json_deep_copy(d);
        json_t *bx = json_object_get(m, "box");
        move_key(bx, "x1", kx, dx);
        move_key(bx, "x2", kx, dx);
        move_key(bx, "y1", ky, dy);
        move_key(bx, "y2", ky, dy);
        json_object_del(m, "mask"); /* in the frame's pixels: not worth moving for a prompt */
        json_array_append_new(dets, m);
    }
    json_array_foreach(json_object_get(c->ocr, "lines"), j, d) {
        json_t *m = json_deep_copy(d);
        size_t q;
        json_t *pt;
        json_array_foreach(json_object_get(m, "box"), q, pt) {
            if (json_array_size(pt) < 2) continue;
            json_array_set_new(pt, 0, json_real(round1(json_number_value(json_array_get(pt, 0)) * kx + dx)));
            json_array_set_new(pt, 1, json_real(round1(json_number_value(json_array_get(pt, 1)) * ky + dy)));
        }
        json_array_append_new(lines, m);
    }
}

static const char *const PLACE[VIDEO_SHEET_CELLS] = {"top-left", "top-right", "bottom-left", "bottom-right"};

static char *describe(const video_sheet *s, const json_t *tracks)
{
    buf b;
    buf_init(&b, 64 << 10);
    int failed = buf_printf(&b, "This image is a 2x2 contact sheet of %d frame%s sampled evenly from a video, each cell %dx%d pixels, "
                                "in time order left to right, top to bottom:",
                            s->n, s->n == 1 ? "" : "s", s->cw, s->ch);
    for (int i = 0; i < s->n; i++) failed |= buf_printf(&b, "%s %s t=%.1f s", i ? "," : "", PLACE[i], (double)s->c[i].ms / 1000.0);
    if (s->n < VIDEO_SHEET_CELLS) failed |= buf_printf(&b, "; the other cells are empty");
    failed |= buf_printf(&b, ". Answer about the video as these frames show it.\n");
    if (json_array_size(tracks)) {
        failed |= buf_printf(&b, "Objects tracked over the whole video (id, class, seen from-to, frames):\n");
        size_t i;
        json_t *t;
        json_array_foreach(tracks, i, t) {
            if (i >= MAX_TRACKS_SAID) {
                failed |= buf_printf(&b, "... and %zu more tracks\n", json_array_size(tracks) - i);
                break;
            }
            const char *cls = json_string_value(json_object_get(t, "class"));
            failed |= buf_printf(&b, "- #%lld %s %.1f-%.1f s, %lld frames\n", (long long)json_integer_value(json_object_get(t, "track_id")), cls ? cls : "?",
                                 (double)json_integer_value(json_object_get(t, "first_ms")) / 1000.0,
                                 (double)json_integer_value(json_object_get(t, "last_ms")) / 1000.0,
                                 (long long)json_integer_value(json_object_get(t, "frames")));
        }
    }
    if (failed) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b, NULL);
}

int video_sheet_compose(const video_sheet *s, const json_t *tracks, image_t *out, json_t **grounding, char **context)
{
    if (s->n == 0) return -1;
    int w = 2 * s->cw, h = 2 * s->ch;
    uint8_t *px = block_alloc((size_t)w * h * 3);
    if (!px) return -1;
    memset(px, 24, (size_t)w * h * 3); /* empty cells: near black */
    for (int i = 0; i < s->n; i++) {
        int x0 = (i % 2) * s->cw, y0 = (i / 2) * s->ch;
        for (int y = 0; y < s->ch; y++)
            memcpy(px + ((size_t)(y0 + y) * w + x0) * 3, s->c[i].px + (size_t)y * s->cw * 3, (size_t)s->cw * 3);
    }
    bool any_yolo = false, any_ocr = false;
    json_t *dets = json_array(), *lines = json_array();
    for (int i = 0; i < s->n; i++) {
        any_yolo |= s->c[i].yolo != NULL;
        any_ocr |= s->c[i].ocr != NULL;
        ground_cell(s, i, dets, lines);
    }
    json_t *g = json_object();
    if (any_yolo) json_object_set_new(g, "yolo", json_pack("{s:o}", "detections", dets));
    else json_decref(dets);
    if (any_ocr) json_object_set_new(g, "ocr", json_pack("{s:o}", "lines", lines));
    else json_decref(lines);
    char *text = describe(s, tracks);
    if (!text) {
        json_decref(g);
        block_free(px);
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->pixels = px;
    out->width = out->orig_width = w;
    out->height = out->orig_height = h;
    *grounding = g;
    *context = text;
    return 0;
}
