/* OCR: PaddleOCR PP-OCRv4 text detection and recognition on ONNX Runtime.
 *
 * A folder holds the detector (ch_PP-OCRv4_det_infer.onnx or det.onnx), the
 * recogniser (ch_PP-OCRv4_rec_infer.onnx or rec.onnx) and its dictionary
 * (ppocr_keys_v1.txt or dict.txt). An image goes: detector at a size cap
 * (longest side 960, multiple of 32) -> text-probability map -> boxes (DB
 * post-processing) -> upright crops -> recogniser in batches of similar width
 * -> CTC decoding -> lines in reading order. The engine is thread-safe. */
#ifndef SIGHT_OCR_OCR_H
#define SIGHT_OCR_OCR_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "image/decode.h"
#include "pipeline/stages.h"

typedef struct ocr_engine ocr_engine;

/* Whether dir has a detector, a recogniser and a dictionary; when not, names
 * the first file missing in missing. */
bool ocr_models_present(const char *dir, char *missing, size_t missing_len);

/* Loads the models and checks them with a warm-up run; threads = intra-op
 * threads per run (0 = one per core). NULL with err on failure. */
ocr_engine *ocr_open(const char *dir, int threads, char *err, size_t err_len);
void ocr_close(ocr_engine *e);

/* The pipeline stage ("ocr"). */
const stage *ocr_stage(ocr_engine *e);

/* One line of what ocr_open loaded, for the start-up log. */
void ocr_describe(const ocr_engine *e, char *buf, size_t len);

/* Reads the text of img: *out = {"model", "lines": [{text, confidence, box}],
 * "text", "speed_ms"}; boxes in pixels of the full-size image. A blank or
 * tiny image gives no lines. Returns 0, or -1 with err ("ocr_unavailable"
 * when a model run fails). */
int ocr_read(ocr_engine *e, const image_t *img, json_t **out, sight_error *err);

/* Same, giving up between recognition batches when *cancelled turns true. */
int ocr_read_cancellable(ocr_engine *e, const image_t *img, const atomic_bool *cancelled, json_t **out,
                         sight_error *err);

#endif
