/*
 * Faults on purpose, then counts.
 * - An SMTP relay that is down while the confirmation emails are due: every
 *   email job spends its attempts and dies; the relay comes back, the
 *   dead-letter queue is replayed, and every attendee then has exactly one
 *   email, none lost and none twice.
 * - usher-api killed with SIGKILL in the middle of a registration storm and
 *   started again: clients retrying with their Idempotency-Key end with
 *   exactly one registration, one seat and one ticket job each.
 * - The pool's children killed with SIGKILL while they draw the tickets of
 *   jobs that several sales share (registration_ids, 0038), twice: every
 *   attendee ends with one ticket and exactly one email.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "enqueue.h"
#include "seed.h"
#include "smtpserver.h"
#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"

__attribute__((constructor)) static void use_chaos_config(void)
{
    setenv("USHER_CONFIG", CHAOS_TEST_CONF, 1);
}

TESTDB_SUITE(chaos, "usher_test_chaos");

#define ATTENDEES 30

static smtpserver relay;
static pid_t worker;
static char workdir[64];

static testapi api;

static void stop_all(void)
{
    testapi_stop(&api);
    if (worker > 0)
        testproc_stop_cleanly(worker);
    worker = 0;
    smtpserver_stop(&relay);
}

static long long count_of(const char *sql)
{
    return testdb_scalar(st, sql);
}

static bool all_dead(void *arg)
{
    (void)arg;
    return count_of("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
                    " AND state = 'dead'") == ATTENDEES;
}

static bool queue_empty(void *arg)
{
    (void)arg;
    return count_of("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'") == 0;
}

/* How many stored messages are addressed to attendee i (attendeeI@example.org). */
static int mails_to(int i)
{
    char needle[64];
    int n = 0;

    snprintf(needle, sizeof(needle), "attendee%d@example.org>", i);
    for (int m = 1; m <= smtpserver_count(&relay); m++) {
        char *text = smtpserver_message(&relay, m);
        char *to = text != NULL ? strstr(text, "\nTo: ") : NULL;
        char *eol = to != NULL ? strchr(to + 1, '\n') : NULL;

        /* A long encoded name folds the header: its lines go on with a blank. */
        while (eol != NULL && (eol[1] == ' ' || eol[1] == '\t'))
            eol = strchr(eol + 1, '\n');
        if (eol != NULL)
            *eol = '\0';
        n += to != NULL && strstr(to, needle) != NULL;
        free(text);
    }
    return n;
}

/* One confirmation email job per registration, through the engine's enqueue. */
static void enqueue_confirmations(void)
{
    long long first = count_of("SELECT min(id) FROM registrations");

    for (long long id = first; id < first + ATTENDEES; id++) {
        char payload[128];
        usher_enqueued out;

        snprintf(payload, sizeof(payload),
                 "{\"registration_id\":%lld,\"template\":\"registration_confirmation\"}", id);
        cr_assert_eq(usher_enqueue(st,
                                   &(usher_enqueue_opts){
                                       .queue = "email", .kind = "email.send", .payload = payload },
                                   &out),
                     USHER_OK, "%s", usher_store_errstr(st));
    }
}

Test(chaos, a_relay_outage_then_dead_letter_replay_mails_each_attendee_once, .fini = stop_all,
     .timeout = 600)
{
    char err[256], url[64];
    usher_seed_result seed;
    size_t replayed = 0;

    cr_assert(smtpserver_start(&relay, false, NULL, err, sizeof(err)), "%s", err);
    smtpserver_pause(&relay); /* the relay is down: its port refuses connections */
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", relay.port);
    cr_assert_eq(setenv("USHER_SMTP_URL", url, 1), 0);
    cr_assert_eq(usher_seed_demo(st, ATTENDEES, &seed), USHER_OK, "%s", usher_store_errstr(st));
    enqueue_confirmations();
    worker = testproc_start_worker(USHER_WORKER_PATH, CHAOS_TEST_CONF, "chaos", cfg.database_url,
                                   "chaos", workdir);
    cr_assert(testproc_wait_for(all_dead, NULL, 120000), "%lld of %d email jobs dead (see %s)",
              count_of("SELECT count(*) FROM usher_jobs WHERE state = 'dead'"), ATTENDEES, workdir);
    cr_assert_eq(smtpserver_count(&relay), 0, "a message got through a relay that was down");
    cr_assert_eq(count_of("SELECT count(*) FROM usher_jobs WHERE state = 'dead'"
                          " AND jsonb_array_length(errors) = 2"),
                 ATTENDEES, "each dead job keeps both attempts' errors");

    cr_assert(smtpserver_resume(&relay, err, sizeof(err)), "%s", err);
    cr_assert_eq(usher_dead_retry(st, &(usher_job_filter){ .queue = "email" }, &replayed), USHER_OK,
                 "%s", usher_store_errstr(st));
    cr_assert_eq(replayed, ATTENDEES);
    cr_assert(testproc_wait_for(queue_empty, NULL, 120000), "the replayed emails did not finish");
    testproc_stop_cleanly(worker);
    worker = 0;
    cr_assert_eq(smtpserver_count(&relay), ATTENDEES);
    for (int i = 1; i <= ATTENDEES; i++)
        cr_assert_eq(mails_to(i), 1, "attendee%d got %d mails", i, mails_to(i));
}

#define CLIENTS    4
#define PER_CLIENT 50
#define STORM      (CLIENTS * PER_CLIENT)

static atomic_int api_port; /* the running usher-api's; 0 while it is down */
static atomic_int created;
static long long storm_event, storm_ticket_type;

typedef struct storm_client {
    int first, retries;
    char failure[256];
} storm_client;

/* One registration with its key, retried through refusals, cuts and 503s; false on failure. */
static bool register_with_key(storm_client *c, int i)
{
    char path[96], body[200], header[64];
    long long deadline = testdb_now_ms() + 180000;

    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", storm_event);
    snprintf(body, sizeof(body),
             "{\"ticket_type_id\":%lld,\"name\":\"Storm %d\",\"email\":\"s%d@example.org\"}",
             storm_ticket_type, i, i);
    snprintf(header, sizeof(header), "Idempotency-Key: kill-%d", i);
    while (testdb_now_ms() < deadline) {
        testapi now = { .port = atomic_load(&api_port) };
        testhttp_resp resp;
        long status = 0;

        if (now.port != 0)
            status =
                testhttp(&now, &(testhttp_req){ "POST", path, NULL, body, header, NULL }, &resp);
        else
            resp = (testhttp_resp){ 0 };
        testhttp_resp_free(&resp);
        if (status == 201)
            return true;
        if (status != 0 && status != 503) {
            snprintf(c->failure, sizeof(c->failure), "registration %d answered %ld", i, status);
            return false;
        }
        c->retries++;
        usleep(5000); /* a client's retry pause, so a restart is not met by a busy loop */
    }
    snprintf(c->failure, sizeof(c->failure), "registration %d: no 201 in 180 s", i);
    return false;
}

static void *run_storm_client(void *arg)
{
    storm_client *c = arg;

    for (int k = 0; k < PER_CLIENT && register_with_key(c, c->first + k); k++)
        atomic_fetch_add(&created, 1);
    return NULL;
}

static bool third_created(void *arg)
{
    (void)arg;
    return atomic_load(&created) >= STORM / 3;
}

Test(chaos, usher_api_killed_mid_storm_loses_and_doubles_no_registration, .fini = stop_all,
     .timeout = 600)
{
    static storm_client clients[CLIENTS];
    pthread_t threads[CLIENTS];
    char sql[256];
    int retries = 0;
    testdb_event e = testdb_event_new(st, testdb_organizer(st, "K"), "Killed", 1, STORM);

    storm_event = e.id;
    storm_ticket_type = e.ticket_type;
    setenv("USHER_API_RATE_PER_MINUTE", "0", 1);
    testapi_start(&api, USHER_API_PATH, cfg.database_url, 2);
    atomic_store(&api_port, api.port);
    atomic_store(&created, 0);
    for (int c = 0; c < CLIENTS; c++) {
        clients[c] = (storm_client){ .first = c * PER_CLIENT };
        cr_assert_eq(pthread_create(&threads[c], NULL, run_storm_client, &clients[c]), 0);
    }
    cr_assert(testproc_wait_for(third_created, NULL, 120000), "the storm did not start");
    atomic_store(&api_port, 0);
    testproc_kill(api.pid); /* SIGKILL: no drain, replies in flight are lost */
    api.pid = 0;
    testapi_start(&api, USHER_API_PATH, cfg.database_url, 2);
    atomic_store(&api_port, api.port);
    for (int c = 0; c < CLIENTS; c++) {
        cr_assert_eq(pthread_join(threads[c], NULL), 0);
        cr_assert_eq(clients[c].failure[0], '\0', "%s", clients[c].failure);
        retries += clients[c].retries;
    }
    fprintf(stderr, "%d registrations through a SIGKILL of usher-api, %d retries\n", STORM,
            retries);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM registrations WHERE event_id = %lld",
             storm_event);
    cr_assert_eq(count_of(sql), STORM, "registrations lost or doubled");
    snprintf(sql, sizeof(sql), "SELECT sum(sold) FROM ticket_stripes WHERE ticket_type_id = %lld",
             storm_ticket_type);
    cr_assert_eq(count_of(sql), STORM, "seats counted twice or not at all");
    cr_assert_eq(
        count_of("SELECT count(DISTINCT key) FROM api_idempotency WHERE key LIKE 'kill-%'"), STORM);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usher_jobs j JOIN registrations r"
             " ON r.id = (j.payload->>'registration_id')::bigint"
             " WHERE j.kind = 'pdf.ticket' AND r.event_id = %lld",
             storm_event);
    cr_assert_eq(count_of(sql), STORM, "a registration without its ticket job, or with two");
}

#define SHARED_JOBS      3
#define SHARED_TICKETS   100 /* a job's sales: each job runs for a while, to be killed in */
#define SHARED_ATTENDEES (SHARED_JOBS * SHARED_TICKETS)

static bool tickets_reached(void *arg)
{
    return count_of("SELECT count(*) FROM documents WHERE kind = 'ticket'") >= *(long long *)arg;
}

static bool tickets_and_mails_done(void *arg)
{
    (void)arg;
    return count_of("SELECT count(*) FROM usher_jobs WHERE kind IN ('pdf.ticket', 'email.send')") ==
               0 &&
           smtpserver_count(&relay) >= SHARED_ATTENDEES;
}

Test(chaos, children_killed_mid_shared_ticket_jobs_mail_each_attendee_once, .fini = stop_all,
     .timeout = 600)
{
    char err[256], url[64], log[128];
    usher_seed_result seed;
    long long first, killed_at[2] = { SHARED_TICKETS / 4, SHARED_ATTENDEES / 2 };

    cr_assert(smtpserver_start(&relay, false, NULL, err, sizeof(err)), "%s", err);
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", relay.port);
    cr_assert_eq(setenv("USHER_SMTP_URL", url, 1), 0);
    cr_assert_eq(usher_seed_demo(st, SHARED_ATTENDEES, &seed), USHER_OK, "%s",
                 usher_store_errstr(st));
    first = testdb_scalarf(st, "SELECT min(id) FROM registrations WHERE event_id = %lld",
                           (long long)seed.event_id);
    for (int j = 0; j < SHARED_JOBS; j++) {
        char payload[SHARED_TICKETS * 12 + 64];
        size_t w = (size_t)snprintf(payload, sizeof(payload),
                                    "{\"then_email\":true,"
                                    "\"registration_ids\":[");
        usher_enqueued out;

        for (int i = 0; i < SHARED_TICKETS; i++)
            w += (size_t)snprintf(payload + w, sizeof(payload) - w, "%s%lld", i > 0 ? "," : "",
                                  first + j * SHARED_TICKETS + i);
        snprintf(payload + w, sizeof(payload) - w, "]}");
        cr_assert_eq(usher_enqueue(st,
                                   &(usher_enqueue_opts){ .queue = "pdf",
                                                          .kind = "pdf.ticket",
                                                          .payload = payload,
                                                          .max_attempts = 5 },
                                   &out),
                     USHER_OK, "%s", usher_store_errstr(st));
    }
    worker = testproc_start_worker(USHER_WORKER_PATH, CHAOS_TEST_CONF, "chaos", cfg.database_url,
                                   "chaos", workdir);
    for (int k = 0; k < 2; k++) {
        pid_t kids[16];
        size_t n;

        cr_assert(testproc_wait_for(tickets_reached, &killed_at[k], 120000),
                  "%lld tickets drawn of %lld", count_of("SELECT count(*) FROM documents"),
                  killed_at[k]);
        n = testproc_pool_children(worker, kids, 16);
        cr_assert_gt(n, 0);
        for (size_t i = 0; i < n; i++)
            kill(kids[i], SIGKILL);
    }
    cr_assert(testproc_wait_for(tickets_and_mails_done, NULL, 300000),
              "%lld ticket or email jobs left, %d mails (see %s)",
              count_of("SELECT count(*) FROM usher_jobs"), smtpserver_count(&relay), workdir);
    testproc_stop_cleanly(worker);
    worker = 0;
    cr_assert_eq(count_of("SELECT count(*) FROM usher_jobs WHERE state = 'dead'"), 0);
    snprintf(log, sizeof(log), "%s/worker.log", workdir);
    cr_assert_gt(testproc_log_lines(log, "kind=pdf.ticket queue=pdf attempt=1 outcome=retry"), 0,
                 "no ticket job was cut off by a kill (see %s)", log);
    cr_assert_eq(count_of("SELECT count(DISTINCT registration_id) FROM documents"
                          " WHERE kind = 'ticket'"),
                 SHARED_ATTENDEES);
    cr_assert_eq(smtpserver_count(&relay), SHARED_ATTENDEES);
    for (int i = 1; i <= SHARED_ATTENDEES; i++)
        cr_assert_eq(mails_to(i), 1, "attendee%d got %d mails", i, mails_to(i));
}
