/*
 * Failure handling against the real PostgreSQL: the retry policy, the
 * dead-letter queue and its replay, cancellation, lease rescue by the
 * maintenance leader, and retention pruning.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "admin.h"
#include "claim.h"
#include "enqueue.h"
#include "maint.h"
#include "testdb.h"

static const char *const email[] = { "email" };

TESTDB_SUITE(retry_dead, "usher_test_retry_dead");

static int64_t enqueue_job(int max_attempts, const char *unique_key)
{
    usher_enqueue_opts o = { .queue = "email",
                             .kind = "email.send",
                             .payload = "{\"n\":1}",
                             .max_attempts = max_attempts,
                             .unique_key = unique_key };
    usher_enqueued out;

    cr_assert_eq(usher_enqueue(st, &o, &out), USHER_OK, "%s", usher_store_errstr(st));
    return out.id;
}

/* Claims the one available job as worker; fails the test if there is none. */
static usher_job *claim_one(const char *worker)
{
    usher_job *jobs;
    size_t n;

    cr_assert_eq(usher_claim(st, email, 1, worker, 1, &jobs, &n), USHER_OK, "%s",
                 usher_store_errstr(st));
    cr_assert_eq(n, 1, "nothing to claim");
    return jobs;
}

static void fail_job(usher_job *job, usher_outcome outcome, int64_t delay_ms, const char *error)
{
    usher_job_result r = { .job = job, .outcome = outcome, .delay_ms = delay_ms, .error = error };
    size_t updated;

    cr_assert_eq(usher_fail(st, "w", &r, 1, &updated), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(updated, 1);
}

static json_t *show(int64_t id)
{
    json_t *job;

    cr_assert_eq(usher_admin_show(st, id, &job), USHER_OK, "%s", usher_store_errstr(st));
    return job;
}

static const char *state_of(json_t *job)
{
    return json_string_value(json_object_get(job, "state"));
}

Test(retry_dead, retry_makes_the_job_available_after_the_delay_with_the_error_kept)
{
    int64_t id = enqueue_job(5, NULL);
    usher_job *job = claim_one("w");
    json_t *shown, *err0;

    fail_job(job, USHER_OUTCOME_RETRY, 60000, "smtp 421 try later");
    usher_jobs_free(job, 1);
    shown = show(id);
    cr_assert_str_eq(state_of(shown), "available");
    cr_assert_eq(json_integer_value(json_object_get(shown, "attempt")), 1);
    err0 = json_array_get(json_object_get(shown, "errors"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(err0, "error")), "smtp 421 try later");
    cr_assert_eq(json_integer_value(json_object_get(err0, "attempt")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(err0, "worker")), "w");
    cr_assert_not_null(json_string_value(json_object_get(err0, "at")));
    json_decref(shown);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE run_at >"
                                   " now() + interval '50 seconds' AND locked_by IS NULL"),
                 1);
}

Test(retry_dead, policy_backoff_stays_under_the_kind_cap)
{
    const usher_kind_conf *kind = usher_config_kind(&cfg, "email.send");
    usher_job *job;
    char sql[160];

    enqueue_job(5, NULL);
    job = claim_one("w");
    fail_job(job, USHER_OUTCOME_RETRY, -1, "boom");
    usher_jobs_free(job, 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs WHERE run_at <= now() + %d * interval '1 ms'",
             kind->backoff_base_ms);
    cr_assert_eq(testdb_scalar(st, sql), 1, "first retry later than the base backoff");
}

Test(retry_dead, out_of_attempts_goes_dead_then_retry_from_dead_runs_to_completion)
{
    int64_t id = enqueue_job(2, NULL);
    usher_job *job;
    json_t *shown;
    size_t done;

    for (int attempt = 1; attempt <= 2; attempt++) {
        job = claim_one("w");
        cr_assert_eq(job->attempt, attempt);
        fail_job(job, USHER_OUTCOME_RETRY, 0, attempt == 1 ? "first" : "second");
        usher_jobs_free(job, 1);
    }
    shown = show(id);
    cr_assert_str_eq(state_of(shown), "dead");
    cr_assert_eq(json_array_size(json_object_get(shown, "errors")), 2);
    cr_assert(!json_is_null(json_object_get(shown, "finished_at")));
    json_decref(shown);

    cr_assert_eq(usher_dead_retry_id(st, id), USHER_OK, "%s", usher_store_errstr(st));
    shown = show(id);
    cr_assert_str_eq(state_of(shown), "available");
    cr_assert_eq(json_integer_value(json_object_get(shown, "attempt")), 0);
    cr_assert_eq(json_array_size(json_object_get(shown, "errors")), 2, "history lost");
    json_decref(shown);

    job = claim_one("w");
    cr_assert_eq(job->attempt, 1);
    cr_assert_eq(usher_complete(st, "w", &job->id, 1, &done), USHER_OK);
    cr_assert_eq(done, 1);
    usher_jobs_free(job, 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0);
}

Test(retry_dead, permanent_failure_goes_straight_to_dead)
{
    int64_t id = enqueue_job(10, NULL);
    usher_job *job = claim_one("w");
    json_t *shown;

    fail_job(job, USHER_OUTCOME_PERMANENT, -1, "550 no such user");
    usher_jobs_free(job, 1);
    shown = show(id);
    cr_assert_str_eq(state_of(shown), "dead");
    cr_assert_eq(json_integer_value(json_object_get(shown, "attempt")), 1);
    json_decref(shown);
}

Test(retry_dead, snooze_runs_later_without_spending_an_attempt)
{
    int64_t id = enqueue_job(1, NULL);
    usher_job *job = claim_one("w");
    json_t *shown;

    fail_job(job, USHER_OUTCOME_SNOOZE, 0, NULL);
    usher_jobs_free(job, 1);
    shown = show(id);
    cr_assert_str_eq(state_of(shown), "available");
    cr_assert_eq(json_integer_value(json_object_get(shown, "attempt")), 0);
    cr_assert_eq(json_array_size(json_object_get(shown, "errors")), 0);
    json_decref(shown);
    /* With max_attempts 1 a spent attempt would have killed it; it runs again. */
    job = claim_one("w");
    cr_assert_eq(job->attempt, 1);
    usher_jobs_free(job, 1);
}

Test(retry_dead, error_text_that_is_not_utf8_is_kept_readable)
{
    int64_t id = enqueue_job(5, NULL);
    usher_job *job = claim_one("w");
    json_t *shown;

    fail_job(job, USHER_OUTCOME_RETRY, 0, "bad \xff\xfe bytes \xc3\xa9");
    usher_jobs_free(job, 1);
    shown = show(id);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(shown, "errors"), 0), "error")),
                     "bad ?? bytes \xc3\xa9");
    json_decref(shown);
}

static void make_dead(const char *error, const char *unique_key)
{
    usher_job *job;

    enqueue_job(1, unique_key);
    job = claim_one("w");
    fail_job(job, USHER_OUTCOME_RETRY, 0, error);
    usher_jobs_free(job, 1);
}

Test(retry_dead, dead_jobs_are_listed_retried_and_discarded_by_filter)
{
    usher_job_filter smtp = { .state = "dead", .error_text = "SMTP" };
    usher_job_filter all_dead = { .state = "dead" };
    json_t *list;
    size_t count;

    make_dead("smtp timeout", NULL);
    make_dead("smtp refused", NULL);
    make_dead("template missing", NULL);

    cr_assert_eq(usher_admin_list(st, &smtp, &list), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(json_array_size(list), 2);
    json_decref(list);

    cr_assert_eq(usher_dead_retry(st, &smtp, &count), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(count, 2);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'available'"), 2);
    cr_assert_eq(usher_dead_discard(st, &all_dead, &count), USHER_OK);
    cr_assert_eq(count, 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 2);
}

Test(retry_dead, by_id_actions_explain_what_is_wrong)
{
    int64_t live;

    make_dead("x", "uniq");
    live = enqueue_job(3, NULL);
    cr_assert_eq(usher_dead_retry_id(st, live), USHER_ERR_STATE);
    cr_assert_eq(usher_dead_discard_id(st, 987654321), USHER_ERR_NOT_FOUND);
    enqueue_job(3, "uniq"); /* a live job takes the key again */
    cr_assert_eq(usher_dead_retry_id(st, (int64_t)testdb_scalar(
                                             st, "SELECT id FROM usher_jobs WHERE state = 'dead'")),
                 USHER_ERR_CONFLICT);
}

Test(retry_dead, cancel_applies_to_jobs_not_yet_running)
{
    int64_t waiting = enqueue_job(3, NULL);
    int64_t running = enqueue_job(3, NULL);
    usher_job *job;

    cr_assert_eq(usher_admin_cancel(st, waiting), USHER_OK);
    job = claim_one("w");
    cr_assert_eq(job->id, running);
    cr_assert_eq(usher_admin_cancel(st, running), USHER_ERR_STATE);
    cr_assert(strstr(usher_store_errstr(st), "running") != NULL, "%s", usher_store_errstr(st));
    cr_assert_eq(usher_admin_cancel(st, waiting), USHER_ERR_STATE);
    cr_assert_eq(usher_admin_cancel(st, 987654321), USHER_ERR_NOT_FOUND);
    usher_jobs_free(job, 1);
}

Test(retry_dead, expired_lease_is_rescued_by_the_leader_as_a_failed_attempt)
{
    usher_store *other = testdb_store(&cfg);
    int64_t id = enqueue_job(5, NULL);
    usher_job *job = claim_one("dead-worker");
    bool leader;
    size_t rescued, done;
    json_t *shown;

    /* The worker died: its lease runs out. */
    testdb_exec(st, "UPDATE usher_jobs SET locked_until = now() - interval '1 second'");
    cr_assert_eq(usher_maint_lead(st, &leader), USHER_OK);
    cr_assert(leader);
    cr_assert_eq(usher_maint_lead(other, &leader), USHER_OK);
    cr_assert_not(leader, "two leaders at once");
    cr_assert_eq(usher_maint_rescue(other, 0, &rescued), USHER_ERR_NOT_LEADER);

    cr_assert_eq(usher_maint_rescue(st, 0, &rescued), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(rescued, 1);
    shown = show(id);
    cr_assert_str_eq(state_of(shown), "available");
    cr_assert(strstr(json_string_value(json_object_get(
                         json_array_get(json_object_get(shown, "errors"), 0), "error")),
                     "lease expired") != NULL);
    json_decref(shown);

    /* The late worker cannot complete a job that is no longer its own. */
    cr_assert_eq(usher_complete(st, "dead-worker", &job->id, 1, &done), USHER_OK);
    cr_assert_eq(done, 0);
    usher_jobs_free(job, 1);

    /* When the leader's session ends, another process takes over. */
    usher_store_free(st);
    st = testdb_store(&cfg);
    /* The old backend releases its lock as it exits, a moment after PQfinish. */
    leader = false;
    for (long long deadline = testdb_now_ms() + 30000; !leader && testdb_now_ms() < deadline;)
        cr_assert_eq(usher_maint_lead(other, &leader), USHER_OK);
    cr_assert(leader, "no takeover after the leader's session ended");
    usher_store_free(other);
}

Test(retry_dead, rescue_leaves_live_leases_alone)
{
    usher_job *job;
    bool leader;
    size_t rescued;

    enqueue_job(5, NULL);
    job = claim_one("w");
    cr_assert_eq(usher_maint_lead(st, &leader), USHER_OK);
    cr_assert_eq(usher_maint_rescue(st, 0, &rescued), USHER_OK);
    cr_assert_eq(rescued, 0);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'running'"), 1);
    usher_jobs_free(job, 1);
}

/*
 * After a restart or a failover every session is new: a lease that ran out
 * while the database was down is left to its worker (which renews it once
 * it has reconnected) until the leader's session has lived the settle.
 */
Test(retry_dead, a_new_session_leaves_expired_leases_to_their_workers_for_the_settle)
{
    usher_store *fresh = testdb_store(&cfg);
    usher_job *job;
    bool leader;
    size_t rescued = 0;

    enqueue_job(5, NULL);
    job = claim_one("w");
    testdb_exec(st, "UPDATE usher_jobs SET locked_until = now() - interval '1 second'");
    cr_assert_eq(usher_maint_lead(fresh, &leader), USHER_OK);
    cr_assert(leader);
    cr_assert_eq(usher_maint_rescue(fresh, 60000, &rescued), USHER_OK, "%s",
                 usher_store_errstr(fresh));
    cr_assert_eq(rescued, 0, "rescued by a session younger than the settle");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'running'"), 1);

    /* Once the session is older than the settle, the lease is rescued. */
    for (long long deadline = testdb_now_ms() + 30000; rescued == 0;) {
        cr_assert_lt(testdb_now_ms(), deadline, "never rescued after a settle of 200 ms");
        cr_assert_eq(usher_maint_rescue(fresh, 200, &rescued), USHER_OK);
    }
    cr_assert_eq(rescued, 1);
    usher_jobs_free(job, 1);
    usher_store_free(fresh);

    /* The leader's settle outlasts every lease a heartbeat grants. */
    for (size_t i = 0; i < cfg.npools; i++)
        cr_assert_gt(usher_maint_settle_ms(&cfg),
                     cfg.lease_grace_ms + 2 * (int64_t)cfg.pools[i].heartbeat_ms);
}

Test(retry_dead, prune_removes_dead_jobs_past_retention_only)
{
    bool leader;
    size_t pruned;

    make_dead("old", NULL);
    make_dead("recent", NULL);
    testdb_exec(st, "UPDATE usher_jobs SET finished_at = now() - interval '10000 hours'"
                    " WHERE errors->0->>'error' = 'old'");
    cr_assert_eq(usher_maint_lead(st, &leader), USHER_OK);
    cr_assert_eq(usher_maint_prune(st, &pruned), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(pruned, 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'"), 1);
}
