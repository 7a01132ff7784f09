/*
 * usher-api's own housekeeping against the real database: idempotency keys
 * older than a day are pruned in bounded batches, back to back while a
 * batch comes back full, and the keys of the last day stay; a revoked token
 * is refused at once although the API caches verified tokens for an hour;
 * without a ticket secret it does not start at all.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"
#include "token.h"

TESTDB_SUITE(api_housekeeping, "usher_test_api_housekeeping");

static testapi server;

/* Also after a failed assertion: no usher-api outlives its test. */
static void stop_server(void)
{
    testapi_stop(&server);
}

static bool only_recent_keys_left(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM api_idempotency") == 5;
}

Test(api_housekeeping, old_idempotency_keys_are_pruned_in_batches_until_none_is_left,
     .fini = stop_server, .timeout = 300)
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

typedef struct caller {
    const char *token;
    long want;
} caller;

static bool answers(void *arg)
{
    caller *c = arg;
    testhttp_resp resp;
    long status = testhttp(
        &server, &(testhttp_req){ "GET", "/v1/events", c->token, NULL, NULL, NULL }, &resp);

    testhttp_resp_free(&resp);
    return status == c->want;
}

Test(api_housekeeping, a_revoked_token_is_refused_at_once_by_every_loop, .fini = stop_server,
     .timeout = 300)
{
    char token[USHER_TOKEN_MAX];
    long long org = testdb_scalar(st, "INSERT INTO organizers (name) VALUES ('T') RETURNING id");
    int64_t id;

    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, org, 0, "t", token, &id), USHER_OK);
    setenv("USHER_API_TOKEN_CACHE_MS", "3600000", 1); /* only the notification can end it */
    /* 21 refusals of one address would pass the unknown-token limit (60 a minute, a burst
     * of 10: test_api_limits): this test is about revocation, so no limits. */
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1);
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 2);
    /* Used often enough that both loops have verified and cached it. */
    for (int i = 0; i < 20; i++)
        cr_assert(answers(&(caller){ token, 200 }));
    cr_assert_eq(usher_token_revoke(st, id), USHER_OK, "%s", usher_store_errstr(st));
    /* Every request after the notification lands is refused: wait for the first, then 20 more. */
    cr_assert(testproc_wait_for(answers, &(caller){ token, 401 }, 30000),
              "the revoked token still works");
    for (int i = 0; i < 20; i++)
        cr_assert(answers(&(caller){ token, 401 }), "a loop still trusts the revoked token");
    testapi_stop(&server);
}

/* Starts usher-api with secret as $USHER_TICKET_SECRET (NULL: unset); its exit status. */
static int start_with_secret(const char *secret, char *log, size_t loglen)
{
    const char *argv[] = { USHER_API_PATH, "--threads", "1", NULL };
    char path[128];
    FILE *f;
    size_t got;
    int status;
    pid_t pid;

    snprintf(path, sizeof(path), "/tmp/usher-api-secret-%d.log", (int)getpid());
    unlink(path);
    cr_assert_eq(secret != NULL ? setenv("USHER_TICKET_SECRET", secret, 1)
                                : unsetenv("USHER_TICKET_SECRET"),
                 0);
    cr_assert_eq(setenv("USHER_DATABASE_URL", cfg.database_url, 1), 0);
    cr_assert_eq(setenv("USHER_API_LISTEN", "127.0.0.1:0", 1), 0);
    pid = testproc_start(argv, path);
    cr_assert_gt(pid, 0);
    if (!testproc_wait(pid, 30000, &status)) {
        testproc_kill(pid);
        cr_assert_fail("usher-api started without a ticket secret; see %s", path);
    }
    f = fopen(path, "r");
    cr_assert_not_null(f);
    got = fread(log, 1, loglen - 1, f);
    log[got] = '\0';
    fclose(f);
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Registration, check-in and session access need the ticket key: without it
 * usher-api once started, said ready, and answered each of them 503.
 */
Test(api_housekeeping, without_a_ticket_secret_usher_api_refuses_to_start, .timeout = 120)
{
    const char *why = "usher-api: [tickets] secret (or $USHER_TICKET_SECRET) is not 64 hex digits";
    const char *bad[] = { NULL, "", "abc123", "zz" };
    char log[4096];

    /* Unset or empty: conf/usher.conf's placeholder "set-me" is no key either. */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(start_with_secret(bad[i], log, sizeof(log)), 1, "secret '%s': %s",
                     bad[i] != NULL ? bad[i] : "(unset)", log);
        cr_assert(strstr(log, why) != NULL, "secret '%s': %s", bad[i] != NULL ? bad[i] : "(unset)",
                  log);
    }
}
