#include "detect/detector.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <onnxruntime_c_api.h>

#include "detect/center_crop.h"
#include "detect/letterbox.h"
#include "detect/pyrepr.h"
#include "detect/raw_dump.h"
#include "detect/slice_detect.h"
#include "detect/task_result.h"
#include "detect/yolo_tasks.h"
#include "image/icc.h"
#include "ort/ort_env.h"
#include "util/array.h"
#include "util/clock.h"
#include "util/file_read.h"
#include "util/json_out.h"
#include "util/log.h"
#include "util/parallel.h"

/* See detector_open: how much larger than the model input a reduced-scale
 * JPEG decode must stay, in halves (3: 1.5 times), and how much larger the
 * photo must be for a reduced decode at all (5 times). */
#define SHRINK_MARGIN_HALVES 3
#define SHRINK_FROM 5

struct detector {
    const OrtApi *api;
    OrtSession *sess;
    OrtMemoryInfo *mem;
    char *input_name, *output_names[2];
    int n_out; /* outputs read: 2 for segment (prototypes), else 1 */
    int in_w, in_h;
    yolo_layout layout;
    int nc;
    yolo_task_spec spec;
    char *task;       /* metadata task, or NULL */
    int kpt_shape[2]; /* metadata kpt_shape, or 0 */
    char *dump_dir;   /* `sightd detect --dump-raw`: where raw outputs go, or NULL */
    unsigned dump_seq;
    letterbox_style style;
    char **names;
    int n_names;
    char model_name[128];
    int intra_threads, concurrency;

    gate runs;          /* at most `concurrency` Runs at once */
    pthread_mutex_t mu; /* guards the pool */
    /* Input buffers (3*in_h*in_w floats) reused across requests: a fresh 5 MB
     * allocation per image would cost page faults on every request. */
    float **pool;
    int pool_n, pool_cap;

    stage st;
};

#define ORT_TRY(call, what)                                                   \
    do {                                                                      \
        if (ort_status_fail(d->api, (call), err, err_len, (what))) goto fail; \
    } while (0)

/* Class names, one per line (blank lines skipped), from a labels file's text. */
static int add_labels(detector *d, const char *text, const char *what, char *err, size_t err_len)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\r\n");
        if (n > 0) {
            char **nn = array_resize(d->names, (size_t)d->n_names + 1, sizeof *nn);
            if (nn) d->names = nn;
            if (!nn || !(nn[d->n_names] = strndup(p, n))) {
                snprintf(err, err_len, "out of memory");
                return -1;
            }
            d->n_names++;
        }
        p += n;
        p += strspn(p, "\r\n");
    }
    if (d->n_names == 0) {
        snprintf(err, err_len, "labels %s have no names", what);
        return -1;
    }
    return 0;
}

static int load_labels(detector *d, const char *path, char *err, size_t err_len)
{
    size_t len;
    char *text = read_whole_file(path, &len);
    if (!text) {
        snprintf(err, err_len, "cannot read labels file %s", path);
        return -1;
    }
    /* read_whole_file gives bytes, not a string. */
    char *z = array_resize(text, len + 1, 1);
    if (!z) {
        free(text);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    z[len] = 0;
    int rc = add_labels(d, z, path, err, err_len);
    free(z);
    return rc;
}

/* Reads names/imgsz/end2end from the model's metadata. Missing keys are fine
 * (non-Ultralytics exports have none); malformed ones are reported. */
static int read_metadata(detector *d, int *end2end, int imgsz[2], char *err, size_t err_len)
{
    OrtAllocator *alloc;
    OrtModelMetadata *meta = NULL;
    *end2end = -1;
    imgsz[0] = imgsz[1] = 0;
    if (ort_status_fail(d->api, d->api->GetAllocatorWithDefaultOptions(&alloc), err, err_len, "allocator")) return -1;
    if (ort_status_fail(d->api, d->api->SessionGetModelMetadata(d->sess, &meta), err, err_len, "model metadata")) return -1;
    int rc = 0;
    const char *keys[] = {"names", "imgsz", "end2end", "task", "kpt_shape"};
    for (int k = 0; k < 5 && rc == 0; k++) {
        char *v = NULL;
        OrtStatus *st = d->api->ModelMetadataLookupCustomMetadataMap(meta, alloc, keys[k], &v);
        if (st) {
            d->api->ReleaseStatus(st);
            continue;
        }
        if (!v) continue;
        if (k == 0 && pyrepr_parse_names(v, &d->names, &d->n_names) != 0) {
            log_warn("model metadata 'names' is not a Python dict or list of strings; using ids");
        } else if (k == 1) {
            int n = pyrepr_parse_ints(v, imgsz, 2);
            if (n == 1) imgsz[1] = imgsz[0];
            else if (n != 2) {
                snprintf(err, err_len, "model metadata imgsz='%.40s' is not [h, w]", v);
                rc = -1;
            }
        } else if (k == 2) {
            *end2end = pyrepr_parse_bool(v);
        } else if (k == 3) {
            if (!(d->task = strdup(v))) snprintf(err, err_len, "out of memory"), rc = -1;
        } else if (k == 4 && pyrepr_parse_ints(v, d->kpt_shape, 2) != 2) {
            snprintf(err, err_len, "model metadata kpt_shape='%.40s' is not [K, D]", v);
            rc = -1;
        }
        alloc->Free(alloc, v);
    }
    d->api->ReleaseModelMetadata(meta);
    return rc;
}

static int io_info(detector *d, int imgsz[2], char *err, size_t err_len)
{
    OrtAllocator *alloc;
    OrtTypeInfo *ti = NULL;
    size_t nin, nout;
    if (ort_status_fail(d->api, d->api->GetAllocatorWithDefaultOptions(&alloc), err, err_len, "allocator")) return -1;
    if (ort_status_fail(d->api, d->api->SessionGetInputCount(d->sess, &nin), err, err_len, "inputs")) return -1;
    if (ort_status_fail(d->api, d->api->SessionGetOutputCount(d->sess, &nout), err, err_len, "outputs")) return -1;
    d->n_out = nout >= 2 ? 2 : 1;
    if (nin != 1 || nout < 1) {
        snprintf(err, err_len, "expected a model with 1 input and at least 1 output, found %zu and %zu", nin, nout);
        return -1;
    }
    char *name;
    if (ort_status_fail(d->api, d->api->SessionGetInputName(d->sess, 0, alloc, &name), err, err_len, "input name")) return -1;
    d->input_name = strdup(name);
    alloc->Free(alloc, name);
    for (int i = 0; i < d->n_out; i++) {
        if (ort_status_fail(d->api, d->api->SessionGetOutputName(d->sess, (size_t)i, alloc, &name), err, err_len, "output name"))
            return -1;
        d->output_names[i] = strdup(name);
        alloc->Free(alloc, name);
    }
    if (!d->input_name || !d->output_names[0] || (d->n_out > 1 && !d->output_names[1])) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }

    if (ort_status_fail(d->api, d->api->SessionGetInputTypeInfo(d->sess, 0, &ti), err, err_len, "input type")) return -1;
    const OrtTensorTypeAndShapeInfo *tsi;
    ONNXTensorElementDataType et;
    size_t nd = 0;
    int64_t dims[8] = {0};
    int rc = 0;
    if (ort_status_fail(d->api, d->api->CastTypeInfoToTensorInfo(ti, &tsi), err, err_len, "input tensor") ||
        ort_status_fail(d->api, d->api->GetTensorElementType(tsi, &et), err, err_len, "input type") ||
        ort_status_fail(d->api, d->api->GetDimensionsCount(tsi, &nd), err, err_len, "input rank")) rc = -1;
    if (rc == 0 && nd == 4) rc = ort_status_fail(d->api, d->api->GetDimensions(tsi, dims, 4), err, err_len, "input shape");
    d->api->ReleaseTypeInfo(ti);
    if (rc) return -1;
    if (et != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
        snprintf(err, err_len, "input '%s' has element type %d; only float32 image inputs are supported", d->input_name, (int)et);
        return -1;
    }
    if (nd != 4 || (dims[1] != 3 && dims[1] > 0)) {
        snprintf(err, err_len, "input '%s' is not an image tensor [1, 3, H, W]", d->input_name);
        return -1;
    }
    /* Fixed sizes come from the graph; dynamic ones from imgsz metadata, else 640. */
    d->in_h = dims[2] > 0 ? (int)dims[2] : imgsz[0] > 0 ? imgsz[0]
                                                        : 640;
    d->in_w = dims[3] > 0 ? (int)dims[3] : imgsz[1] > 0 ? imgsz[1]
                                                        : 640;
    if (d->in_w < 32 || d->in_h < 32 || d->in_w > 4096 || d->in_h > 4096) {
        snprintf(err, err_len, "input size %dx%d is out of range", d->in_w, d->in_h);
        return -1;
    }
    return 0;
}

static float *pool_get(detector *d)
{
    pthread_mutex_lock(&d->mu);
    float *b = d->pool_n > 0 ? d->pool[--d->pool_n] : NULL;
    pthread_mutex_unlock(&d->mu);
    return b ? b : malloc((size_t)3 * d->in_w * d->in_h * sizeof(float));
}

static void pool_put(detector *d, float *b)
{
    if (!b) return;
    pthread_mutex_lock(&d->mu);
    if (d->pool_n == d->pool_cap) {
        int cap = d->pool_cap ? d->pool_cap * 2 : 4;
        float **np = array_resize(d->pool, (size_t)cap, sizeof *np);
        if (!np) {
            pthread_mutex_unlock(&d->mu);
            free(b);
            return;
        }
        d->pool = np;
        d->pool_cap = cap;
    }
    d->pool[d->pool_n++] = b;
    pthread_mutex_unlock(&d->mu);
}

/* Runs the model on input; on success *out holds the output value (caller
 * releases). *run_ms (optional) gets the time of the Run itself, without the
 * wait for a free slot. */
static int run_model(detector *d, float *input, OrtValue **out, double *run_ms, char *err, size_t err_len)
{
    int64_t shape[4] = {1, 3, d->in_h, d->in_w};
    return ort_run_float_n(d->api, d->sess, d->mem, &d->runs, d->input_name, (const char *const *)d->output_names,
                           (size_t)d->n_out, input, shape, out, run_ms, err, err_len);
}

static void release_outputs(detector *d, OrtValue **ov)
{
    for (int i = 0; i < d->n_out; i++)
        if (ov[i]) d->api->ReleaseValue(ov[i]), ov[i] = NULL;
}

/* Shape and data of an output value. */
static int output_view(detector *d, OrtValue *v, int64_t *shape, size_t *nd, const float **data, char *err, size_t len)
{
    return ort_float_output(d->api, v, 6, shape, nd, data, err, len);
}

static int stage_run(void *self, const stage_input *in, json_t **out, sight_error *err)
{
    detector *d = self;
    detect_params p;
    if (detector_parse_params(d, in->params, &p, err) != 0) return -1;
    int rc = slice_wanted(d, in) ? slice_detect(d, in, &p, out, err) : detector_detect(d, in->image, &p, out, err);
    detect_params_free(&p);
    return rc;
}

static int stage_validate(void *self, const json_t *params, sight_error *err)
{
    detect_params p;
    if (detector_parse_params(self, params, &p, err) != 0) return -1;
    detect_params_free(&p);
    return 0;
}

typedef struct {
    detector *d;
    float *input;
} warm_ctx;

static void warm_one(void *arg, int i)
{
    (void)i;
    warm_ctx *w = arg;
    char err[256];
    OrtValue *ov[2] = {NULL, NULL};
    if (run_model(w->d, w->input, ov, NULL, err, sizeof err) == 0) release_outputs(w->d, ov);
}

/* One Run per slot, all at once (the input is only read). */
static void warm_slots(detector *d, float *input)
{
    warm_ctx w = {d, input};
    parallel_run(d->concurrency, warm_one, &w);
}

detector *detector_open(const detector_config *cfg, char *err, size_t err_len)
{
    const OrtApi *api;
    OrtEnv *env = ort_env_get(&api);
    if (!env) {
        snprintf(err, err_len, "ONNX Runtime could not be initialised");
        return NULL;
    }
    if (!cfg->model_data && access(cfg->model_path, R_OK) != 0) {
        snprintf(err, err_len, "cannot read model file %s", cfg->model_path);
        return NULL;
    }
    detector *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    d->api = api;
    pthread_mutex_init(&d->mu, NULL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    /* Default: one single-threaded Run per core. On 2 cores that gave 27.5
     * runs/s against 21.8 for one Run on 2 intra-op threads (make bench,
     * yolo26n-w8a32); the single Run has the lower latency (42 vs 70 ms). */
    d->concurrency = cfg->concurrency > 0 ? cfg->concurrency : (int)cores;
    gate_init(&d->runs, d->concurrency);
    d->intra_threads = cfg->intra_threads > 0 ? cfg->intra_threads : (int)(cores / d->concurrency > 0 ? cores / d->concurrency : 1);

    OrtSessionOptions *so = NULL;
    OrtValue *warm[2] = {NULL, NULL};
    float *buf = NULL;
    if (!(so = ort_session_options(d->api, d->intra_threads, err, err_len))) goto fail;
    if (cfg->model_data)
        ORT_TRY(d->api->CreateSessionFromArray(env, cfg->model_data, cfg->model_size, so, &d->sess), "loading the model");
    else
        ORT_TRY(d->api->CreateSession(env, cfg->model_path, so, &d->sess), "loading the model");
    ORT_TRY(d->api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &d->mem), "memory info");

    int end2end, imgsz[2];
    if (read_metadata(d, &end2end, imgsz, err, err_len) || io_info(d, imgsz, err, err_len)) goto fail;
    if (!d->names && cfg->labels_path && load_labels(d, cfg->labels_path, err, err_len)) goto fail;
    if (!d->names && !cfg->labels_path && cfg->labels_text &&
        add_labels(d, cfg->labels_text, "built in", err, err_len)) goto fail;

    /* The warm-up run also gives the real output shape (graphs often leave it dynamic). */
    buf = pool_get(d);
    if (!buf) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < (size_t)3 * d->in_w * d->in_h; i++) buf[i] = 114.0f / 255.0f;
    if (run_model(d, buf, warm, NULL, err, err_len)) goto fail;
    int64_t shapes[2][8];
    size_t nds[2];
    const float *data;
    if (output_view(d, warm[0], shapes[0], &nds[0], &data, err, err_len)) goto fail;
    /* A second output that is not a float tensor is not prototypes: not read. */
    char verr[128];
    const size_t n_seen = d->n_out > 1 && !output_view(d, warm[1], shapes[1], &nds[1], &data, verr, sizeof verr) ? 2 : 1;
    char lerr[384];
    const yolo_model_info mi = {.task = d->task, .kpt_k = d->kpt_shape[0], .kpt_d = d->kpt_shape[1], .n_names = d->names ? d->n_names : -1, .in_w = d->in_w, .in_h = d->in_h, .end2end = end2end, .layout_hint = cfg->layout_hint};
    const int64_t *const shp[2] = {shapes[0], shapes[1]};
    /* Refused rather than guessed: read as plain boxes, a pose or segment
     * output's extra channels became class scores (confidences of 679). */
    if (yolo_task_detect(&mi, shp, nds, n_seen, &d->spec, lerr, sizeof lerr)) {
        snprintf(err, err_len, "model %s: %s", cfg->model_path ? cfg->model_path : cfg->model_name, lerr);
        goto fail;
    }
    d->layout = d->spec.layout, d->nc = d->spec.nc;
    d->style = d->layout == YOLO_LAYOUT_YOLOX && d->spec.task != YOLO_TASK_CLASSIFY ? LETTERBOX_YOLOX : LETTERBOX_ULTRALYTICS;
    release_outputs(d, warm);
    if (d->spec.task != YOLO_TASK_SEGMENT) d->n_out = 1; /* later outputs are not read (after the release) */
    /* Concurrent Runs each grow their own working memory on first use: warm
     * every slot at once, so the first requests under load are not slow either. */
    if (d->concurrency > 1) warm_slots(d, buf);
    pool_put(d, buf);
    buf = NULL;
    d->api->ReleaseSessionOptions(so);

    const char *base = cfg->model_name;
    if (!base) {
        base = strrchr(cfg->model_path, '/');
        base = base ? base + 1 : cfg->model_path;
    }
    snprintf(d->model_name, sizeof d->model_name, "%s", base);
    char *dot = strrchr(d->model_name, '.');
    if (dot && !strcmp(dot, ".onnx")) *dot = 0;

    /* Shrink-on-load only for photos at least SHRINK_FROM times the input's
     * longer side, and then so that the decode still covers 1.5 times the
     * letterbox. Below that, results stay identical to upstream's full-size
     * decode + cv2 resize (checked against a reference on the shared photos,
     * up to 1352 px, with 320, 416 and 640 models: a 1.5x margin alone
     * halved a 1280 px photo for a 416 model and moved its boxes by up to
     * 12 px); above it the resize samples so sparsely that a reduced-scale
     * decode (DCT scaling averages, where cv2's bilinear skips pixels) is as
     * faithful, and much cheaper: a 12 MP phone photo decodes at 1/4
     * (1008x756) for a 640 model. */
    int in_long = d->in_w > d->in_h ? d->in_w : d->in_h;
    d->st = (stage){.name = "yolo", .self = d, .run = stage_run, .validate = stage_validate, .min_width = SHRINK_MARGIN_HALVES * d->in_w / 2, .min_height = SHRINK_MARGIN_HALVES * d->in_h / 2, .shrink_from = SHRINK_FROM * in_long};
    return d;
fail:
    release_outputs(d, warm);
    free(buf);
    if (so) d->api->ReleaseSessionOptions(so);
    detector_close(d);
    return NULL;
}

void detector_close(detector *d)
{
    if (!d) return;
    if (d->sess) d->api->ReleaseSession(d->sess);
    if (d->mem) d->api->ReleaseMemoryInfo(d->mem);
    free(d->input_name);
    free(d->output_names[0]);
    free(d->output_names[1]);
    free(d->task);
    free(d->dump_dir);
    pyrepr_free_names(d->names, d->n_names);
    for (int i = 0; i < d->pool_n; i++) free(d->pool[i]);
    free(d->pool);
    gate_destroy(&d->runs);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

const stage *detector_stage(detector *d) { return &d->st; }
const char *detector_model_name(const detector *d) { return d->model_name; }
const char *detector_layout_name(const detector *d) { return yolo_layout_name(d->layout); }
const char *detector_task_name(const detector *d) { return yolo_task_name(d->spec.task); }
void detector_input_size(const detector *d, int *w, int *h)
{
    *w = d->in_w;
    *h = d->in_h;
}

int detector_class_count(const detector *d) { return d->nc > 0 ? d->nc : d->n_names; }
int detector_name_count(const detector *d) { return d->n_names; }
const char *detector_class_name(const detector *d, int id) { return id >= 0 && id < d->n_names ? d->names[id] : NULL; }

void detector_describe(const detector *d, char *buf, size_t len)
{
    snprintf(buf, len, "%s: %s, %s layout, input %dx%d, %d classes%s, %d concurrent run(s) x %d intra-op thread(s)",
             d->model_name, yolo_task_name(d->spec.task), d->spec.task == YOLO_TASK_CLASSIFY ? "[1, nc]" : yolo_layout_name(d->layout), d->in_w, d->in_h, detector_class_count(d),
             d->names ? "" : " (no names: ids shown)", d->concurrency, d->intra_threads);
}

static void apply_icc(const void *icc, uint8_t *rgb, size_t n)
{
    image_icc_apply(icc, rgb, n);
}

int detector_detect(detector *d, const image_t *img, const detect_params *p, json_t **out, sight_error *err)
{
    /* ORT's messages are long (source path, then the reason last): room for all of it. */
    char msg[sizeof err->message];
    double t0 = clock_ms();
    float *buf = pool_get(d);
    if (!buf) {
        sight_error_set(err, "out_of_memory", "out of memory");
        return -1;
    }
    letterbox_map map = {.gain = 1.0f};
    /* A deferred ICC conversion (decode.h) runs on the model's pixels only. */
    const letterbox_colour colour = {apply_icc, img->icc};
    const letterbox_colour *lc = img->icc ? &colour : NULL;
    if (d->spec.task != YOLO_TASK_CLASSIFY) {
        letterbox_with_colour(img->pixels, img->width, img->height, buf, d->in_w, d->in_h, d->style, lc, &map);
    } else if (center_crop_input(img->pixels, img->width, img->height, buf, d->in_w, d->in_h, lc)) {
        pool_put(d, buf);
        sight_error_set(err, "out_of_memory", "out of memory");
        return -1;
    }
    double t1 = clock_ms();
    OrtValue *ov[2] = {NULL, NULL};
    double run_ms = 0;
    int rc = run_model(d, buf, ov, &run_ms, msg, sizeof msg);
    pool_put(d, buf);
    double t2 = clock_ms();
    int64_t shape[2][8];
    size_t nd[2] = {0, 0};
    const float *data[2] = {NULL, NULL};
    for (int i = 0; rc == 0 && i < d->n_out; i++) rc = output_view(d, ov[i], shape[i], &nd[i], &data[i], msg, sizeof msg);
    /* A graph with dynamic shapes could answer differently than at the warm-up. */
    if (rc == 0 && d->spec.task == YOLO_TASK_SEGMENT &&
        (nd[0] != 3 || nd[1] != 4 || shape[0][1] != 4 + d->nc + d->spec.n_proto || shape[1][1] != d->spec.n_proto ||
         shape[1][2] != d->spec.proto_h || shape[1][3] != d->spec.proto_w))
        rc = -1, snprintf(msg, sizeof msg, "output shapes changed since start-up");
    if (rc == 0 && d->spec.task == YOLO_TASK_CLASSIFY && (nd[0] != 2 || shape[0][1] != d->nc))
        rc = -1, snprintf(msg, sizeof msg, "output shape changed since start-up");
    if (rc == 0 && d->spec.task != YOLO_TASK_CLASSIFY && d->layout == YOLO_LAYOUT_V8 &&
        (nd[0] != 3 || shape[0][1] < 4 + d->nc))
        rc = -1, snprintf(msg, sizeof msg, "output shape changed since start-up");
    if (rc != 0) {
        release_outputs(d, ov);
        /* The model is there but this Run failed (an ORT error on this input):
         * not "unavailable", which says no model is configured. */
        sight_error_set(err, "detector_failed", "detection failed: %s", msg);
        log_error("model %s: %s", d->model_name, msg);
        return -1;
    }
    if (d->dump_dir) {
        pthread_mutex_lock(&d->mu);
        unsigned seq = d->dump_seq++;
        pthread_mutex_unlock(&d->mu);
        if (raw_dump_write(d->dump_dir, seq, data, (const int64_t(*)[8])shape, nd, d->n_out, &map, d->in_w, d->in_h,
                           img->width, img->height))
            log_warn("cannot write raw outputs to %s", d->dump_dir);
    }
    const task_ctx tc = {.spec = &d->spec, .data = data[0], .N = nd[0] == 3 ? shape[0][2] : 0, .protos = data[1], .map = map, .img_w = img->width, .img_h = img->height, .orig_w = img->orig_width, .orig_h = img->orig_height, .in_w = d->in_w, .in_h = d->in_h, .mask_rle = p->mask_rle, .names = (const char *const *)d->names, .n_names = d->n_names, .model_name = d->model_name};
    json_t *arr = json_array(), *cls = NULL;
    double extra_ms = 0;
    if (d->spec.task == YOLO_TASK_CLASSIFY) {
        rc = task_classify_json(&tc, p->allowed, &cls, err);
    } else {
        yolo_decode_opts o = {.conf = p->confidence, .iou = p->iou, .max_det = p->max_detections, .allowed = p->allowed, .n_allowed = p->allowed ? detector_class_count(d) : 0, .nc = d->layout == YOLO_LAYOUT_V8 ? d->nc : 0, .skip_nms = d->spec.task == YOLO_TASK_OBB};
        yolo_det *dets = NULL;
        size_t n = 0;
        rc = yolo_decode(d->layout, data[0], shape[0], nd[0], d->in_w, d->in_h, &o, &dets, &n);
        if (rc == 0 && d->spec.task == YOLO_TASK_OBB) {
            long k = yolo_obb_nms(dets, n, data[0], tc.N, d->nc, p->iou, p->max_detections);
            if (k < 0) rc = -1;
            else n = (size_t)k;
        }
        if (rc != 0) sight_error_set(err, "out_of_memory", "out of memory decoding detections");
        else rc = task_detections_json(&tc, dets, n, arr, &extra_ms, err);
        free(dets);
    }
    release_outputs(d, ov);
    if (rc != 0) {
        json_decref(arr);
        if (!strcmp(err->code, "detector_failed")) log_error("%s", err->message);
        return -1;
    }
    double t3 = clock_ms();
    /* inference is the Run alone; time spent waiting for a free model slot
     * under load shows in the stage's total (timing_ms.yolo), not here. */
    *out = json_pack("{s:s,s:s,s:o,s:{s:f,s:f,s:f}}", "model", d->model_name, "task", yolo_task_name(d->spec.task),
                     "detections", arr, "speed_ms", "preprocess", task_round(t1 - t0, 1e-3), "inference",
                     task_round(run_ms, 1e-3), "postprocess", task_round(t3 - t2, 1e-3));
    if (*out && d->spec.task != YOLO_TASK_DETECT && d->spec.task != YOLO_TASK_CLASSIFY)
        json_object_set_new(json_object_get(*out, "speed_ms"), d->spec.task == YOLO_TASK_SEGMENT ? "masks" : d->spec.task == YOLO_TASK_POSE ? "keypoints"
                                                                                                                                            : "obb",
                            json_real(task_round(extra_ms, 1e-3)));
    if (*out && cls) json_object_set_new(*out, "classification", cls);
    else json_decref(cls);
    return *out ? 0 : -1;
}

int detector_set_raw_dump(detector *d, const char *dir)
{
    free(d->dump_dir);
    d->dump_dir = dir ? strdup(dir) : NULL;
    return dir && !d->dump_dir ? -1 : 0;
}

size_t detector_input_floats(const detector *d) { return (size_t)3 * d->in_w * d->in_h; }

int detector_time_run(detector *d, float *input, double *ms)
{
    char err[256];
    OrtValue *ov[2] = {NULL, NULL};
    if (run_model(d, input, ov, ms, err, sizeof err) != 0) return -1;
    release_outputs(d, ov);
    return 0;
}
