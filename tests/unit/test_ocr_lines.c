/* Reading order and the joined page text. */
#include <stdlib.h>

#include "check.h"
#include "ocr/lines.h"

static void box(ocr_pt b[4], float x, float y, float w, float h)
{
    b[0] = (ocr_pt){x, y}, b[1] = (ocr_pt){x + w, y}, b[2] = (ocr_pt){x + w, y + h}, b[3] = (ocr_pt){x, y + h};
}

static void test_order(void)
{
    ocr_pt b[5][4];
    box(b[0], 200, 52, 80, 20); /* row 2, right; a little lower than its neighbour */
    box(b[1], 10, 10, 100, 20); /* row 1 */
    box(b[2], 10, 48, 150, 20); /* row 2, left */
    box(b[3], 10, 90, 60, 20);  /* row 3 */
    box(b[4], 130, 12, 40, 16); /* row 1, right, smaller */
    int order[5], row[5];
    CHECK(ocr_reading_order((const ocr_pt(*)[4])b, 5, order, row) == 0);
    int want[5] = {1, 4, 2, 0, 3}, want_row[5] = {0, 0, 1, 1, 2};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(order[i], want[i]);
        CHECK_EQ_INT(row[i], want_row[i]);
    }
    const char *texts[5] = {"SERIAL", "NO.", "A1B2", "", "END"};
    char *s = ocr_join_lines(texts, row, 5);
    CHECK_STR(s, "SERIAL NO.\nA1B2\nEND");
    free(s);
    CHECK(ocr_reading_order((const ocr_pt(*)[4])b, 0, order, row) == 0);
    s = ocr_join_lines(texts, row, 0);
    CHECK_STR(s, "");
    free(s);
}

static void test_rotated_line(void)
{
    /* A line tilted by a few degrees is one row, even though its right end sits
     * lower than the next line's top would be on a straight page. */
    ocr_pt b[2][4] = {{{0, 0}, {300, 15}, {299, 45}, {-1, 30}}, {{0, 60}, {300, 75}, {299, 105}, {-1, 90}}};
    int order[2], row[2];
    ocr_reading_order((const ocr_pt(*)[4])b, 2, order, row);
    CHECK(order[0] == 0 && order[1] == 1 && row[0] != row[1]);
}

int main(void)
{
    test_order();
    test_rotated_line();
    return check_report("test_ocr_lines");
}
