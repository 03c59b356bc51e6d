/* The usage ledger's writer: requests hand their use to one thread, which
 * commits everything queued in one transaction of the key store. While it
 * commits, more requests queue up for the next one, so requests that finish
 * together share a commit (group commit) and a request's wait is about one
 * commit, however many finish at once. */
#ifndef SIGHT_LIMITS_LEDGER_H
#define SIGHT_LIMITS_LEDGER_H

#include "keys/keystore.h"

typedef struct ledger ledger;

/* timeout_s (0: 30): the longest a request waits for its commit, and how
 * long commits may fail before ledger_health says the ledger is down. */
ledger *ledger_start(keystore *ks, double timeout_s);
void ledger_set_timeout(ledger *lg, double timeout_s);
/* Blocks until row is durably in the store: 0; -1 when that did not happen
 * within the timeout (the row stays queued and is committed once the store
 * takes writes again) or memory ran out. */
int ledger_commit(ledger *lg, const usage_row *row);
/* 0 while commits succeed (or have failed for less than the timeout); else
 * -1 with why filled (a sentence), so the server can refuse new work. */
int ledger_health(ledger *lg, char *why, size_t len);
/* Commits what is queued, then stops the thread. */
void ledger_stop(ledger *lg);

#endif
