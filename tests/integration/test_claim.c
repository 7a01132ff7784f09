/*
 * Claims against the real PostgreSQL: exactly-once under concurrency,
 * strict priority, scheduled jobs, pause, leases and batched outcomes.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "claim.h"
#include "enqueue.h"
#include "queues.h"
#include "testdb.h"

TESTDB_SUITE(claim, "usher_test_claim");

static int64_t enqueue_one(const char *queue, int priority, int64_t delay_ms)
{
    usher_enqueue_opts o = { .queue = queue,
                             .kind = "test.noop",
                             .priority_set = true,
                             .priority = priority,
                             .delay_ms = delay_ms };
    usher_enqueued out;

    cr_assert_eq(usher_enqueue(st, &o, &out), USHER_OK, "%s", usher_store_errstr(st));
    return out.id;
}

static void enqueue_many(const char *queue, size_t n)
{
    usher_enqueue_opts *jobs = calloc(n, sizeof(*jobs));
    usher_enqueued *out = calloc(n, sizeof(*out));

    cr_assert(jobs != NULL && out != NULL);
    for (size_t i = 0; i < n; i++)
        jobs[i] = (usher_enqueue_opts){ .queue = queue, .kind = "test.noop" };
    for (size_t i = 0; i < n; i += 1000) {
        size_t chunk = n - i < 1000 ? n - i : 1000;

        cr_assert_eq(usher_enqueue_batch(st, jobs + i, chunk, out + i), USHER_OK, "%s",
                     usher_store_errstr(st));
    }
    free(jobs);
    free(out);
}

static size_t claim_some(const char *const *queues, size_t nq, size_t max, usher_job **jobs)
{
    size_t n;
    usher_err err = usher_claim(st, queues, nq, "tester", max, jobs, &n);

    cr_assert_eq(err, USHER_OK, "claim: %s", usher_store_errstr(st));
    return n;
}

#define CLAIMERS   8
#define CLAIM_JOBS 20000

typedef struct claimer {
    const usher_config *cfg;
    int64_t *ids;
    size_t n;
    usher_err err;
    char worker[32];
} claimer;

static void *claim_until_empty(void *arg)
{
    claimer *c = arg;
    const char *queues[] = { "default" };
    usher_store *own;
    char errbuf[256];
    int empty_rounds = 0;

    c->err = usher_store_open(c->cfg, &own, errbuf, sizeof(errbuf));
    while (c->err == USHER_OK && empty_rounds < 3) {
        usher_job *jobs;
        size_t n;

        c->err = usher_claim(own, queues, 1, c->worker, 50, &jobs, &n);
        for (size_t i = 0; i < n; i++)
            c->ids[c->n++] = jobs[i].id;
        empty_rounds = n == 0 ? empty_rounds + 1 : 0;
        usher_jobs_free(jobs, n);
    }
    if (c->err == USHER_OK)
        usher_store_free(own);
    return NULL;
}

static int compare_ids(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

Test(claim, eight_threads_claim_each_of_20000_jobs_exactly_once, .timeout = 600)
{
    pthread_t threads[CLAIMERS];
    claimer claimers[CLAIMERS];
    int64_t *all = calloc(CLAIM_JOBS * 2, sizeof(*all));
    size_t total = 0;

    cr_assert_not_null(all);
    enqueue_many("default", CLAIM_JOBS);
    for (int i = 0; i < CLAIMERS; i++) {
        claimers[i] = (claimer){ .cfg = &cfg, .ids = calloc(CLAIM_JOBS, sizeof(int64_t)) };
        cr_assert_not_null(claimers[i].ids);
        snprintf(claimers[i].worker, sizeof(claimers[i].worker), "claimer-%d", i);
        cr_assert_eq(pthread_create(&threads[i], NULL, claim_until_empty, &claimers[i]), 0);
    }
    for (int i = 0; i < CLAIMERS; i++) {
        pthread_join(threads[i], NULL);
        cr_assert_eq(claimers[i].err, USHER_OK, "claimer %d: %s", i,
                     usher_strerror(claimers[i].err));
        memcpy(all + total, claimers[i].ids, claimers[i].n * sizeof(int64_t));
        total += claimers[i].n;
        free(claimers[i].ids);
    }
    cr_assert_eq(total, CLAIM_JOBS, "claimed %zu of %d", total, CLAIM_JOBS);
    qsort(all, total, sizeof(*all), compare_ids);
    for (size_t i = 1; i < total; i++)
        cr_assert_neq(all[i], all[i - 1], "job %lld claimed twice", (long long)all[i]);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'running'"),
                 CLAIM_JOBS);
    free(all);
}

Test(claim, strict_priority_order_across_the_served_queues)
{
    const char *queues[] = { "email", "notifications", "reports" };
    int64_t low = enqueue_one("reports", 2, 0);
    int64_t medium1 = enqueue_one("email", 1, 0);
    int64_t high = enqueue_one("notifications", 0, 0);
    int64_t medium2 = enqueue_one("email", 1, 0);
    usher_job *jobs;
    size_t n = claim_some(queues, 3, 10, &jobs);

    cr_assert_eq(n, 4);
    cr_assert_eq(jobs[0].id, high);
    cr_assert_eq(jobs[1].id, medium1);
    cr_assert_eq(jobs[2].id, medium2);
    cr_assert_eq(jobs[3].id, low);
    cr_assert_eq(jobs[0].attempt, 1);
    usher_jobs_free(jobs, n);
}

Test(claim, one_job_at_a_time_follows_priority_then_age)
{
    const char *queues[] = { "email" };
    int64_t first_low = enqueue_one("email", 2, 0);
    int64_t high = enqueue_one("email", 0, 0);
    int64_t second_low = enqueue_one("email", 2, 0);
    int64_t expected[] = { high, first_low, second_low };

    for (int i = 0; i < 3; i++) {
        usher_job *jobs;
        size_t n = claim_some(queues, 1, 1, &jobs);

        cr_assert_eq(n, 1);
        cr_assert_eq(jobs[0].id, expected[i], "claim %d", i);
        usher_jobs_free(jobs, n);
    }
}

Test(claim, only_the_served_queues_are_claimed)
{
    const char *queues[] = { "email" };
    usher_job *jobs;

    enqueue_one("pdf", 0, 0);
    cr_assert_eq(claim_some(queues, 1, 10, &jobs), 0);
}

Test(claim, scheduled_job_is_not_claimed_before_its_time)
{
    const char *queues[] = { "email" };
    usher_job *jobs;
    int64_t id = enqueue_one("email", 1, 3600 * 1000);
    char sql[128];

    cr_assert_eq(claim_some(queues, 1, 10, &jobs), 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE run_at > now()"
                                   " + interval '59 minutes'"),
                 1);
    /* Move its time to the past instead of waiting an hour. */
    snprintf(sql, sizeof(sql), "UPDATE usher_jobs SET run_at = now() WHERE id = %lld",
             (long long)id);
    testdb_exec(st, sql);
    cr_assert_eq(claim_some(queues, 1, 10, &jobs), 1);
    cr_assert_eq(jobs[0].id, id);
    usher_jobs_free(jobs, 1);
}

Test(claim, delayed_job_becomes_claimable_when_due)
{
    const char *queues[] = { "email" };
    long long start = testdb_now_ms(), deadline = start + 30000;
    usher_job *jobs = NULL;
    size_t n = 0;

    enqueue_one("email", 1, 1500);
    while (n == 0 && testdb_now_ms() < deadline)
        n = claim_some(queues, 1, 10, &jobs);
    cr_assert_eq(n, 1, "never became claimable");
    cr_assert_geq(testdb_now_ms() - start, 1500 - 50, "claimed %lld ms after enqueue",
                  testdb_now_ms() - start);
    usher_jobs_free(jobs, n);
}

Test(claim, paused_queue_is_skipped_until_resumed)
{
    const char *queues[] = { "email", "pdf" };
    usher_job *jobs;
    size_t n;

    enqueue_one("email", 0, 0);
    enqueue_one("pdf", 1, 0);
    cr_assert_eq(usher_queues_pause(st, "email"), USHER_OK);
    n = claim_some(queues, 2, 10, &jobs);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(jobs[0].queue, "pdf");
    usher_jobs_free(jobs, n);
    cr_assert_eq(usher_queues_resume(st, "email"), USHER_OK);
    n = claim_some(queues, 2, 10, &jobs);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(jobs[0].queue, "email");
    usher_jobs_free(jobs, n);
    cr_assert_eq(usher_queues_pause(st, "nosuch"), USHER_ERR_UNKNOWN_QUEUE);
}

Test(claim, lease_lasts_timeout_plus_grace_and_heartbeat_extends_it)
{
    const char *queues[] = { "email" };
    usher_job *jobs;
    size_t n, extended;
    long long lease_s;

    enqueue_one("email", 1, 0);
    n = claim_some(queues, 1, 1, &jobs);
    cr_assert_eq(n, 1);
    lease_s = testdb_scalar(st, "SELECT round(extract(epoch FROM locked_until - attempted_at))"
                                " FROM usher_jobs");
    cr_assert_eq(lease_s, (jobs[0].timeout_ms + cfg.lease_grace_ms) / 1000);
    cr_assert_eq(usher_heartbeat(st, "tester", &jobs[0].id, 1, 3600 * 1000, &extended), USHER_OK);
    cr_assert_eq(extended, 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"
                                   " WHERE locked_until > now() + interval '59 minutes'"),
                 1);
    cr_assert_eq(usher_heartbeat(st, "someone-else", &jobs[0].id, 1, 1000, &extended), USHER_OK);
    cr_assert_eq(extended, 0, "a worker extended a lease it does not hold");
    usher_jobs_free(jobs, n);
}

Test(claim, complete_deletes_the_batch_and_counts_it)
{
    const char *queues[] = { "email" };
    usher_job *jobs;
    int64_t ids[5];
    size_t n, done;
    json_t *stats, *q;
    size_t i;

    for (int k = 0; k < 5; k++)
        enqueue_one("email", 1, 0);
    n = claim_some(queues, 1, 10, &jobs);
    cr_assert_eq(n, 5);
    for (size_t k = 0; k < n; k++)
        ids[k] = jobs[k].id;
    cr_assert_eq(usher_complete(st, "intruder", ids, n, &done), USHER_OK);
    cr_assert_eq(done, 0, "completed jobs leased to another worker");
    cr_assert_eq(usher_complete(st, "tester", ids, n, &done), USHER_OK);
    cr_assert_eq(done, 5);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0);
    cr_assert_eq(usher_queues_stats(st, &stats), USHER_OK);
    json_array_foreach(stats, i, q)
    {
        if (strcmp(json_string_value(json_object_get(q, "name")), "email") == 0) {
            cr_assert_eq(json_integer_value(json_object_get(q, "completed_last_minute")), 5);
            cr_assert_eq(json_integer_value(json_object_get(q, "available")), 0);
        }
    }
    json_decref(stats);
    usher_jobs_free(jobs, n);
}

Test(claim, stats_count_jobs_by_state)
{
    const char *queues[] = { "pdf" };
    usher_job *jobs;
    json_t *stats, *q;
    size_t i, n;
    bool seen = false;

    enqueue_one("pdf", 1, 0);
    enqueue_one("pdf", 1, 0);
    enqueue_one("pdf", 1, 60000);
    n = claim_some(queues, 1, 1, &jobs);
    cr_assert_eq(n, 1);
    usher_jobs_free(jobs, n);
    cr_assert_eq(usher_queues_stats(st, &stats), USHER_OK, "%s", usher_store_errstr(st));
    json_array_foreach(stats, i, q)
    {
        if (strcmp(json_string_value(json_object_get(q, "name")), "pdf") != 0)
            continue;
        seen = true;
        cr_assert_eq(json_integer_value(json_object_get(q, "available")), 1);
        cr_assert_eq(json_integer_value(json_object_get(q, "scheduled")), 1);
        cr_assert_eq(json_integer_value(json_object_get(q, "running")), 1);
        cr_assert(json_is_number(json_object_get(q, "oldest_available_age_s")));
    }
    cr_assert(seen);
    json_decref(stats);
}

Test(claim, within_a_priority_the_earliest_run_at_comes_first)
{
    const char *queues[] = { "email" };
    int64_t older = enqueue_one("email", 1, 0);
    int64_t newer = enqueue_one("email", 1, 0);
    usher_job *jobs;
    char sql[160];
    size_t n;

    /* The older job was retried and became due after the newer one. */
    snprintf(sql, sizeof(sql),
             "UPDATE usher_jobs SET run_at = now() - interval '1 second' WHERE id = %lld",
             (long long)older);
    testdb_exec(st, sql);
    snprintf(sql, sizeof(sql),
             "UPDATE usher_jobs SET run_at = now() - interval '2 seconds' WHERE id = %lld",
             (long long)newer);
    testdb_exec(st, sql);
    n = claim_some(queues, 1, 10, &jobs);
    cr_assert_eq(n, 2);
    cr_assert_eq(jobs[0].id, newer);
    cr_assert_eq(jobs[1].id, older);
    usher_jobs_free(jobs, n);
}
