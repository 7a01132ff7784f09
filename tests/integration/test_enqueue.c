/*
 * Enqueue against the real PostgreSQL: transactions, unique keys (also
 * under concurrency), batches, validation and wake-ups.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "claim.h"
#include "enqueue.h"
#include "listener.h"
#include "testdb.h"
#include "wake.h"

TESTDB_SUITE(enqueue, "usher_test_enqueue");

static usher_enqueued enqueue_ok(const char *queue, const char *kind, const char *payload,
                                 const char *unique_key)
{
    usher_enqueue_opts o = {
        .queue = queue, .kind = kind, .payload = payload, .unique_key = unique_key
    };
    usher_enqueued out = { 0 };
    usher_err err = usher_enqueue(st, &o, &out);

    cr_assert_eq(err, USHER_OK, "enqueue: %s", usher_store_errstr(st));
    cr_assert_gt(out.id, 0);
    return out;
}

Test(enqueue, job_in_a_rolled_back_transaction_never_exists)
{
    testdb_exec(st, "BEGIN");
    enqueue_ok("email", "email.send", "{\"to\":\"a@example.org\"}", NULL);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 1);
    testdb_exec(st, "ROLLBACK");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0);
}

Test(enqueue, job_in_a_committed_transaction_exists_with_the_kind_defaults)
{
    usher_enqueued e;

    testdb_exec(st, "BEGIN");
    e = enqueue_ok("notifications", "notify.webhook", "{}", NULL);
    testdb_exec(st, "COMMIT");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 1);
    /* notify.* is high priority (0) in the shipped config, email medium. */
    cr_assert_eq(testdb_scalar(st, "SELECT priority FROM usher_jobs"), 0);
    cr_assert_eq(testdb_scalar(st, "SELECT max_attempts FROM usher_jobs"),
                 usher_config_kind(&cfg, "notify.webhook")->max_attempts);
    cr_assert_eq(e.existed, false);
}

Test(enqueue, per_job_options_override_the_kind)
{
    usher_enqueue_opts o = { .queue = "email",
                             .kind = "email.send",
                             .priority_set = true,
                             .priority = 2,
                             .max_attempts = 3,
                             .timeout_ms = 1234 };
    usher_enqueued out;

    cr_assert_eq(usher_enqueue(st, &o, &out), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(testdb_scalar(st, "SELECT priority * 1000000 + max_attempts * 10000 + timeout_ms"
                                   " FROM usher_jobs"),
                 2 * 1000000 + 3 * 10000 + 1234);
}

Test(enqueue, same_unique_key_returns_the_live_job)
{
    usher_enqueued a = enqueue_ok("email", "email.send", "{}", "confirm-42");
    usher_enqueued b = enqueue_ok("email", "email.send", "{}", "confirm-42");
    usher_enqueued c = enqueue_ok("pdf", "pdf.ticket", "{}", "confirm-42");

    cr_assert_eq(b.id, a.id);
    cr_assert(b.existed);
    cr_assert_neq(c.id, a.id, "unique keys are per queue");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 2);
}

Test(enqueue, unique_key_is_free_again_once_the_job_completed)
{
    const char *queues[] = { "email" };
    usher_enqueued a = enqueue_ok("email", "email.send", "{}", "k");
    usher_enqueued b;
    usher_job *jobs;
    size_t n, done;

    cr_assert_eq(usher_claim(st, queues, 1, "w1", 10, &jobs, &n), USHER_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(usher_complete(st, "w1", &jobs[0].id, 1, &done), USHER_OK);
    cr_assert_eq(done, 1);
    usher_jobs_free(jobs, n);
    b = enqueue_ok("email", "email.send", "{}", "k");
    cr_assert_neq(b.id, a.id);
    cr_assert_not(b.existed);
}

typedef struct racer {
    const usher_config *cfg;
    int64_t id;
    usher_err err;
} racer;

static void *enqueue_same_key(void *arg)
{
    racer *r = arg;
    usher_store *own;
    char errbuf[256];
    usher_enqueue_opts o = { .queue = "email", .kind = "email.send", .unique_key = "race" };
    usher_enqueued out = { 0 };

    r->err = usher_store_open(r->cfg, &own, errbuf, sizeof(errbuf));
    if (r->err != USHER_OK)
        return NULL;
    for (int i = 0; i < 50 && r->err == USHER_OK; i++) {
        r->err = usher_enqueue(own, &o, &out);
        if (r->id == 0)
            r->id = out.id;
        else if (r->id != out.id)
            r->err = USHER_ERR_CONFLICT;
    }
    usher_store_free(own);
    return NULL;
}

Test(enqueue, concurrent_enqueues_of_one_unique_key_make_one_job)
{
    pthread_t threads[8];
    racer racers[8];

    for (int i = 0; i < 8; i++) {
        racers[i] = (racer){ .cfg = &cfg };
        cr_assert_eq(pthread_create(&threads[i], NULL, enqueue_same_key, &racers[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(racers[i].err, USHER_OK, "racer %d: %s", i, usher_strerror(racers[i].err));
        cr_assert_eq(racers[i].id, racers[0].id);
    }
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 1);
}

Test(enqueue, batch_returns_ids_in_input_order_and_folds_duplicate_keys)
{
    usher_enqueue_opts jobs[5] = {
        { .queue = "email", .kind = "email.send", .payload = "{\"n\":0}" },
        { .queue = "pdf", .kind = "pdf.ticket", .payload = "{\"n\":1}", .unique_key = "t" },
        { .queue = "email", .kind = "email.send", .payload = "{\"n\":2}" },
        { .queue = "pdf", .kind = "pdf.ticket", .payload = "{\"n\":3}", .unique_key = "t" },
        { .queue = "email", .kind = "email.send", .payload = "{\"n\":4}" },
    };
    usher_enqueued out[5];
    char sql[128];

    cr_assert_eq(usher_enqueue_batch(st, jobs, 5, out), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(out[3].id, out[1].id);
    cr_assert(out[3].existed);
    for (int i = 0; i < 5; i++) {
        if (i == 3)
            continue;
        snprintf(sql, sizeof(sql), "SELECT (payload->>'n')::int FROM usher_jobs WHERE id = %lld",
                 (long long)out[i].id);
        cr_assert_eq(testdb_scalar(st, sql), i, "job %d got the id of another", i);
    }
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 4);
}

Test(enqueue, one_bad_job_refuses_the_whole_batch)
{
    usher_enqueue_opts jobs[2] = {
        { .queue = "email", .kind = "email.send" },
        { .queue = "nosuchqueue", .kind = "email.send" },
    };
    usher_enqueued out[2];

    cr_assert_eq(usher_enqueue_batch(st, jobs, 2, out), USHER_ERR_UNKNOWN_QUEUE);
    cr_assert(strstr(usher_store_errstr(st), "job 1") != NULL, "%s", usher_store_errstr(st));
    cr_assert(strstr(usher_store_errstr(st), "nosuchqueue") != NULL);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0);
}

Test(enqueue, malformed_payloads_are_refused_with_the_reason)
{
    static const char *const bad[] = { "{\"a\":", "[1,2]", "\"text\"", "{\"a\":1,\"a\":2}", "" };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        usher_enqueue_opts o = { .queue = "email", .kind = "email.send", .payload = bad[i] };
        usher_enqueued out;

        cr_assert_eq(usher_enqueue(st, &o, &out), USHER_ERR_PAYLOAD, "payload '%s' accepted",
                     bad[i]);
        cr_assert(strstr(usher_store_errstr(st), "payload") != NULL);
    }
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0);
}

Test(enqueue, oversized_payload_is_refused_before_it_reaches_the_database)
{
    size_t len = (size_t)cfg.payload_max_bytes + 16;
    char *big = malloc(len + 1);
    usher_enqueue_opts o = { .queue = "email", .kind = "email.send", .payload = big };
    usher_enqueued out;

    cr_assert_not_null(big);
    memset(big, ' ', len);
    memcpy(big, "{}", 2);
    big[len] = '\0';
    cr_assert_eq(usher_enqueue(st, &o, &out), USHER_ERR_TOO_LARGE);
    free(big);
}

Test(enqueue, bad_names_and_ranges_are_refused)
{
    usher_enqueue_opts cases[] = {
        { .queue = "email", .kind = "Email Send" },
        { .queue = "email", .kind = "email.send", .priority_set = true, .priority = 3 },
        { .queue = "email", .kind = "email.send", .max_attempts = -1 },
        { .queue = "email", .kind = "email.send", .delay_ms = -5 },
        { .queue = "email", .kind = "email.send", .unique_key = "" },
        { .queue = NULL, .kind = "email.send" },
    };
    usher_enqueued out;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(usher_enqueue(st, &cases[i], &out), USHER_ERR_INVALID, "case %zu", i);
    cr_assert_eq(
        usher_enqueue(st, &(usher_enqueue_opts){ .queue = "Bad/Queue", .kind = "k" }, &out),
        USHER_ERR_UNKNOWN_QUEUE);
}

Test(enqueue, wakes_a_listening_claimer)
{
    const char *queues[] = { "index" };
    usher_listener *l;
    char errbuf[256];
    usher_err err;

    cr_assert_eq(usher_listener_open(&cfg, queues, 1, &l, errbuf, sizeof(errbuf)), USHER_OK, "%s",
                 errbuf);
    /* Nothing pending: a short wait times out. */
    cr_assert_eq(usher_listener_wait(l, 50), USHER_ERR_TIMEOUT);
    enqueue_ok("index", "index.document", "{}", NULL);
    err = usher_listener_wait(l, 10000);
    cr_assert_eq(err, USHER_OK, "no wake-up: %s", usher_strerror(err));
    usher_listener_free(l);
}

Test(enqueue, sql_and_c_name_the_same_wake_channel)
{
    const char *params[] = { "email" };
    char channel[64];
    PGresult *res;

    usher_wake_channel("email", channel, sizeof(channel));
    cr_assert_str_eq(channel, USHER_WAKE_PREFIX "email");
    cr_assert_eq(usher_store_exec(st, "SELECT usher_wake_channel($1)", 1, params, &res), USHER_OK,
                 "%s", usher_store_errstr(st));
    cr_assert_str_eq(PQgetvalue(res, 0, 0), channel);
    PQclear(res);
}

Test(enqueue, the_sql_side_keeps_the_unique_key_rule_of_the_c_side)
{
    const char *template = "[{\"queue\":\"email\",\"kind\":\"email.send\",\"priority\":1,"
                           "\"max_attempts\":3,\"timeout_ms\":1000,\"unique_key\":\"sql-k\","
                           "\"payload\":{\"n\":1}}]";
    const char *params[] = { template };
    usher_enqueued c;
    PGresult *res;

    cr_assert_eq(usher_store_exec(st, "SELECT * FROM usher_enqueue_templates($1::jsonb, NULL)", 1,
                                  params, &res),
                 USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(PQntuples(res), 1);
    PQclear(res);
    cr_assert_eq(usher_store_exec(st, "SELECT * FROM usher_enqueue_templates($1::jsonb, NULL)", 1,
                                  params, &res),
                 USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(PQntuples(res), 0, "a live job holds the key: the second one is skipped");
    PQclear(res);
    c = enqueue_ok("email", "email.send", "{}", "sql-k");
    cr_assert(c.existed);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 1);
    cr_assert_eq(testdb_scalar(st, "SELECT (payload->>'n')::int FROM usher_jobs"), 1);
}
