/*
 * A handler's writes and its job's completion in one commit
 * (usher_handler_commit), and chained effects keyed for good
 * (usher_effect_once), shown on the real pdf.ticket handler run in this
 * process against the real database: the job leaves the table in the
 * handler's own commit; a job whose lease another worker took writes
 * nothing; and a ticket job run again after its email was sent and pruned
 * (what a reply lost in a restart used to cause) chains no second email.
 * A job of several sales (registration_ids, as a registration batch's
 * sales share one since 0038) draws each ticket and chains each email once,
 * however often it runs, and skips a sale cancelled since.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enqueue.h"
#include "handler.h"
#include "seed.h"
#include "testdb.h"
#include "testjob.h"

#define WORKER "commit-test:1"

static char docs[64];

__attribute__((constructor)) static void use_chain_config(void)
{
    setenv("USHER_CONFIG", CHAIN_TEST_CONF, 1);
    snprintf(docs, sizeof(docs), "/tmp/usher-commit-XXXXXX");
    if (mkdtemp(docs) != NULL)
        setenv("USHER_DOCUMENT_DIR", docs, 1);
}

TESTDB_SUITE(handler_commit, "usher_test_handler_commit");

/* A confirmed registration's id. */
static long long registration(void)
{
    usher_seed_result seed;

    cr_assert_eq(usher_seed_demo(st, 2, &seed), USHER_OK, "%s", usher_store_errstr(st));
    return testdb_scalar(st, "SELECT max(id) FROM registrations WHERE status = 'confirmed'");
}

/* Enqueues pdf.ticket for reg with then_email; its job id. */
static long long enqueue_ticket(long long reg)
{
    char payload[96];
    usher_enqueued out;

    snprintf(payload, sizeof(payload), "{\"registration_id\":%lld,\"then_email\":true}", reg);
    cr_assert_eq(
        usher_enqueue(
            st, &(usher_enqueue_opts){ .queue = "pdf", .kind = "pdf.ticket", .payload = payload },
            &out),
        USHER_OK, "%s", usher_store_errstr(st));
    return (long long)out.id;
}

/* Claims the one pdf job as WORKER and runs the real handler on it. */
static usher_handler_result claim_and_run(const char *sql_between)
{
    return testjob_claim_and_run(st, &cfg, "pdf", WORKER, sql_between);
}

/* A count over one id: sql_prefix ends in "= " and the id follows. */
static long long count_for(const char *sql_prefix, long long id, const char *sql_suffix)
{
    char sql[512];

    snprintf(sql, sizeof(sql), "%s%lld%s", sql_prefix, id, sql_suffix);
    return testdb_scalar(st, sql);
}

Test(handler_commit, a_ticket_job_leaves_the_queue_in_the_commit_of_its_writes)
{
    long long reg = registration(), job = enqueue_ticket(reg);
    usher_handler_result r = claim_and_run(NULL);

    cr_assert_eq(r.outcome, USHER_OUTCOME_OK, "%s", r.error);
    /* Gone before any supervisor completed it: the handler's commit did. */
    cr_assert_eq(count_for("SELECT count(*) FROM usher_jobs WHERE id = ", job, ""), 0);
    cr_assert_eq(count_for("SELECT count(*) FROM documents WHERE registration_id = ", reg,
                           " AND kind = 'ticket'"),
                 1);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"), 1);
    cr_assert_eq(testdb_scalar(st, "SELECT coalesce(sum(completed), 0) FROM usher_queue_stats"
                                   " WHERE queue = 'pdf'"),
                 1, "the completion is counted once");
}

Test(handler_commit, a_ticket_job_whose_lease_another_worker_took_writes_nothing)
{
    long long reg = registration(), job = enqueue_ticket(reg);
    usher_handler_result r =
        claim_and_run("UPDATE usher_jobs SET locked_by = 'elsewhere:2' WHERE kind = 'pdf.ticket'");

    cr_assert_eq(r.outcome, USHER_OUTCOME_RETRY);
    cr_assert_not_null(strstr(r.error, "lease lost"), "%s", r.error);
    cr_assert_eq(count_for("SELECT count(*) FROM usher_jobs WHERE id = ", job, ""), 1,
                 "the other worker's job must stay");
    cr_assert_eq(count_for("SELECT count(*) FROM documents WHERE registration_id = ", reg, ""), 0,
                 "the document must be rolled back");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"), 0,
                 "no email may be chained");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_effects"), 0);
}

Test(handler_commit, a_ticket_job_run_again_after_its_email_left_chains_no_second_email)
{
    long long reg = registration();
    usher_handler_result r;

    enqueue_ticket(reg);
    r = claim_and_run(NULL);
    cr_assert_eq(r.outcome, USHER_OUTCOME_OK, "%s", r.error);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"), 1);
    /* The email was sent and its job completed and left: its unique key guards no more. */
    testdb_exec(st, "DELETE FROM usher_jobs WHERE kind = 'email.send'");
    enqueue_ticket(reg); /* the same ticket work again, as a lost reply's retry would run it */
    r = claim_and_run(NULL);
    cr_assert_eq(r.outcome, USHER_OUTCOME_OK, "%s", r.error);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"), 0,
                 "a second confirmation email was chained");
    cr_assert_eq(
        count_for("SELECT count(*) FROM usher_effects WHERE key = 'confirmation:", reg, "'"), 1);
}

Test(handler_commit, a_shared_ticket_job_draws_each_sale_once_and_skips_a_cancelled_one)
{
    long long regs[3];
    char payload[160], sql[192];
    usher_enqueued out;
    usher_handler_result r;
    usher_seed_result seed;

    cr_assert_eq(usher_seed_demo(st, 3, &seed), USHER_OK, "%s", usher_store_errstr(st));
    for (int i = 0; i < 3; i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT id FROM registrations WHERE status = 'confirmed' ORDER BY id OFFSET %d"
                 " LIMIT 1",
                 i);
        regs[i] = testdb_scalar(st, sql);
    }
    cr_assert(regs[0] < regs[1] && regs[1] < regs[2], "three confirmed sales");
    snprintf(sql, sizeof(sql), "UPDATE registrations SET status = 'cancelled' WHERE id = %lld",
             regs[1]);
    testdb_exec(st, sql);
    snprintf(payload, sizeof(payload),
             "{\"registration_ids\":[%lld,%lld,%lld],\"then_email\":true,"
             "\"request_ids\":[\"r-0\",\"r-1\",null]}",
             regs[0], regs[1], regs[2]);
    for (int run = 0; run < 2; run++) { /* the second: a rerun, as after a lost completion */
        cr_assert_eq(usher_enqueue(st,
                                   &(usher_enqueue_opts){
                                       .queue = "pdf", .kind = "pdf.ticket", .payload = payload },
                                   &out),
                     USHER_OK, "%s", usher_store_errstr(st));
        r = claim_and_run(NULL);
        cr_assert_eq(r.outcome, USHER_OUTCOME_OK, "run %d: %s", run, r.error);
        testdb_exec(st, "DELETE FROM usher_jobs WHERE kind = 'pdf.ticket'");
        for (int i = 0; i < 3; i += 2) {
            cr_assert_eq(count_for("SELECT count(*) FROM documents WHERE kind = 'ticket'"
                                   " AND registration_id = ",
                                   regs[i], ""),
                         1, "run %d, sale %d", run, i);
            cr_assert_eq(count_for("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
                                   " AND (payload->>'registration_id')::bigint = ",
                                   regs[i], ""),
                         1, "run %d, sale %d: one email", run, i);
        }
        cr_assert_eq(
            count_for("SELECT count(*) FROM documents WHERE registration_id = ", regs[1], ""), 0,
            "the cancelled sale has no ticket");
        cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"),
                     2);
        /* Each email carries its own sale's request id (issue 16), none for none. */
        cr_assert_eq(
            count_for("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
                      " AND request_id = 'r-0' AND (payload->>'registration_id')::bigint = ",
                      regs[0], ""),
            1);
        cr_assert_eq(
            count_for("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
                      " AND request_id IS NULL AND (payload->>'registration_id')::bigint = ",
                      regs[2], ""),
            1);
    }

    /* Both forms at once, or an id that is no whole number: refused for good, nothing drawn. */
    for (int bad = 0; bad < 2; bad++) {
        snprintf(payload, sizeof(payload),
                 bad ? "{\"registration_ids\":[%lld,\"x\"]}"
                     : "{\"registration_ids\":[%lld],\"registration_id\":1}",
                 regs[0]);
        cr_assert_eq(usher_enqueue(st,
                                   &(usher_enqueue_opts){
                                       .queue = "pdf", .kind = "pdf.ticket", .payload = payload },
                                   &out),
                     USHER_OK, "%s", usher_store_errstr(st));
        r = claim_and_run(NULL);
        cr_assert_eq(r.outcome, USHER_OUTCOME_PERMANENT, "%s", payload);
        cr_assert_not_null(strstr(r.error, "registration_id"), "%s", r.error);
        testdb_exec(st, "DELETE FROM usher_jobs WHERE kind = 'pdf.ticket'");
    }
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"), 2);
}
