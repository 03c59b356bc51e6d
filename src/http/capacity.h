/* A prediction request's place in --max-inflight, and its key's share.
 *
 * A place is held while the request is received and while its files are
 * worked on; it is given back once the work is over (every file settled),
 * even if the client has not read the answer yet: a client that does not
 * read costs only the lines waiting for it (bounded by the pipeline's
 * back-pressure, pipeline/backlog.h), never the server's capacity. No key
 * holds more than per_key places at once (--max-inflight-per-key, by default
 * half of --max-inflight), so a single key cannot take the whole server. */
#ifndef SIGHT_HTTP_CAPACITY_H
#define SIGHT_HTTP_CAPACITY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct capacity capacity;
typedef struct cap_ticket cap_ticket;

/* max places; per_key: most a key may hold (>= 1). NULL: out of memory. */
capacity *capacity_new(int max, int per_key);
/* Drops the server's reference: freed once the last ticket is too. */
void capacity_free(capacity *c);
int capacity_per_key(const capacity *c);

/* A place, or NULL when all are taken (or out of memory). */
cap_ticket *cap_enter(capacity *c);
/* The ticket's place is counted against key_id's share too: false when the
 * key already holds its share (the ticket is then unchanged). Once per ticket. */
bool cap_ticket_key(cap_ticket *t, int64_t key_id);
/* Gives the place (and the key's share) back. Later calls do nothing. */
void cap_ticket_leave(void *t);
/* Leaves (if still held) and frees. Accepts NULL. */
void cap_ticket_free(void *t);

#endif
