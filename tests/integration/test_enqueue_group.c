/*
 * Shared commits (engine/enqueue_group.h) against the real PostgreSQL:
 * concurrent producers lose and duplicate nothing, and a bad job fails
 * only its own call.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>

#include "enqueue_group.h"
#include "testdb.h"

TESTDB_SUITE(enqueue_group, "usher_test_enqueue_group");

#define PRODUCERS  8
#define PER_CALLER 300

typedef struct producer {
    usher_enqueue_group *group;
    usher_store *own; /* opened and freed by the test's thread */
    int index;
    int bad_every; /* every bad_every-th call enqueues into an undeclared queue (0: none) */
    int ok, refused, wrong;
    int64_t ids[PER_CALLER];
} producer;

static void *produce(void *arg)
{
    producer *p = arg;

    for (int i = 0; i < PER_CALLER; i++) {
        char payload[64];
        bool bad = p->bad_every > 0 && i % p->bad_every == p->bad_every - 1;
        usher_enqueue_opts o = { .queue = bad ? "no_such_queue" : "email",
                                 .kind = "email.send",
                                 .payload = payload };
        usher_enqueued out = { 0 };
        usher_err err;

        snprintf(payload, sizeof(payload), "{\"to\":\"p%d-%d@example.org\"}", p->index, i);
        err = usher_enqueue_shared(p->group, p->own, &o, &out);
        if (bad) {
            p->refused += err == USHER_ERR_UNKNOWN_QUEUE;
            p->wrong += err != USHER_ERR_UNKNOWN_QUEUE;
        } else if (err == USHER_OK && out.id > 0) {
            p->ids[p->ok++] = out.id;
        } else {
            p->wrong++;
        }
    }
    return NULL;
}

/* Runs the producers on one group; *written: the jobs its batches carried, *commits: how many. */
static void run_producers(producer *ps, int bad_every, uint64_t *commits, uint64_t *written)
{
    usher_enqueue_group *g = usher_enqueue_group_new();
    pthread_t tids[PRODUCERS];

    cr_assert_not_null(g);
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i] =
            (producer){ .group = g, .own = testdb_store(&cfg), .index = i, .bad_every = bad_every };
    }
    for (int i = 0; i < PRODUCERS; i++)
        cr_assert_eq(pthread_create(&tids[i], NULL, produce, &ps[i]), 0);
    for (int i = 0; i < PRODUCERS; i++) {
        cr_assert_eq(pthread_join(tids[i], NULL), 0);
        usher_store_free(ps[i].own);
    }
    usher_enqueue_group_stats(g, commits, written);
    usher_enqueue_group_free(g);
}

/* Every id a producer got is a job in the table, and no two calls got the same. */
static void assert_ids_match_the_table(const producer *ps, int64_t want)
{
    int64_t total = 0;

    for (int i = 0; i < PRODUCERS; i++) {
        for (int k = 0; k < ps[i].ok; k++) {
            char sql[96];

            snprintf(sql, sizeof(sql), "SELECT count(*) FROM usher_jobs WHERE id = %lld",
                     (long long)ps[i].ids[k]);
            cr_assert_eq(testdb_scalar(st, sql), 1, "job %lld", (long long)ps[i].ids[k]);
        }
        total += ps[i].ok;
    }
    cr_assert_eq(total, want);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), want);
    cr_assert_eq(testdb_scalar(st, "SELECT count(DISTINCT payload->>'to') FROM usher_jobs"), want);
}

Test(enqueue_group, concurrent_producers_get_every_job_written_once, .timeout = 300)
{
    static producer ps[PRODUCERS];
    uint64_t commits, written;

    run_producers(ps, 0, &commits, &written);
    for (int i = 0; i < PRODUCERS; i++)
        cr_assert_eq(ps[i].wrong, 0, "producer %d: %d calls failed", i, ps[i].wrong);
    assert_ids_match_the_table(ps, PRODUCERS * PER_CALLER);
    /* Every call went through exactly one batch; calls that met share commits. */
    cr_assert_eq(written, (uint64_t)PRODUCERS * PER_CALLER);
    cr_assert(commits >= 1 && commits <= written, "%llu commits", (unsigned long long)commits);
}

Test(enqueue_group, a_bad_job_fails_only_its_own_call, .timeout = 300)
{
    static producer ps[PRODUCERS];
    int refused = 0;
    uint64_t commits, written;

    run_producers(ps, 10, &commits, &written);
    for (int i = 0; i < PRODUCERS; i++) {
        cr_assert_eq(ps[i].wrong, 0, "producer %d: %d calls ended wrongly", i, ps[i].wrong);
        refused += ps[i].refused;
    }
    cr_assert_eq(refused, PRODUCERS * (PER_CALLER / 10));
    assert_ids_match_the_table(ps, PRODUCERS * (PER_CALLER - PER_CALLER / 10));
    cr_assert_eq(written, (uint64_t)PRODUCERS * PER_CALLER);
}

Test(enqueue_group, a_lone_call_writes_its_job_at_once)
{
    usher_enqueue_group *g = usher_enqueue_group_new();
    usher_enqueue_opts o = { .queue = "email", .kind = "email.send", .payload = "{}" };
    usher_enqueued out = { 0 };

    cr_assert_not_null(g);
    cr_assert_eq(usher_enqueue_shared(g, st, &o, &out), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_gt(out.id, 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 1);
    usher_enqueue_group_free(g);
}
