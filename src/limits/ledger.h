/* The usage ledger's writer: requests hand their use to one thread, which
 * commits everything queued in one transaction of the key store. While it
 * commits, more requests queue up for the next one, so requests that finish
 * together share a commit (group commit) and a request's wait is about one
 * commit, however many finish at once. */
#ifndef SIGHT_LIMITS_LEDGER_H
#define SIGHT_LIMITS_LEDGER_H

#include "keys/keystore.h"

typedef struct ledger ledger;

ledger *ledger_start(keystore *ks);
/* Blocks until row is durably in the store: 0, or -1 when its commit failed. */
int ledger_commit(ledger *lg, const usage_row *row);
/* Commits what is queued, then stops the thread. */
void ledger_stop(ledger *lg);

#endif
