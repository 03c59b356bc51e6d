#include "detect/model_registry.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "detect/builtin_model.h"
#include "detect/model_select.h"
#include "metrics/metrics.h"
#include "util/log.h"

struct model_entry {
    char name[64];
    struct stat st;  /* the file when it was loaded: a reload loads it again only when changed */
    char source[16]; /* "built-in" or "file" */
    char loaded_at[32];
    detector *det;
    atomic_int refs; /* the registry's own, plus one per run holding it */
};

#define REGISTRY_MAX 64

struct model_registry {
    pthread_mutex_t mu; /* guards the list; runs hold entries, not the lock */
    /* One slot per --model, then per .onnx found in --models-dir, in order:
     * its spec (NAME=PATH or PATH) and model, NULL while its file is gone. */
    char spec[REGISTRY_MAX][1100];
    model_entry *e[REGISTRY_MAX];
    int n;
    char default_name[64];
    stage st;
    sight_config *cfg; /* what to reload from */
    /* SIGHUP's reload, a work-queue job: whether one is queued or running,
     * and whether another was asked meanwhile */
    bool running, again, stopping;
    pthread_cond_t idle; /* running fell to false (close waits for it) */
};

/* NAME=PATH, or PATH named by its file stem (as config.c splits it). */
static void split_spec(const char *spec, char *name, size_t name_len, const char **path)
{
    const char *eq = strchr(spec, '=');
    if (eq && !memchr(spec, '/', (size_t)(eq - spec))) {
        snprintf(name, name_len, "%.*s", (int)(eq - spec), spec);
        *path = eq + 1;
        return;
    }
    *path = spec;
    const char *base = strrchr(spec, '/');
    base = base ? base + 1 : spec;
    const char *dot = strrchr(base, '.');
    snprintf(name, name_len, "%.*s", (int)(dot && dot != base ? dot - base : (long)strlen(base)), base);
}

static model_entry *entry_open(const sight_config *cfg, const char *name, const char *path, char *msg, size_t msg_len)
{
    /* model_select reads the file from the configuration: one copy per model. */
    sight_config *one = malloc(sizeof *one);
    model_entry *e = calloc(1, sizeof *e);
    if (!one || !e) {
        free(one);
        free(e);
        snprintf(msg, msg_len, "out of memory");
        return NULL;
    }
    *one = *cfg;
    snprintf(one->model_path, sizeof one->model_path, "%s", path ? path : "");
    int fatal;
    e->det = model_select_open(one, &fatal, msg, msg_len);
    snprintf(e->source, sizeof e->source, "%s", model_select_source(one));
    if (!e->det && !fatal) snprintf(msg, msg_len, "detection cannot be off for one model (--model none)");
    free(one);
    if (!e->det) {
        free(e);
        return NULL;
    }
    snprintf(e->name, sizeof e->name, "%s", name);
    if (path) stat(path, &e->st);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(e->loaded_at, sizeof e->loaded_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    atomic_init(&e->refs, 1);
    return e;
}

void model_entry_release(model_entry *e)
{
    if (e && atomic_fetch_sub(&e->refs, 1) == 1) {
        detector_close(e->det);
        free(e);
    }
}

detector *model_entry_detector(const model_entry *e) { return e->det; }
const char *model_entry_source(const model_entry *e) { return e->source; }

model_entry *model_registry_acquire(model_registry *r, const char *name)
{
    model_entry *found = NULL;
    pthread_mutex_lock(&r->mu);
    if (!name || !*name) name = r->default_name;
    for (int i = 0; i < r->n && !found; i++)
        if (r->e[i] && !strcmp(r->e[i]->name, name)) found = r->e[i];
    if (found) atomic_fetch_add(&found->refs, 1);
    pthread_mutex_unlock(&r->mu);
    return found;
}

bool model_registry_has(model_registry *r, const char *name)
{
    model_entry *e = model_registry_acquire(r, name);
    model_entry_release(e);
    return e != NULL;
}

const char *model_registry_default(model_registry *r) { return r->default_name; }

static void unknown(model_registry *r, const char *name, sight_error *err)
{
    sight_error_set(err, "unknown_model", "no model is called '%.64s' (GET /api/v1/models lists them; default %s)",
                    name, r->default_name);
    err->status = 422;
}

static int stage_run(void *self, const stage_input *in, json_t **out, sight_error *err)
{
    model_entry *e = model_registry_acquire(self, in->model);
    if (!e) {
        unknown(self, in->model ? in->model : "", err);
        return -1;
    }
    const stage *st = detector_stage(e->det);
    int rc = st->run(st->self, in, out, err);
    model_entry_release(e);
    return rc;
}

/* The request's options against the model each file names (validate_model),
 * or the default (validate). */
static int stage_validate_model(void *self, const char *model, const json_t *params, sight_error *err)
{
    model_entry *e = model_registry_acquire(self, model);
    if (!e) {
        unknown(self, model ? model : "", err);
        return -1;
    }
    const stage *st = detector_stage(e->det);
    int rc = st->validate ? st->validate(st->self, params, err) : 0;
    model_entry_release(e);
    return rc;
}

static int stage_validate(void *self, const json_t *params, sight_error *err)
{
    return stage_validate_model(self, NULL, params, err);
}

/* The models served now, for /metrics (sight_model_info). */
static void publish_models(model_registry *r)
{
    metrics_model m[REGISTRY_MAX];
    int n = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n; i++)
        if (r->e[i]) m[n++] = (metrics_model){r->e[i]->name, detector_layout_name(r->e[i]->det), detector_task_name(r->e[i]->det)};
    metrics_set_models(m, n); /* copies: the entries may go once the lock is let go */
    pthread_mutex_unlock(&r->mu);
}

/* Adds each .onnx of --models-dir not yet known by name (its stem), in name
 * order; called at start and by each reload, so new files are picked up. */
static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void scan_dir(model_registry *r)
{
    const char *dir = r->cfg->models_dir;
    DIR *d = dir[0] ? opendir(dir) : NULL;
    if (dir[0] && !d) log_warn("--models-dir %s cannot be read", dir);
    if (!d) return;
    char *found[REGISTRY_MAX] = {0};
    int nf = 0;
    for (struct dirent *de; nf < REGISTRY_MAX && (de = readdir(d));) {
        size_t l = strlen(de->d_name);
        if (l > 5 && !strcmp(de->d_name + l - 5, ".onnx") && de->d_name[0] != '.') found[nf++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(found, (size_t)nf, sizeof *found, by_name);
    for (int i = 0; i < nf; i++) {
        char name[64], spec[1100];
        const char *path;
        if (!found[i] || strlen(found[i]) - 5 >= sizeof name) {
            log_warn("--models-dir: %s: a name is at most 63 characters", found[i] ? found[i] : "?");
            free(found[i]);
            continue;
        }
        snprintf(spec, sizeof spec, "%.*s=%s/%s", (int)(strlen(found[i]) - 5), found[i], dir, found[i]);
        free(found[i]);
        split_spec(spec, name, sizeof name, &path);
        bool known = false;
        for (int j = 0; j < r->n && !known; j++) {
            char other[64];
            const char *op;
            split_spec(r->spec[j], other, sizeof other, &op);
            known = !strcmp(other, name);
        }
        if (known || r->n >= REGISTRY_MAX) continue;
        snprintf(r->spec[r->n], sizeof r->spec[0], "%s", spec);
        pthread_mutex_lock(&r->mu); /* acquire and list read n */
        r->n++;
        pthread_mutex_unlock(&r->mu);
    }
}

model_registry *model_registry_open(const sight_config *cfg, int *fatal, char *msg, size_t msg_len)
{
    *fatal = 0;
    if (!strcmp(cfg->model_path, "none")) {
        snprintf(msg, msg_len, "detection is off (--model none): is_yolo requests get yolo_unavailable");
        return NULL;
    }
    model_registry *r = calloc(1, sizeof *r);
    if (!r) {
        *fatal = 1;
        snprintf(msg, msg_len, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->idle, NULL);
    if (!(r->cfg = malloc(sizeof *r->cfg))) {
        snprintf(msg, msg_len, "out of memory");
        goto fail;
    }
    *r->cfg = *cfg;
    for (int i = 0; i < cfg->n_models; i++) snprintf(r->spec[i], sizeof r->spec[0], "%s", cfg->model_specs[i]);
    r->n = cfg->n_models;
    scan_dir(r);
    bool builtin = r->n == 0; /* neither --model nor a model in --models-dir */
    if (builtin) r->n = 1;
    for (int i = 0; i < r->n; i++) {
        char name[64];
        const char *path = NULL;
        if (!builtin) split_spec(r->spec[i], name, sizeof name, &path);
        else snprintf(name, sizeof name, "%s", BUILTIN_MODEL_NAME);
        for (int j = 0; j < i; j++)
            if (!strcmp(r->e[j]->name, name)) {
                snprintf(msg, msg_len, "two models are called '%s': name one of them with --model NAME=PATH", name);
                goto fail;
            }
        model_entry *e = entry_open(cfg, name, path, msg, msg_len);
        if (!e) goto fail;
        log_info("detector ready: %s (served as model \"%s\")", msg, name);
        r->e[i] = e;
    }
    snprintf(r->default_name, sizeof r->default_name, "%s", cfg->default_model[0] ? cfg->default_model : r->e[0]->name);
    if (!model_registry_has(r, r->default_name)) {
        snprintf(msg, msg_len, "--default-model %s is none of the --model names", r->default_name);
        goto fail;
    }
    detector *d = r->e[0]->det;
    const stage *base = detector_stage(d);
    r->st = *base; /* the decode hints of the first model */
    r->st.self = r;
    r->st.run = stage_run;
    r->st.validate = stage_validate;
    r->st.validate_model = stage_validate_model;
    snprintf(msg, msg_len, "%d model(s), default %s", r->n, r->default_name);
    publish_models(r);
    return r;
fail:
    *fatal = 1;
    model_registry_close(r);
    return NULL;
}

void model_registry_close(model_registry *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    while (r->running) pthread_cond_wait(&r->idle, &r->mu);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->n; i++) model_entry_release(r->e[i]);
    free(r->cfg);
    pthread_cond_destroy(&r->idle);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

const stage *model_registry_stage(model_registry *r) { return &r->st; }

json_t *model_registry_list(model_registry *r)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&r->mu);
    for (int i = 0; arr && i < r->n; i++) {
        const model_entry *e = r->e[i];
        if (!e) continue;
        int w, h;
        detector_input_size(e->det, &w, &h);
        json_t *classes = json_array();
        /* As results name them: by id where the model has no names. */
        for (int c = 0; c < detector_class_count(e->det); c++) {
            const char *nm = detector_class_name(e->det, c);
            json_array_append_new(classes, nm ? json_string(nm) : json_sprintf("%d", c));
        }
        json_array_append_new(arr, json_pack("{s:s,s:s,s:[i,i],s:o,s:b,s:s,s:s}", "name", e->name, "layout", detector_layout_name(e->det), "input", w, h, "classes", classes, "default", !strcmp(e->name, r->default_name), "source", e->source, "loaded_at", e->loaded_at));
    }
    pthread_mutex_unlock(&r->mu);
    return json_pack("{s:o}", "models", arr);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
        a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Puts e in slot i (NULL: stop offering it); the old entry goes once its runs end. */
static void swap_in(model_registry *r, int i, model_entry *e)
{
    pthread_mutex_lock(&r->mu);
    model_entry *old = r->e[i];
    r->e[i] = e;
    pthread_mutex_unlock(&r->mu);
    model_entry_release(old);
}

/* One pass over the --model files: a changed or returned file is loaded (the
 * old model serves meanwhile and stays if the new one fails), a removed one
 * stops being offered. The default stays while its file is gone: requests
 * that name no model must keep working. */
static void reload_once(model_registry *r)
{
    if (r->e[0] && !strcmp(r->e[0]->source, "built-in")) return; /* nothing on disk */
    scan_dir(r);
    for (int i = 0; i < r->n; i++) {
        char name[64], msg[1024];
        const char *path;
        split_spec(r->spec[i], name, sizeof name, &path);
        model_entry *cur = r->e[i]; /* only this thread changes the slots */
        struct stat st;
        if (stat(path, &st) != 0) {
            if (!cur) continue;
            if (!strcmp(name, r->default_name)) {
                log_warn("reload: model %s: %s is gone; it is the default, so the loaded one keeps serving", name, path);
                continue;
            }
            log_info("reload: model %s: %s is gone, no longer offered", name, path);
            swap_in(r, i, NULL);
            continue;
        }
        if (cur && same_file(&cur->st, &st)) continue;
        model_entry *e = entry_open(r->cfg, name, path, msg, sizeof msg);
        if (!e) {
            log_error("reload: model %s: %s; %s", name, msg,
                      cur ? "the loaded one keeps serving" : "it is not offered");
            continue;
        }
        log_info("reload: model %s: %s", name, msg);
        swap_in(r, i, e);
    }
}

/* The reload job, on a work-queue thread: passes until none was asked for
 * during the last one. */
static void reload_job(void *arg)
{
    model_registry *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stopping) {
        r->again = false;
        pthread_mutex_unlock(&r->mu);
        reload_once(r);
        publish_models(r);
        pthread_mutex_lock(&r->mu);
        if (!r->again) break;
    }
    pthread_mutex_unlock(&r->mu);
    log_info("reload: done");
}

static void reload_done(void *arg)
{
    model_registry *r = arg;
    pthread_mutex_lock(&r->mu);
    r->running = false;
    pthread_cond_broadcast(&r->idle);
    pthread_mutex_unlock(&r->mu);
}

void model_registry_reload(model_registry *r, work_queue *wq)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    if (r->running || r->stopping) {
        r->again = true; /* the running pass may have read a file before this change */
        pthread_mutex_unlock(&r->mu);
        return;
    }
    r->running = true;
    pthread_mutex_unlock(&r->mu);
    log_info("reload: checking the model files");
    if (wq_push(wq, reload_job, reload_done, r) != 0) {
        log_error("reload: cannot queue it (the work queue is full or stopped)");
        reload_done(r);
    }
}
