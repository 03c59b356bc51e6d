/* Trackers kept between requests, per API key and stream name: a client that
 * sends a camera's frames one request at a time (an NVR, an app) names its
 * stream ("track_stream") and gets the same ids frame after frame.
 *
 * Bounded: a stream idle for TRACK_STREAM_IDLE_S is dropped; a key has at most
 * TRACK_STREAMS_PER_KEY and the process TRACK_STREAMS_MAX (a new stream then
 * replaces the least recently used one not in use). Thread-safe; the tracker
 * of a stream is used by one request at a time (others wait their turn). */
#ifndef SIGHT_TRACK_STREAMS_H
#define SIGHT_TRACK_STREAMS_H

#include <stdint.h>

#include "track/bytetrack.h"

#define TRACK_STREAM_IDLE_S 60.0
#define TRACK_STREAMS_PER_KEY 16
#define TRACK_STREAMS_MAX 1024

typedef struct track_stream track_stream;

/* The stream's tracker, held for the caller until track_stream_release (made
 * when new); *ms receives the milliseconds since the stream began. NULL when
 * out of memory or every slot is in use. */
bytetrack *track_stream_acquire(int64_t key_id, const char *name, int64_t *ms, track_stream **handle);
void track_stream_release(track_stream *h);
/* Streams kept now (for tests and metrics). */
int track_streams_count(void);

#endif
