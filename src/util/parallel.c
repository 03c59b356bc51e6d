#include "util/parallel.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct {
    void (*fn)(void *, int);
    void *arg;
    int i;
    pthread_t thread;
    int started;
} par_slot;

static void *par_main(void *arg)
{
    par_slot *s = arg;
    s->fn(s->arg, s->i);
    return NULL;
}

void parallel_run(int n, void (*fn)(void *arg, int i), void *arg)
{
    if (n < 1) return;
    par_slot *s = n > 1 ? calloc((size_t)n, sizeof *s) : NULL;
    for (int i = 1; s && i < n; i++) {
        s[i] = (par_slot){.fn = fn, .arg = arg, .i = i};
        s[i].started = pthread_create(&s[i].thread, NULL, par_main, &s[i]) == 0;
    }
    fn(arg, 0);
    for (int i = 1; i < n; i++) {
        if (s && s[i].started) pthread_join(s[i].thread, NULL);
        else fn(arg, i);
    }
    free(s);
}
