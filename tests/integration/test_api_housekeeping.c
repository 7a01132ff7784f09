/*
 * usher-api's own housekeeping against the real database: idempotency keys
 * older than a day are pruned in bounded batches, back to back while a
 * batch comes back full, and the keys of the last day stay.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"

TESTDB_SUITE(api_housekeeping, "usher_test_api_housekeeping");

static testapi server;

static bool only_recent_keys_left(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM api_idempotency") == 5;
}

Test(api_housekeeping, old_idempotency_keys_are_pruned_in_batches_until_none_is_left,
     .timeout = 300)
{
    /* 25,000 keys two days old: three batches of at most 10,000. */
    testdb_exec(st, "INSERT INTO api_idempotency (scope, key, request_hash, created_at)"
                    " SELECT 'public', 'old-' || g, 'h', now() - interval '2 days'"
                    " FROM generate_series(1, 25000) g");
    testdb_exec(st, "INSERT INTO api_idempotency (scope, key, request_hash, created_at)"
                    " SELECT 'public', 'new-' || g, 'h', now() - interval '23 hours'"
                    " FROM generate_series(1, 5) g");
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 1);
    /* Once a minute would take two minutes; back to back it takes seconds. */
    cr_assert(testproc_wait_for(only_recent_keys_left, NULL, 45000), "%lld keys left after 45 s",
              testdb_scalar(st, "SELECT count(*) FROM api_idempotency"));
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM api_idempotency WHERE key LIKE 'new-%'"),
                 5);
    testapi_stop(&server);
}
