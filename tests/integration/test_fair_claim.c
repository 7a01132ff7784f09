/*
 * Fair and deadline-aware claims against the real PostgreSQL (issue 15,
 * "Beyond every queue", items 1 and 3): partitions share a batch in turn
 * within a priority, a small partition's unused share goes to the others,
 * a job near its deadline is claimed before older ones, and a job claimed
 * after its deadline is counted and, if its kind says so, dropped. Exact
 * counts and positions, no timings.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "claim.h"
#include "enqueue.h"
#include "testdb.h"

TESTDB_SUITE(fair, "usher_test_fair_claim");

#define QUEUE "email"

/* n jobs of partition key (NULL: none) at priority, deadline_ms as usher_enqueue_opts has it. */
static void enqueue_n(const char *key, int priority, int64_t deadline_ms, size_t n, int64_t *ids)
{
    usher_enqueue_opts *jobs = calloc(n, sizeof(*jobs));
    usher_enqueued *out = calloc(n, sizeof(*out));

    cr_assert(jobs != NULL && out != NULL);
    for (size_t i = 0; i < n; i++)
        jobs[i] = (usher_enqueue_opts){ .queue = QUEUE,
                                        .kind = "test.noop",
                                        .priority_set = true,
                                        .priority = priority,
                                        .partition_key = key,
                                        .deadline_ms = deadline_ms };
    for (size_t i = 0; i < n; i += 1000) {
        size_t chunk = n - i < 1000 ? n - i : 1000;

        cr_assert_eq(usher_enqueue_batch(st, jobs + i, chunk, out + i), USHER_OK, "%s",
                     usher_store_errstr(st));
    }
    for (size_t i = 0; ids != NULL && i < n; i++)
        ids[i] = out[i].id;
    free(jobs);
    free(out);
}

static size_t claim_batch(size_t max, usher_job **jobs)
{
    const char *queues[] = { QUEUE };
    size_t n;

    cr_assert_eq(usher_claim(st, queues, 1, "tester", max, jobs, &n), USHER_OK, "claim: %s",
                 usher_store_errstr(st));
    return n;
}

static size_t count_key(const usher_job *jobs, size_t from, size_t to, const char *key)
{
    size_t n = 0;

    for (size_t i = from; i < to; i++)
        n += strcmp(jobs[i].partition_key, key) == 0;
    return n;
}

Test(fair, two_backlogged_partitions_alternate_within_the_batch)
{
    usher_job *jobs;
    size_t n;

    enqueue_n("org:A", 1, -1, 1000, NULL);
    enqueue_n("org:B", 1, -1, 1000, NULL);
    n = claim_batch(20, &jobs);
    cr_assert_eq(n, 20);
    for (size_t round = 0; round < 10; round++) {
        cr_assert_eq(count_key(jobs, 2 * round, 2 * round + 2, "org:A"), 1, "round %zu", round);
        cr_assert_eq(count_key(jobs, 2 * round, 2 * round + 2, "org:B"), 1, "round %zu", round);
    }
    usher_jobs_free(jobs, n);
}

Test(fair, a_late_small_partition_is_served_in_the_next_claim_despite_a_backlog)
{
    int64_t a[5000], b[10];
    usher_job *jobs;
    size_t n, claims = 0, got_a = 0, got_b = 0;

    enqueue_n("org:A", 1, -1, 5000, a);
    enqueue_n("org:B", 1, -1, 10, b);
    /* B's 10 jobs, newer than all of A's, take half of each batch of 10. */
    while (got_b < 10) {
        n = claim_batch(10, &jobs);
        cr_assert_eq(n, 10);
        got_a += count_key(jobs, 0, n, "org:A");
        got_b += count_key(jobs, 0, n, "org:B");
        claims++;
        usher_jobs_free(jobs, n);
    }
    cr_assert_eq(claims, 2);
    cr_assert_eq(got_a, 10);
    cr_assert_eq(got_b, 10);
    /* B is drained: A has the whole batch again, oldest first. */
    n = claim_batch(10, &jobs);
    cr_assert_eq(n, 10);
    cr_assert_eq(count_key(jobs, 0, n, "org:A"), 10);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(jobs[i].id, a[10 + i], "job %zu", i);
    usher_jobs_free(jobs, n);
}

Test(fair, a_small_partition_leaves_its_share_to_the_others)
{
    usher_job *jobs;
    size_t n;

    enqueue_n("org:A", 1, -1, 1000, NULL);
    enqueue_n("org:B", 1, -1, 3, NULL);
    enqueue_n(NULL, 1, -1, 1000, NULL);
    n = claim_batch(30, &jobs);
    cr_assert_eq(n, 30, "the batch is full");
    cr_assert_eq(count_key(jobs, 0, n, "org:B"), 3);
    /* 10 each in the fair step; B's unused 7 go to A or the unpartitioned jobs. */
    cr_assert_eq(count_key(jobs, 0, n, "org:A") + count_key(jobs, 0, n, ""), 27);
    cr_assert_geq(count_key(jobs, 0, n, "org:A"), 10);
    cr_assert_geq(count_key(jobs, 0, n, ""), 10);
    /* B's three are in the first three rounds. */
    cr_assert_eq(count_key(jobs, 0, 9, "org:B"), 3);
    usher_jobs_free(jobs, n);
}

Test(fair, three_partitions_drain_in_equal_shares)
{
    usher_job *jobs;
    size_t total[3] = { 0 };
    const char *keys[] = { "org:A", "org:B", "org:C" };

    enqueue_n("org:A", 2, -1, 300, NULL);
    enqueue_n("org:B", 2, -1, 300, NULL);
    enqueue_n("org:C", 2, -1, 300, NULL);
    for (int claim = 0; claim < 30; claim++) {
        size_t n = claim_batch(30, &jobs);

        cr_assert_eq(n, 30);
        for (int k = 0; k < 3; k++) {
            cr_assert_eq(count_key(jobs, 0, n, keys[k]), 10, "claim %d, %s", claim, keys[k]);
            total[k] += count_key(jobs, 0, n, keys[k]);
        }
        usher_jobs_free(jobs, n);
    }
    cr_assert_eq(total[0] + total[1] + total[2], 900);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'available'"), 0);
}

Test(fair, priority_still_comes_before_partitions)
{
    int64_t high[4];
    usher_job *jobs;
    size_t n;

    enqueue_n("org:A", 2, -1, 100, NULL);
    enqueue_n("org:B", 1, -1, 4, high);
    n = claim_batch(10, &jobs);
    cr_assert_eq(n, 10);
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(jobs[i].id, high[i], "job %zu", i);
        cr_assert_eq(jobs[i].priority, 1);
    }
    cr_assert_eq(count_key(jobs, 4, n, "org:A"), 6, "the rest fills from the lower priority");
    usher_jobs_free(jobs, n);
}

Test(fair, a_job_near_its_deadline_is_claimed_before_older_jobs)
{
    int64_t near[5], far[5];
    usher_job *jobs;
    size_t n;

    enqueue_n(NULL, 1, -1, 1000, NULL);
    /* Within [engine] deadline_lead_ms (30 s) of their deadline: urgent. */
    enqueue_n(NULL, 1, 10000, 5, near);
    /* An hour away: these wait their turn like the rest. */
    enqueue_n(NULL, 1, 3600 * 1000, 5, far);
    n = claim_batch(10, &jobs);
    cr_assert_eq(n, 10);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(jobs[i].id, near[i], "job %zu", i);
    for (size_t i = 5; i < n; i++) {
        cr_assert_neq(jobs[i].id, far[0]);
        cr_assert_lt(jobs[i].id, near[0], "then the oldest of the backlog");
    }
    usher_jobs_free(jobs, n);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'available'"
                                   " AND deadline IS NOT NULL"),
                 5);
}

Test(fair, an_urgent_job_does_not_jump_a_higher_priority)
{
    int64_t high[3];
    usher_job *jobs;
    size_t n;

    enqueue_n(NULL, 2, 1000, 3, NULL);
    enqueue_n(NULL, 1, -1, 3, high);
    n = claim_batch(3, &jobs);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(jobs[i].id, high[i]);
    usher_jobs_free(jobs, n);
}

/* Moves every available job's deadline a minute into the past. */
static void miss_deadlines(void)
{
    testdb_exec(st, "UPDATE usher_jobs SET deadline = now() - interval '1 minute'"
                    " WHERE state = 'available' AND deadline IS NOT NULL");
}

Test(fair, a_job_claimed_after_its_deadline_is_counted_and_run)
{
    uint64_t missed0, dropped0, missed, dropped;
    usher_job *jobs;
    size_t n;

    usher_claim_deadline_counts(&missed0, &dropped0);
    enqueue_n(NULL, 1, 60000, 4, NULL);
    enqueue_n(NULL, 1, -1, 3, NULL);
    miss_deadlines();
    n = claim_batch(10, &jobs);
    cr_assert_eq(n, 7);
    usher_jobs_free(jobs, n);
    usher_claim_deadline_counts(&missed, &dropped);
    cr_assert_eq(missed - missed0, 4);
    cr_assert_eq(dropped - dropped0, 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'running'"), 7);
}

Test(fair, a_late_job_of_a_dropping_kind_is_cancelled_not_run)
{
    uint64_t missed0, dropped0, missed, dropped;
    usher_kind_conf *kind = NULL;
    usher_job *jobs;
    size_t n;

    for (size_t i = 0; i < cfg.nkinds; i++) {
        if (strcmp(cfg.kinds[i].name, "email.send") == 0)
            kind = &cfg.kinds[i];
    }
    cr_assert_not_null(kind, "conf/usher.conf declares [kind.email.send]");
    kind->deadline_drop = 1;
    usher_claim_deadline_counts(&missed0, &dropped0);
    for (int i = 0; i < 6; i++) {
        usher_enqueue_opts o = { .queue = QUEUE,
                                 .kind = i < 4 ? "email.send" : "test.noop",
                                 .payload = "{\"registration_id\":1,\"template\":\"x\"}",
                                 .deadline_ms = 60000 };
        usher_enqueued out;

        cr_assert_eq(usher_enqueue(st, &o, &out), USHER_OK, "%s", usher_store_errstr(st));
    }
    miss_deadlines();
    n = claim_batch(10, &jobs);
    cr_assert_eq(n, 2, "only the two late test.noop jobs run");
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(jobs[i].kind, "test.noop");
    usher_jobs_free(jobs, n);
    usher_claim_deadline_counts(&missed, &dropped);
    cr_assert_eq(missed - missed0, 6);
    cr_assert_eq(dropped - dropped0, 4);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'cancelled'"
                                   " AND kind = 'email.send' AND finished_at IS NOT NULL"
                                   " AND errors -> -1 ->> 'error' = 'deadline passed: dropped'"),
                 4);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'running'"), 2);
}

Test(fair, two_claimers_take_each_job_of_150_partitions_once, .timeout = 300)
{
    const char *queues[] = { QUEUE };
    usher_store *other = testdb_store(&cfg);
    size_t total = 0, rounds = 0;

    for (int org = 0; org < 150; org++) {
        char key[32];

        snprintf(key, sizeof(key), "org:%d", org);
        enqueue_n(key, 1, -1, 20, NULL);
    }
    /* Two connections taking turns; 150 partitions, so each walk is cut at 100. */
    for (;;) {
        usher_job *a, *b;
        size_t na, nb;

        cr_assert_eq(usher_claim(st, queues, 1, "one", 64, &a, &na), USHER_OK);
        cr_assert_eq(usher_claim(other, queues, 1, "two", 64, &b, &nb), USHER_OK);
        total += na + nb;
        rounds++;
        usher_jobs_free(a, na);
        usher_jobs_free(b, nb);
        if (na + nb == 0)
            break;
    }
    usher_store_free(other);
    cr_assert_eq(total, 3000);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'running'"),
                 3000);
    cr_assert_eq(testdb_scalar(st, "SELECT count(DISTINCT locked_by) FROM usher_jobs"), 2);
}
