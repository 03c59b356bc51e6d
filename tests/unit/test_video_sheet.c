/* is_llm on a video: which frames the contact sheet keeps (the first at or
 * after the middle of each quarter), the 2x2 layout in time order, the
 * detections moved into the sheet's pixels, and what the prompt is told. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pipeline/video_sheet.h"
#include "util/block_reuse.h"

static image_t frame(int w, int h, uint8_t v)
{
    image_t img = {.width = w, .height = h, .orig_width = w, .orig_height = h};
    img.pixels = block_alloc((size_t)w * h * 3);
    memset(img.pixels, v, (size_t)w * h * 3);
    return img;
}

static int px(const image_t *s, int x, int y) { return s->pixels[((size_t)y * s->width + x) * 3]; }

static void test_four_frames(void)
{
    video_sheet *s = video_sheet_new(4000, 100);
    int kept = 0;
    int64_t kept_ms[4] = {0};
    for (int64_t ms = 0; ms < 4000; ms += 250) {
        if (!video_sheet_wants(s, ms)) continue;
        image_t img = frame(200, 100, (uint8_t)(40 + ms / 50));
        json_t *earlier = json_pack("{s:{s:[{s:s,s:f,s:{s:f,s:f,s:f,s:f}}]}}", "yolo", "detections", "class", "person", "confidence", 0.9, "box", "x1",
                                    20.0, "y1", 10.0, "x2", 60.0, "y2", 50.0);
        CHECK(video_sheet_add(s, &img, ms, earlier) == 0);
        json_decref(earlier);
        image_free(&img);
        kept_ms[kept++] = ms;
    }
    CHECK_EQ_INT(kept, 4);
    CHECK_EQ_INT(kept_ms[0], 500);
    CHECK_EQ_INT(kept_ms[1], 1500);
    CHECK_EQ_INT(kept_ms[2], 2500);
    CHECK_EQ_INT(kept_ms[3], 3500);
    CHECK(!video_sheet_wants(s, 3750));

    json_t *tracks = json_pack("[{s:i,s:s,s:i,s:i,s:i}]", "track_id", 7, "class", "person", "first_ms", 0, "last_ms", 3750, "frames", 16);
    image_t sheet;
    json_t *g = NULL;
    char *text = NULL;
    CHECK(video_sheet_compose(s, tracks, &sheet, &g, &text) == 0);
    CHECK_EQ_INT(sheet.width, 200);
    CHECK_EQ_INT(sheet.height, 100);
    CHECK_EQ_INT(sheet.orig_width, 200);
    /* Left to right, top to bottom, in time order. */
    CHECK_EQ_INT(px(&sheet, 50, 25), 40 + 500 / 50);
    CHECK_EQ_INT(px(&sheet, 150, 25), 40 + 1500 / 50);
    CHECK_EQ_INT(px(&sheet, 50, 75), 40 + 2500 / 50);
    CHECK_EQ_INT(px(&sheet, 150, 75), 40 + 3500 / 50);
    json_t *dets = json_object_get(json_object_get(g, "yolo"), "detections");
    CHECK_EQ_INT(json_array_size(dets), 4);
    CHECK(!json_object_get(g, "ocr"));
    json_t *box = json_object_get(json_array_get(dets, 3), "box"); /* bottom-right: half size, +100, +50 */
    CHECK(json_real_value(json_object_get(box, "x1")) == 110.0);
    CHECK(json_real_value(json_object_get(box, "y1")) == 55.0);
    CHECK(json_real_value(json_object_get(box, "x2")) == 130.0);
    CHECK(json_real_value(json_object_get(box, "y2")) == 75.0);
    CHECK(text && strstr(text, "2x2 contact sheet of 4 frames"));
    CHECK(text && strstr(text, "top-left t=0.5 s") && strstr(text, "bottom-right t=3.5 s"));
    CHECK(text && strstr(text, "#7 person 0.0-3.8 s, 16 frames"));
    free(text);
    json_decref(g);
    json_decref(tracks);
    image_free(&sheet);
    video_sheet_free(s);
}

static void test_short_and_empty(void)
{
    video_sheet *s = video_sheet_new(0, 64); /* unknown span: the first frames */
    image_t sheet;
    json_t *g = NULL;
    char *text = NULL;
    CHECK(video_sheet_compose(s, NULL, &sheet, &g, &text) == -1); /* nothing kept */
    CHECK(video_sheet_wants(s, 0));
    image_t img = frame(32, 48, 200); /* smaller than a cell: never enlarged */
    CHECK(video_sheet_add(s, &img, 0, NULL) == 0);
    image_free(&img);
    CHECK(video_sheet_compose(s, NULL, &sheet, &g, &text) == 0);
    CHECK_EQ_INT(sheet.width, 64);
    CHECK_EQ_INT(sheet.height, 96);
    CHECK_EQ_INT(px(&sheet, 10, 10), 200);
    CHECK_EQ_INT(px(&sheet, 40, 60), 24); /* an empty cell */
    CHECK(json_object_size(g) == 0);
    CHECK(text && strstr(text, "1 frame sampled") && strstr(text, "the other cells are empty"));
    free(text);
    json_decref(g);
    image_free(&sheet);
    video_sheet_free(s);
}

int main(void)
{
    test_four_frames();
    test_short_and_empty();
    return check_report("video_sheet");
}
