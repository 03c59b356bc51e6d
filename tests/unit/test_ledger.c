/* limits/ledger: group commit through a key store whose usage_add fails on
 * demand (a database that is down): rows are retried, never dropped; a
 * request's wait is bounded; the ledger reports itself down past the bound
 * and up again once a commit succeeds. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "limits/ledger.h"

typedef struct {
    keystore base;
    atomic_bool down;
    atomic_int attempts;
    pthread_mutex_t mu;
    int64_t requests; /* what committed batches added */
} fake_ks;

static int fake_usage_add(keystore *base, const usage_row *rows, size_t n)
{
    fake_ks *f = (fake_ks *)base;
    atomic_fetch_add(&f->attempts, 1);
    if (atomic_load(&f->down)) return -1;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < n; i++) f->requests += rows[i].requests;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static const keystore_ops FAKE_OPS = {.usage_add = fake_usage_add};

static int64_t committed(fake_ks *f)
{
    pthread_mutex_lock(&f->mu);
    int64_t n = f->requests;
    pthread_mutex_unlock(&f->mu);
    return n;
}

typedef struct {
    ledger *lg;
    int rc;
} call;

static void *commit_one(void *arg)
{
    call *c = arg;
    usage_row r = {.key_id = 1, .requests = 1, .files = 1};
    strcpy(r.day, "2026-01-01");
    c->rc = ledger_commit(c->lg, &r);
    return NULL;
}

int main(void)
{
    fake_ks f = {.base.ops = &FAKE_OPS};
    pthread_mutex_init(&f.mu, NULL);
    ledger *lg = ledger_start(&f.base, 1.0);
    CHECK(lg != NULL);

    /* Up: commits are durable at return, in groups. */
    call calls[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        calls[i] = (call){lg, -2};
        pthread_create(&th[i], NULL, commit_one, &calls[i]);
    }
    for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 8; i++) CHECK_EQ_INT(calls[i].rc, 0);
    CHECK_EQ_INT(committed(&f), 8);
    CHECK_EQ_INT(ledger_health(lg, NULL, 0), 0);

    /* Down for a moment (shorter than the bound): the request waits, the
     * writer retries, and the commit goes through once the store is back. */
    atomic_store(&f.down, true);
    int before = atomic_load(&f.attempts);
    call c = {lg, -2};
    pthread_t t;
    pthread_create(&t, NULL, commit_one, &c);
    usleep(400 * 1000);
    CHECK(atomic_load(&f.attempts) - before >= 3); /* retried with backoff */
    CHECK_EQ_INT(ledger_health(lg, NULL, 0), 0);   /* not yet past the bound */
    atomic_store(&f.down, false);
    pthread_join(t, NULL);
    CHECK_EQ_INT(c.rc, 0);
    CHECK_EQ_INT(committed(&f), 9);

    /* Down past the bound: the request gives up with -1, the ledger says
     * why; its row stays queued and is committed once the store is back. */
    atomic_store(&f.down, true);
    c = (call){lg, -2};
    pthread_create(&t, NULL, commit_one, &c);
    pthread_join(t, NULL);
    CHECK_EQ_INT(c.rc, -1);
    usleep(100 * 1000);
    char why[160] = "";
    CHECK_EQ_INT(ledger_health(lg, why, sizeof why), -1);
    CHECK(strstr(why, "cannot be written") != NULL);
    CHECK_EQ_INT(committed(&f), 9);
    atomic_store(&f.down, false);
    for (int i = 0; i < 50 && committed(&f) < 10; i++) usleep(50 * 1000);
    CHECK_EQ_INT(committed(&f), 10);
    CHECK_EQ_INT(ledger_health(lg, NULL, 0), 0);

    /* Stopping commits what is queued. */
    c = (call){lg, -2};
    pthread_create(&t, NULL, commit_one, &c);
    pthread_join(t, NULL);
    ledger_stop(lg);
    CHECK_EQ_INT(c.rc, 0);
    CHECK_EQ_INT(committed(&f), 11);
    pthread_mutex_destroy(&f.mu);
    return check_report("ledger");
}
