/*
 * [pool.NAME] smtp_rate through a real usher-worker: 20 email.send jobs
 * waiting for a pool of 4 children at smtp_rate = 10 reach the relay
 * (tests/support/smtp_test_server.py, STARTTLS and AUTH required, so the
 * [smtp] starttls/username/password/ca_file wiring is exercised too) no
 * faster than one per 100 ms: the first and last arrivals lie at least
 * 19 intervals apart, less a margin for the jitter of one SMTP session.
 * Only a lower bound is asserted; a loaded machine may take longer.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "enqueue.h"
#include "smtpserver.h"
#include "testdb.h"
#include "testproc.h"

#define MESSAGES         20
#define RATE             10 /* smtp_rate in smtp-rate-test.conf */
#define JITTER_MARGIN_MS 150

__attribute__((constructor)) static void use_rate_config(void)
{
    setenv("USHER_CONFIG", SMTP_RATE_TEST_CONF, 1);
}

TESTDB_SUITE(smtp_rate, "usher_test_smtp_rate");

static smtpserver server;

static void enqueue_mail(int n)
{
    char payload[512];
    usher_enqueued out;

    snprintf(payload, sizeof payload,
             "{\"template\":\"registration_confirmation\",\"to\":\"rate-%d@example.com\","
             "\"to_name\":\"Rate %d\",\"vars\":{\"event_name\":\"Rate Conf\",\"attendee_name\":"
             "\"Rate %d\",\"ticket_type\":\"General\",\"starts_at\":\"2026-12-01 09:00\","
             "\"venue\":\"Hall 1\",\"ticket_code\":\"CODE-%d\"}}",
             n, n, n, n);
    cr_assert_eq(
        usher_enqueue(
            st, &(usher_enqueue_opts){ .queue = "email", .kind = "email.send", .payload = payload },
            &out),
        USHER_OK, "%s", usher_store_errstr(st));
}

static bool all_arrived(void *arg)
{
    (void)arg;
    return smtpserver_count(&server) >= MESSAGES;
}

static long long arrival_ms(int n)
{
    char path[160];
    struct stat sb;

    snprintf(path, sizeof path, "%s/%d.eml", server.out, n);
    cr_assert_eq(stat(path, &sb), 0, "%s", path);
    return (long long)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
}

Test(smtp_rate, twenty_messages_at_ten_per_second_take_nineteen_intervals, .timeout = 180)
{
    const char *argv[] = { USHER_WORKER_PATH, "--config", SMTP_RATE_TEST_CONF,
                           "--pool",          "mail",     NULL };
    char err[256] = "";
    long long span;
    int status;
    pid_t pid;

    cr_assert(smtpserver_start(&server, true, err, sizeof err), "%s", err);
    for (int i = 1; i <= MESSAGES; i++)
        enqueue_mail(i);
    cr_assert_eq(setenv("USHER_DATABASE_URL", cfg.database_url, 1), 0);
    cr_assert_eq(setenv("USHER_SMTP_URL", server.url, 1), 0);
    cr_assert_eq(setenv("USHER_SMTP_USERNAME", SMTPSERVER_USER, 1), 0);
    cr_assert_eq(setenv("USHER_SMTP_PASSWORD", SMTPSERVER_PASSWORD, 1), 0);
    cr_assert_eq(setenv("USHER_SMTP_CA_FILE", server.cert, 1), 0);
    pid = testproc_start(argv, "/tmp/usher-test-smtp-rate-worker.log");
    cr_assert(testproc_wait_for(all_arrived, NULL, 90000), "%d of %d messages arrived",
              smtpserver_count(&server), MESSAGES);
    kill(pid, SIGTERM);
    cr_assert(testproc_wait(pid, 60000, &status), "usher-worker did not stop");
    span = arrival_ms(MESSAGES) - arrival_ms(1);
    fprintf(stderr, "smtp_rate=%d: %d messages arrived over %lld ms\n", RATE, MESSAGES, span);
    cr_assert_geq(span, (MESSAGES - 1) * 1000 / RATE - JITTER_MARGIN_MS,
                  "%d messages at smtp_rate=%d arrived within %lld ms", MESSAGES, RATE, span);
    cr_assert_eq(smtpserver_count(&server), MESSAGES, "a message was sent twice");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0, "jobs left undone");
    smtpserver_stop(&server);
}
