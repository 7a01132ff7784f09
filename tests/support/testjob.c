/*
 * Claims a job with usher_claim and runs its handler from the handler
 * table (usher_handler_find), with a handler context of its own, so a test
 * can look at the database between the steps a worker takes.
 */
#include "testjob.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>

#include "claim.h"
#include "enqueue.h"
#include "testdb.h"

usher_handler_result testjob_claim_and_run(usher_store *st, const usher_config *cfg,
                                           const char *queue, const char *worker,
                                           const char *sql_between)
{
    const char *queues[] = { queue };
    usher_handler_result r = { .outcome = USHER_OUTCOME_OK, .delay_ms = -1 };
    usher_handler_ctx *ctx = usher_handler_ctx_new(cfg);
    usher_job *jobs = NULL;
    json_t *payload;
    size_t n = 0;

    cr_assert_not_null(ctx);
    cr_assert_eq(usher_claim(st, queues, 1, worker, 1, &jobs, &n), USHER_OK, "%s",
                 usher_store_errstr(st));
    cr_assert_eq(n, 1, "no %s job to claim", queue);
    if (sql_between != NULL)
        testdb_exec(st, sql_between);
    payload = json_loads(jobs[0].payload, 0, NULL);
    cr_assert_not_null(payload);
    usher_handler_set_worker(worker);
    usher_handler_find(ctx, jobs[0].kind)->run(ctx, &jobs[0], payload, &r);
    usher_handler_set_worker("");
    json_decref(payload);
    usher_jobs_free(jobs, n);
    usher_handler_ctx_free(ctx);
    return r;
}

void testjob_enqueue_inbox(usher_store *st, long long registration_id, int n)
{
    for (int i = 0; i < n; i++) {
        char payload[160];
        usher_enqueued out;

        snprintf(payload, sizeof(payload), "{\"registration_id\":%lld,\"title\":\"Notice %d\"}",
                 registration_id, i);
        cr_assert_eq(usher_enqueue(st,
                                   &(usher_enqueue_opts){ .queue = "notifications",
                                                          .kind = "notify.inbox",
                                                          .payload = payload },
                                   &out),
                     USHER_OK, "%s", usher_store_errstr(st));
    }
}
