#include "track/track_streams.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

struct track_stream {
    int64_t key_id;
    char name[72];
    bytetrack *bt;
    double created, last;
    int users;            /* requests holding or waiting for it: never dropped while > 0 */
    pthread_mutex_t busy; /* held by the request using the tracker */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static track_stream *streams[TRACK_STREAMS_MAX];
static int nstreams;

static void drop(int i)
{
    track_stream *s = streams[i];
    bytetrack_free(s->bt);
    pthread_mutex_destroy(&s->busy);
    free(s);
    streams[i] = streams[--nstreams];
}

/* The least recently used stream not in use (of key_id, or any when < 0). */
static int lru(int64_t key_id)
{
    int best = -1;
    for (int i = 0; i < nstreams; i++) {
        const track_stream *s = streams[i];
        if (s->users || (key_id >= 0 && s->key_id != key_id)) continue;
        if (best < 0 || s->last < streams[best]->last) best = i;
    }
    return best;
}

static track_stream *find_or_make(int64_t key_id, const char *name, double now)
{
    for (int i = nstreams - 1; i >= 0; i--)
        if (!streams[i]->users && now - streams[i]->last > TRACK_STREAM_IDLE_S) drop(i);
    int of_key = 0;
    for (int i = 0; i < nstreams; i++) {
        if (streams[i]->key_id != key_id) continue;
        if (!strcmp(streams[i]->name, name)) return streams[i];
        of_key++;
    }
    int victim = of_key >= TRACK_STREAMS_PER_KEY ? lru(key_id) : nstreams >= TRACK_STREAMS_MAX ? lru(-1)
                                                                                               : -2;
    if (victim == -1) return NULL; /* all in use */
    if (victim >= 0) drop(victim);
    track_stream *s = calloc(1, sizeof *s);
    if (!s || !(s->bt = bytetrack_new(NULL))) {
        free(s);
        return NULL;
    }
    s->key_id = key_id;
    strncpy(s->name, name, sizeof s->name - 1);
    s->created = s->last = now;
    pthread_mutex_init(&s->busy, NULL);
    streams[nstreams++] = s;
    return s;
}

bytetrack *track_stream_acquire(int64_t key_id, const char *name, int64_t *ms, track_stream **handle)
{
    double now = clock_s();
    pthread_mutex_lock(&mu);
    track_stream *s = find_or_make(key_id, name, now);
    if (s) s->users++;
    pthread_mutex_unlock(&mu);
    if (!s) return NULL;
    pthread_mutex_lock(&s->busy);
    *ms = (int64_t)((clock_s() - s->created) * 1000.0);
    *handle = s;
    return s->bt;
}

void track_stream_release(track_stream *s)
{
    pthread_mutex_unlock(&s->busy);
    pthread_mutex_lock(&mu);
    s->users--;
    s->last = clock_s();
    pthread_mutex_unlock(&mu);
}

int track_streams_count(void)
{
    pthread_mutex_lock(&mu);
    int n = nstreams;
    pthread_mutex_unlock(&mu);
    return n;
}
