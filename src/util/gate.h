/* A counting gate: at most N holders at once, the others wait. Bounds the
 * model runs of the detector and OCR (ONNX Runtime) and the LLM provider calls. */
#ifndef SIGHT_UTIL_GATE_H
#define SIGHT_UTIL_GATE_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int free; /* slots not held */
} gate;

void gate_init(gate *g, int slots);
void gate_destroy(gate *g);
/* Takes a slot, waiting as long as it takes. With cancelled (may be NULL), the
 * wait ends once it is set (checked ten times a second): false, no slot taken. */
bool gate_enter(gate *g, const atomic_bool *cancelled);
void gate_leave(gate *g);
#endif
