/*
 * Payload validation in the real usher-worker: a job whose payload its
 * kind's schema (schemas/jobs/) refuses never reaches the handler; it is
 * dead after one attempt, however many it was allowed, with the reason in
 * its errors. A valid job of the same kind beside it completes. Both paths
 * of the child are covered: one job at a time (pdf.ticket, email.send) and
 * batches (index.document).
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "enqueue.h"
#include "seed.h"
#include "testdb.h"
#include "testproc.h"

__attribute__((constructor)) static void use_chain_config(void)
{
    setenv("USHER_CONFIG", CHAIN_TEST_CONF, 1);
}

TESTDB_SUITE(schemas, "usher_test_schemas");

static char workdir[64];

static pid_t start_worker(void)
{
    return testproc_start_worker(USHER_WORKER_PATH, CHAIN_TEST_CONF, "tests", cfg.database_url,
                                 "schemas", workdir);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static bool jobs_done(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM usher_jobs"
                             " WHERE state IN ('available', 'running')") == 0;
}

static int64_t enqueue(const char *queue, const char *kind, const char *payload)
{
    usher_enqueued out;

    cr_assert_eq(
        usher_enqueue(st,
                      &(usher_enqueue_opts){
                          .queue = queue, .kind = kind, .payload = payload, .max_attempts = 5 },
                      &out),
        USHER_OK, "%s", usher_store_errstr(st));
    return out.id;
}

/* The job's state, attempts and error list, as "dead 1 [...]". */
static void job_fate(int64_t id, char *out, size_t len)
{
    char idtext[24];
    const char *params[] = { idtext };
    PGresult *res = NULL;

    snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
    cr_assert_eq(usher_store_exec(st,
                                  "SELECT state || ' ' || attempt || ' ' ||"
                                  " jsonb_path_query_array(errors, '$[*].error')::text"
                                  " FROM usher_jobs WHERE id = $1",
                                  1, params, &res),
                 USHER_OK, "%s", usher_store_errstr(st));
    snprintf(out, len, "%s", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "gone");
    PQclear(res);
}

/* How many ticket documents the registration has. */
static long long ticket_count(int64_t registration)
{
    char idtext[24];
    const char *params[] = { idtext };
    PGresult *res = NULL;
    long long n;

    snprintf(idtext, sizeof(idtext), "%lld", (long long)registration);
    cr_assert_eq(usher_store_exec(st,
                                  "SELECT count(*) FROM documents"
                                  " WHERE kind = 'ticket' AND registration_id = $1",
                                  1, params, &res),
                 USHER_OK, "%s", usher_store_errstr(st));
    n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

Test(schemas, invalid_payloads_are_dead_after_one_attempt_and_valid_ones_complete, .timeout = 300)
{
    usher_seed_result seed;
    char payload[96], fate[1024];
    int64_t registration, valid, bad_ticket, bad_mail, bad_index, valid_index;
    pid_t pid;

    cr_assert_eq(usher_seed_demo(st, 2, &seed), USHER_OK, "%s", usher_store_errstr(st));
    registration = (int64_t)testdb_scalar(st, "SELECT max(id) FROM registrations"
                                              " WHERE status = 'confirmed'");
    snprintf(payload, sizeof(payload), "{\"registration_id\":%lld}", (long long)registration);
    bad_ticket = enqueue("pdf", "pdf.ticket", "{\"registration_id\":\"abc\"}");
    valid = enqueue("pdf", "pdf.ticket", payload);
    bad_mail = enqueue("email", "email.send", "{\"to\":\"ada@example.org\",\"template\":\"x\"}");
    bad_index = enqueue("index", "index.document", "{\"type\":\"room\",\"id\":1}");
    snprintf(payload, sizeof(payload), "{\"type\":\"event\",\"id\":%lld}",
             (long long)seed.event_id);
    valid_index = enqueue("index", "index.document", payload);

    pid = start_worker();
    cr_assert(testproc_wait_for(jobs_done, NULL, 120000), "the jobs did not finish (see %s)",
              workdir);
    testproc_stop_cleanly(pid);

    job_fate(bad_ticket, fate, sizeof(fate));
    cr_assert_str_eq(fate, "dead 1 [\"invalid payload: payload.registration_id:"
                           " expected integer, got string\"]");
    job_fate(bad_mail, fate, sizeof(fate));
    cr_assert_str_eq(fate, "dead 1 [\"invalid payload: payload: matches none of oneOf:"
                           " (1) payload: missing required property \\\"registration_id\\\";"
                           " (2) payload: missing required property \\\"vars\\\"\"]");
    job_fate(bad_index, fate, sizeof(fate));
    cr_assert_str_eq(fate, "dead 1 [\"invalid payload: payload.type: must be one of"
                           " \\\"event\\\", \\\"session\\\", \\\"attendee\\\" (enum)\"]");
    job_fate(valid_index, fate, sizeof(fate));
    cr_assert_str_eq(fate, "gone", "the valid index job did not complete: %s", fate);
    job_fate(valid, fate, sizeof(fate));
    cr_assert_str_eq(fate, "gone", "the valid ticket job did not complete: %s", fate);
    cr_assert_eq(ticket_count(registration), 1, "no ticket was recorded");
    nftw(workdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
