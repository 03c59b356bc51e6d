/* The local provider's answers from hand-made OCR and detection results
 * (the shapes the ocr and yolo stages produce). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "llm/llm_internal.h"

/* One OCR line: text, confidence, an axis-aligned box at (x,y) w x h. */
static json_t *line(const char *text, double conf, double x, double y, double w, double h)
{
    return json_pack("{s:s,s:f,s:[[f,f],[f,f],[f,f],[f,f]]}", "text", text, "confidence", conf, "box", x, y, x + w, y,
                     x + w, y + h, x, y + h);
}

static json_t *ocr(json_t *lines)
{
    json_t *o = json_object();
    json_object_set_new(o, "lines", lines);
    json_object_set_new(o, "text", json_string("(joined)"));
    json_object_set_new(o, "speed_ms", json_object());
    json_t *e = json_object();
    json_object_set_new(e, "ocr", o);
    return e;
}

static json_t *det(const char *cls, double conf, double x1, double y1, double x2, double y2)
{
    return json_pack("{s:i,s:s,s:f,s:{s:f,s:f,s:f,s:f}}", "class_id", 0, "class", cls, "confidence", conf, "box", "x1",
                     x1, "y1", y1, "x2", x2, "y2", y2);
}

static const char *resp(const json_t *r) { return json_string_value(json_object_get(r, "response")); }
static json_t *first(const json_t *r) { return json_array_get(json_object_get(r, "matches"), 0); }
static const char *first_text(const json_t *r) { return json_string_value(json_object_get(first(r), "text")); }

static void test_serial_on_a_plate(void)
{
    json_t *e = ocr(json_pack("[o,o,o,o]", line("ACME Industrial", 0.99, 10, 10, 300, 30),
                              line("MODEL X200", 0.97, 10, 50, 200, 30), line("S/N: AB12-34567", 0.93, 10, 90, 260, 30),
                              line("Made in Germany 2021", 0.95, 10, 130, 280, 30)));
    json_t *r = llm_local_answer("What is the serial number?", e);
    CHECK_STR(json_string_value(json_object_get(r, "provider")), "local");
    CHECK_STR(json_string_value(json_object_get(r, "answer_type")), "text");
    CHECK_STR(first_text(r), "AB12-34567");
    CHECK_STR(json_string_value(json_object_get(first(r), "line")), "S/N: AB12-34567");
    CHECK_STR(json_string_value(json_object_get(first(r), "kind")), "serial_number");
    CHECK(json_is_true(json_object_get(first(r), "labelled")));
    CHECK(json_number_value(json_object_get(first(r), "confidence")) > 0.929);
    json_t *box = json_object_get(first(r), "box");
    CHECK_EQ_INT(json_array_size(box), 4);
    CHECK_EQ_INT((int)json_number_value(json_array_get(json_array_get(box, 0), 1)), 90);
    CHECK(strstr(resp(r), "AB12-34567") != NULL);
    CHECK_EQ_INT(json_array_size(json_object_get(r, "matches")), 1);
    json_decref(r);

    /* Other ways to ask, and the model next to it. */
    r = llm_local_answer("find me the S/N", e);
    CHECK_STR(first_text(r), "AB12-34567");
    json_decref(r);
    r = llm_local_answer("which model is this?", e);
    CHECK_STR(first_text(r), "X200");
    json_decref(r);
    json_decref(e);
}

static void test_serial_variants(void)
{
    const char *cases[][2] = {
        {"Serial No.: 5CG1234XYZ", "5CG1234XYZ"},
        {"SERIAL NUMBER 0042-7781", "0042-7781"},
        {"SN:QX7781Z", "QX7781Z"},
        {"s/n 12345 67890", "12345 67890"},
        {"Ser. No. 99-1", "99-1"},
        {"Serial # 7781.", "7781"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *e = ocr(json_pack("[o,o]", line("Rated 230V 50Hz", 0.9, 0, 0, 100, 20), line(cases[i][0], 0.8, 0, 30, 100, 20)));
        json_t *r = llm_local_answer("serial number?", e);
        CHECK_STR(first_text(r), cases[i][1]);
        json_decref(r);
        json_decref(e);
    }
    /* The label alone on its line: the value is the line to its right or below. */
    json_t *e = ocr(json_pack("[o,o,o]", line("Serial Number", 0.9, 10, 10, 120, 20), line("7K3-99812", 0.88, 10, 36, 100, 20),
                              line("Lot 4", 0.9, 300, 200, 50, 20)));
    json_t *r = llm_local_answer("what's the serial?", e);
    CHECK_STR(first_text(r), "7K3-99812");
    CHECK_EQ_INT((int)json_number_value(json_array_get(json_array_get(json_object_get(first(r), "box"), 0), 1)), 36);
    json_decref(r);
    json_decref(e);
    /* No label at all: the most serial-like text, said to be a guess. */
    e = ocr(json_pack("[o,o]", line("Widget Pro", 0.9, 0, 0, 100, 20), line("AX77102938", 0.7, 0, 30, 100, 20)));
    r = llm_local_answer("serial number", e);
    CHECK_STR(first_text(r), "AX77102938");
    CHECK(json_is_false(json_object_get(first(r), "labelled")));
    CHECK(strstr(resp(r), "No text is labelled") != NULL);
    json_decref(r);
    json_decref(e);
    /* Nothing like one. */
    e = ocr(json_pack("[o]", line("Hello world", 0.9, 0, 0, 100, 20)));
    r = llm_local_answer("serial number", e);
    CHECK_EQ_INT(json_array_size(json_object_get(r, "matches")), 0);
    CHECK(strstr(resp(r), "No serial number found") != NULL);
    json_decref(r);
    json_decref(e);
}

static void test_plate_price_date(void)
{
    json_t *e = ocr(json_pack("[o,o,o]", line("POLICE", 0.9, 0, 0, 100, 20), line("B-MW 1234", 0.91, 0, 30, 120, 30),
                              line("Berlin", 0.9, 0, 70, 80, 20)));
    json_t *r = llm_local_answer("read the licence plate", e);
    CHECK_STR(first_text(r), "B-MW 1234");
    CHECK_STR(json_string_value(json_object_get(first(r), "kind")), "plate");
    json_decref(r);
    json_decref(e);

    e = ocr(json_pack("[o,o,o]", line("Organic Apples", 0.9, 0, 0, 100, 20), line("Price: $3.49 / lb", 0.9, 0, 30, 100, 20),
                      line("Item 4411", 0.9, 0, 60, 100, 20)));
    r = llm_local_answer("How much does it cost?", e);
    CHECK_STR(first_text(r), "$3.49");
    json_decref(r);
    json_decref(e);
    e = ocr(json_pack("[o,o]", line("Kaffee", 0.9, 0, 0, 100, 20), line("4,99 €", 0.9, 0, 30, 100, 20)));
    r = llm_local_answer("what is the price", e);
    CHECK_STR(first_text(r), "4,99 €");
    CHECK(json_is_false(json_object_get(first(r), "labelled")));
    json_decref(r);
    json_decref(e);

    e = ocr(json_pack("[o,o,o]", line("LOT 22A", 0.9, 0, 0, 100, 20), line("EXP 2026-03-01", 0.9, 0, 30, 100, 20),
                      line("MFG 2024-03-01", 0.8, 0, 60, 100, 20)));
    r = llm_local_answer("what is the expiry date?", e);
    CHECK_STR(first_text(r), "2026-03-01");
    CHECK_STR(json_string_value(json_object_get(first(r), "line")), "EXP 2026-03-01");
    json_decref(r);
    r = llm_local_answer("which lot?", e);
    CHECK_STR(first_text(r), "22A");
    json_decref(r);
    json_decref(e);
    e = ocr(json_pack("[o,o]", line("Best before 12 Jan 2027", 0.9, 0, 0, 100, 20), line("Store cool", 0.9, 0, 30, 100, 20)));
    r = llm_local_answer("best before date", e);
    CHECK_STR(first_text(r), "12 Jan 2027");
    json_decref(r);
    json_decref(e);
    e = ocr(json_pack("[o]", line("Invoice 03/11/2025 total", 0.9, 0, 0, 100, 20)));
    r = llm_local_answer("date?", e);
    CHECK_STR(first_text(r), "03/11/2025");
    json_decref(r);
    json_decref(e);
}

static void test_all_text_and_no_ocr(void)
{
    json_t *e = ocr(json_pack("[o,o]", line("STOP", 0.99, 0, 0, 100, 40), line("ALL WAY", 0.9, 0, 50, 100, 20)));
    json_t *r = llm_local_answer("what does the sign say?", e);
    CHECK_EQ_INT(json_array_size(json_object_get(r, "matches")), 2);
    CHECK_STR(first_text(r), "STOP");
    json_decref(r);
    r = llm_local_answer("is there any text?", e);
    CHECK_STR(json_string_value(json_object_get(r, "answer_type")), "text");
    json_decref(r);
    json_decref(e);

    /* A server without OCR says so rather than answering "none". */
    e = json_object();
    r = llm_local_answer("serial number?", e);
    CHECK(strstr(resp(r), "no OCR stage") != NULL);
    CHECK_EQ_INT(json_array_size(json_object_get(r, "matches")), 0);
    json_decref(r);
    json_decref(e);
}

static void test_counting_and_presence(void)
{
    json_t *e = json_object();
    json_object_set_new(e, "yolo", json_pack("{s:s,s:[o,o,o,o,o]}", "model", "m", "detections", det("bus", 0.93, 10, 200, 800, 770), det("person", 0.9, 50, 400, 240, 900), det("person", 0.88, 220, 400, 340, 860), det("person", 0.8, 660, 380, 810, 880), det("person", 0.4, 0, 550, 80, 870)));
    json_t *r = llm_local_answer("How many people are in the picture?", e);
    CHECK_STR(json_string_value(json_object_get(r, "answer_type")), "count");
    CHECK_EQ_INT(json_integer_value(json_object_get(r, "count")), 4);
    CHECK_STR(json_string_value(json_object_get(r, "class")), "person");
    CHECK_EQ_INT(json_array_size(json_object_get(r, "detections")), 4);
    CHECK(!strncmp(resp(r), "4 people detected", 17));
    json_decref(r);
    r = llm_local_answer("count the buses", e);
    CHECK_EQ_INT(json_integer_value(json_object_get(r, "count")), 1);
    json_decref(r);
    r = llm_local_answer("Is there a dog?", e);
    CHECK_STR(json_string_value(json_object_get(r, "answer_type")), "presence");
    CHECK_EQ_INT(json_integer_value(json_object_get(r, "count")), 0);
    CHECK(!strncmp(resp(r), "No dog detected", 15));
    json_decref(r);
    r = llm_local_answer("are there any pedestrians?", e);
    CHECK(!strncmp(resp(r), "Yes: 4", 6));
    json_decref(r);
    /* Anything else: what is known, and that no language model is configured. */
    r = llm_local_answer("Describe the scene", e);
    CHECK_STR(json_string_value(json_object_get(r, "answer_type")), "summary");
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(r, "objects"), "person")), 4);
    CHECK(strstr(resp(r), "No language model is configured") != NULL);
    json_decref(r);
    r = llm_local_answer(NULL, e);
    CHECK_STR(json_string_value(json_object_get(r, "answer_type")), "summary");
    json_decref(r);
    json_decref(e);
    /* No detector. */
    e = json_object();
    r = llm_local_answer("how many cars", e);
    CHECK(strstr(resp(r), "no object detection model") != NULL);
    json_decref(r);
    json_decref(e);
}

int main(void)
{
    test_serial_on_a_plate();
    test_serial_variants();
    test_plate_price_date();
    test_all_text_and_no_ocr();
    test_counting_and_presence();
    return check_report("test_llm_local");
}
