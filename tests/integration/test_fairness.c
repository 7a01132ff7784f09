/*
 * Per-organizer fairness and deadlines, end to end (issue 15, "Beyond every
 * queue", items 1 and 3): a real usher-api takes the requests, real
 * usher-worker processes fan out (pool fanout), render tickets (pool pdf)
 * and mail (pool mail, one child, started last so that its log's order is
 * the order it claimed in). Organizer A's event of many attendees is
 * cancelled: a backlog of cancellation emails at the confirmations'
 * priority. Then organizer B's attendees register over HTTP. The test reads
 * each job's partition key before the mail pool starts, and afterwards the
 * mail pool's job log and the SMTP sink.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "enqueue.h"
#include "promtext.h"
#include "testdb.h"
#include "testhttp.h"
#include "testmail.h"
#include "testproc.h"
#include "token.h"

__attribute__((constructor)) static void use_test_config(void)
{
    setenv("USHER_CONFIG", FAIRNESS_TEST_CONF, 1);
}

TESTDB_SUITE(fairness, "usher_test_fairness");

#define DEADLINE_MS  300000
#define METRICS_PORT 58413 /* fairness-deadline-test.conf's [pool.mail] metrics_port */
#define BACKLOG      2000
#define SMALL        500
#define SALES        20

static testapi server;
static pid_t fanout_worker, pdf_worker, mail_worker;
static char fanout_dir[64], pdf_dir[64], mail_dir[64];
static char run_id[32];

typedef struct organizer {
    long long id, event, ticket_type;
    char token[USHER_TOKEN_MAX];
} organizer;

#define scalar(...) testdb_scalarf(st, __VA_ARGS__)

/* An organizer with an event a day away (or starts_in, an SQL interval) and a ticket type. */
static void make_organizer(organizer *o, const char *name, const char *starts_in)
{
    int64_t token_id;

    o->id = scalar("INSERT INTO organizers (name) VALUES ('%s') RETURNING id", name);
    o->event = scalar("INSERT INTO events (organizer_id, name, venue, starts_at, ends_at)"
                      " VALUES (%lld, '%s event', 'Hall', now() + interval '%s',"
                      " now() + interval '2 days') RETURNING id",
                      o->id, name, starts_in);
    o->ticket_type = scalar("INSERT INTO ticket_types (event_id, name, capacity)"
                            " VALUES (%lld, 'GA', 10000) RETURNING id",
                            o->event);
    cr_assert_eq(
        usher_token_create(st, USHER_ROLE_ORGANIZER, o->id, 0, "test", o->token, &token_id),
        USHER_OK, "%s", usher_store_errstr(st));
}

/* n attendees of o's event, attendee i at PREFIXi@example.org, inserted directly. */
static void add_attendees(const organizer *o, const char *prefix, int n)
{
    char sql[512];

    snprintf(sql, sizeof(sql),
             "INSERT INTO registrations (event_id, ticket_type_id, name, email)"
             " SELECT %lld, %lld, 'Guest ' || g, '%s' || g || '@example.org'"
             " FROM generate_series(0, %d) g ORDER BY g",
             o->event, o->ticket_type, prefix, n - 1);
    testdb_exec(st, sql);
}

static void start(void)
{
    snprintf(run_id, sizeof(run_id), "%lx%x", (unsigned long)time(NULL), (unsigned)getpid());
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 2);
}

static void stop(pid_t *pid)
{
    if (*pid > 0)
        testproc_stop_cleanly(*pid);
    *pid = 0;
}

static void stop_all(void)
{
    testapi_stop(&server);
    stop(&fanout_worker);
    stop(&pdf_worker);
    stop(&mail_worker);
}

static long call(const char *method, const char *path, const char *tok, const char *body,
                 testhttp_resp *out)
{
    return testhttp(&server, &(testhttp_req){ method, path, tok, body, NULL, NULL }, out);
}

typedef struct waiting {
    const char *sql;
    long long want;
} waiting;

static bool reached(void *arg)
{
    const waiting *w = arg;

    return testdb_scalar(st, w->sql) == w->want;
}

/* Waits until sql counts want. */
static void wait_count(const char *sql, long long want, const char *what)
{
    waiting w = { sql, want };

    cr_assert(testproc_wait_for(reached, &w, DEADLINE_MS), "%s: %lld of %lld", what,
              testdb_scalar(st, sql), want);
}

/*
 * A cancels its event over HTTP; the fan-out (pool fanout, started here)
 * leaves one email.send job per attendee, n in all, waiting for the mail
 * pool.
 */
static void cancel_event(const organizer *a, int n)
{
    char path[96];
    testhttp_resp resp;

    fanout_worker = testproc_start_worker(USHER_WORKER_PATH, FAIRNESS_TEST_CONF, "fanout",
                                          cfg.database_url, "fair-fanout", fanout_dir);
    snprintf(path, sizeof(path), "/v1/events/%lld/cancel", a->event);
    call("POST", path, a->token, "{}", &resp);
    cr_assert(resp.status == 200 || resp.status == 202, "%ld %s", resp.status, resp.body);
    testhttp_resp_free(&resp);
    wait_count("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
               " AND payload ->> 'template' = 'event_cancelled' AND state = 'available'",
               n, "cancellation emails");
    stop(&fanout_worker);
}

/*
 * n attendees of b's event register over HTTP (PREFIXi@example.org); the
 * ticket pool (with config) renders their tickets and leaves their n
 * confirmation emails waiting.
 */
static void register_over_http(const organizer *b, const char *prefix, int n, const char *config)
{
    char path[96], body[256];

    pdf_worker = testproc_start_worker(USHER_WORKER_PATH, config, "pdf", cfg.database_url,
                                       "fair-pdf", pdf_dir);
    snprintf(path, sizeof(path), "/v1/events/%lld/registrations", b->event);
    for (int i = 0; i < n; i++) {
        testhttp_resp resp;

        snprintf(body, sizeof(body),
                 "{\"ticket_type_id\":%lld,\"name\":\"Buyer %d\",\"email\":\"%s%d@example.org\"}",
                 b->ticket_type, i, prefix, i);
        call("POST", path, NULL, body, &resp);
        cr_assert_eq(resp.status, 201, "%ld %s", resp.status, resp.body);
        testhttp_resp_free(&resp);
    }
    wait_count("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
               " AND payload ->> 'template' = 'registration_confirmation'"
               " AND state = 'available'",
               n, "confirmation emails");
    stop(&pdf_worker);
}

/* The waiting email.send jobs of template, ids ascending, into ids (n of them). */
static void email_ids(const char *template, long long *ids, int n)
{
    char sql[256];
    PGresult *res;

    snprintf(sql, sizeof(sql),
             "SELECT id FROM usher_jobs WHERE kind = 'email.send' AND state = 'available'"
             " AND payload ->> 'template' = '%s' ORDER BY id",
             template);
    cr_assert_eq(usher_store_exec(st, sql, 0, NULL, &res), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(PQntuples(res), n);
    for (int i = 0; i < n; i++)
        ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    PQclear(res);
}

/*
 * The email.send job ids of the mail pool's log, in the order it finished
 * them (one child: the order it claimed them in); their number.
 */
static int finished_order(long long *out, int max)
{
    char path[128], line[1024];
    FILE *f;
    int n = 0;

    snprintf(path, sizeof(path), "%s/worker.log", mail_dir);
    f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *job = strstr(line, "job=");

        if (job == NULL || strstr(line, "kind=email.send") == NULL ||
            strstr(line, "outcome=ok") == NULL)
            continue;
        cr_assert_lt(n, max, "more finished emails than jobs");
        out[n++] = strtoll(job + 4, NULL, 10);
    }
    fclose(f);
    return n;
}

static bool member(long long id, const long long *set, int n)
{
    for (int i = 0; i < n; i++) {
        if (set[i] == id)
            return true;
    }
    return false;
}

/* Every attendee i < n of prefix got exactly one mail; want mails in all. */
static void assert_one_each(const char *prefix, int n)
{
    int *counts = calloc((size_t)n, sizeof(int)), total = testmail_count(prefix, counts, n);

    cr_assert_not_null(counts);
    for (int i = 0; i < n; i++)
        cr_assert_eq(counts[i], 1, "%s%d got %d mails", prefix, i, counts[i]);
    cr_assert_eq(total, n, "%s: %d mails", prefix, total);
    free(counts);
}

/* The mail pool's /metrics, parsed strictly (fails the test otherwise). */
static promtext *scrape(void)
{
    testapi where = { .port = METRICS_PORT };
    testhttp_resp resp;
    char why[256];
    promtext *p;

    cr_assert_eq(
        testhttp(&where, &(testhttp_req){ "GET", "/metrics", NULL, NULL, NULL, NULL }, &resp), 200);
    p = promtext_parse(resp.body, why, sizeof(why));
    cr_assert_not_null(p, "%s", why);
    testhttp_resp_free(&resp);
    return p;
}

static void start_mail(const char *config)
{
    mail_worker = testproc_start_worker(USHER_WORKER_PATH, config, "mail", cfg.database_url,
                                        "fair-mail", mail_dir);
}

static void wait_emails_done(void)
{
    wait_count("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
               " AND state IN ('available', 'running')",
               0, "emails left");
}

/*
 * Starts the mail pool with config and waits for it to send every email:
 * nbulk to the attendees of prefix_bulk and SALES to those of prefix_sales,
 * one each. Fills order with the email jobs in the order the pool ran them.
 */
static void mail_everyone(const char *config, const char *prefix_bulk, int nbulk,
                          const char *prefix_sales, long long *order)
{
    start_mail(config);
    wait_emails_done();
    assert_one_each(prefix_bulk, nbulk);
    assert_one_each(prefix_sales, SALES);
    cr_assert_eq(finished_order(order, nbulk + SALES), nbulk + SALES);
}

Test(fairness, an_organizers_backlog_does_not_hold_back_anothers_confirmations, .init = start,
     .fini = stop_all, .timeout = 900)
{
    organizer a, b;
    char prefix_a[64], prefix_b[64];
    long long b_ids[SALES], *order = calloc(BACKLOG + SALES, sizeof(long long));
    int last_b = -1, b_seen = 0;

    cr_assert_not_null(order);
    make_organizer(&a, "Org A", "1 day");
    make_organizer(&b, "Org B", "1 day");
    snprintf(prefix_a, sizeof(prefix_a), "fa-%s-", run_id);
    snprintf(prefix_b, sizeof(prefix_b), "fb-%s-", run_id);
    add_attendees(&a, prefix_a, BACKLOG);
    cancel_event(&a, BACKLOG);
    register_over_http(&b, prefix_b, SALES, FAIRNESS_TEST_CONF);

    /* Each job names its organizer: the SQL fan-out's, the API's and the chain's. */
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
                        " AND partition_key = 'org:%lld'",
                        a.id),
                 BACKLOG);
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
                        " AND partition_key = 'org:%lld'",
                        b.id),
                 SALES);
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'index.document'"
                        " AND partition_key = 'org:%lld'",
                        a.id),
                 BACKLOG, "the cancellations' index jobs");
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind IN ('index.document',"
                        " 'analytics.rollup') AND partition_key = 'org:%lld'",
                        b.id),
                 2 * SALES, "the registrations' index and analytics jobs");
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE partition_key = ''"), 0);
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE deadline IS NOT NULL"), 0);
    email_ids("registration_confirmation", b_ids, SALES);

    mail_everyone(FAIRNESS_TEST_CONF, prefix_a, BACKLOG, prefix_b, order);
    for (int i = 0; i < BACKLOG + SALES; i++) {
        if (member(order[i], b_ids, SALES)) {
            b_seen++;
            last_b = i;
        }
    }
    cr_assert_eq(b_seen, SALES);
    /*
     * Claimed in turn, B's 20 are through after about as many of A's (FIFO:
     * after all 2,000). Batches of 10 split 5 and 5, and the next claim goes
     * out while a batch runs: allow 5 batches of A's.
     */
    cr_log_info("B's last confirmation finished after %d of A's %d emails", last_b + 1 - SALES,
                BACKLOG);
    cr_assert_leq(last_b + 1 - SALES, SALES + 50, "B's last confirmation after %d of A's emails",
                  last_b + 1 - SALES);
    free(order);
}

Test(fairness, confirmations_due_soon_are_claimed_before_an_older_backlog, .init = start,
     .fini = stop_all, .timeout = 900)
{
    organizer a, same;
    char prefix_a[64], prefix_s[64];
    long long ids[SALES], order[SMALL + SALES];
    promtext *p;

    make_organizer(&a, "Org A", "1 day");
    snprintf(prefix_a, sizeof(prefix_a), "da-%s-", run_id);
    snprintf(prefix_s, sizeof(prefix_s), "ds-%s-", run_id);
    add_attendees(&a, prefix_a, SMALL);
    cancel_event(&a, SMALL);
    /* A second event of the same organizer: one partition, so only deadlines reorder. */
    same = a;
    same.event = scalar("INSERT INTO events (organizer_id, name, starts_at, ends_at)"
                        " VALUES (%lld, 'Later', now() + interval '1 day', now() + interval"
                        " '2 days') RETURNING id",
                        a.id);
    same.ticket_type = scalar("INSERT INTO ticket_types (event_id, name, capacity)"
                              " VALUES (%lld, 'GA', 100) RETURNING id",
                              same.event);
    register_over_http(&same, prefix_s, SALES, FAIRNESS_DEADLINE_TEST_CONF);
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
                        " AND payload ->> 'template' = 'registration_confirmation'"
                        " AND partition_key = 'org:%lld' AND deadline BETWEEN now()"
                        " AND now() + interval '120 s'",
                        a.id),
                 SALES, "confirmations due 120 s after their sale");
    email_ids("registration_confirmation", ids, SALES);

    mail_everyone(FAIRNESS_DEADLINE_TEST_CONF, prefix_a, SMALL, prefix_s, order);
    for (int i = 0; i < SALES; i++)
        cr_assert(member(order[i], ids, SALES),
                  "email %d of the pool is job %lld, not a"
                  " confirmation",
                  i, order[i]);
    p = scrape();
    cr_assert_eq(promtext_value(p, "usher_jobs_deadline_missed_total", "pool=\"mail\""), 0);
    cr_assert_eq(promtext_value(p, "usher_jobs_deadline_dropped_total", "pool=\"mail\""), 0);
    promtext_free(p);
}

/*
 * Reminders of an event that has started are worthless: with deadline_drop
 * (fairness-deadline-test.conf's email.send) one claimed after its
 * deadline, the event's start, is cancelled unsent and counted; those of an
 * event still to come are mailed. No shipped kind sends reminders yet
 * (schedules are not on main): the test enqueues them as a scheduler would,
 * an email.send per attendee due at the event's start.
 */
Test(fairness, a_reminder_past_its_deadline_is_dropped_and_counted, .init = start, .fini = stop_all,
     .timeout = 600)
{
    organizer soon, later;
    char prefix_soon[64], prefix_later[64];
    promtext *p;
    int counts[10];

    make_organizer(&soon, "Org S", "2 seconds");
    make_organizer(&later, "Org L", "1 hour");
    snprintf(prefix_soon, sizeof(prefix_soon), "rs-%s-", run_id);
    snprintf(prefix_later, sizeof(prefix_later), "rl-%s-", run_id);
    add_attendees(&soon, prefix_soon, 10);
    add_attendees(&later, prefix_later, 10);
    for (int e = 0; e < 2; e++) {
        const organizer *o = e == 0 ? &soon : &later;
        long long due_ms =
            scalar("SELECT (extract(epoch FROM starts_at - now()) * 1000)::int8 FROM events"
                   " WHERE id = %lld",
                   o->event);
        char sql[256];
        PGresult *res;

        cr_assert_gt(due_ms, 0, "the event has not started yet");
        snprintf(sql, sizeof(sql), "SELECT id FROM registrations WHERE event_id = %lld", o->event);
        cr_assert_eq(usher_store_exec(st, sql, 0, NULL, &res), USHER_OK);
        for (int i = 0; i < PQntuples(res); i++) {
            char payload[128];
            usher_enqueued out;

            snprintf(payload, sizeof(payload),
                     "{\"registration_id\":%s,\"template\":\"registration_confirmation\"}",
                     PQgetvalue(res, i, 0));
            cr_assert_eq(usher_enqueue(st,
                                       &(usher_enqueue_opts){ .queue = "email",
                                                              .kind = "email.send",
                                                              .payload = payload,
                                                              .deadline_ms = due_ms },
                                       &out),
                         USHER_OK, "%s", usher_store_errstr(st));
        }
        PQclear(res);
    }
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
                        " AND partition_key = 'org:%lld'",
                        soon.id),
                 10);
    /* The first event starts: its reminders' deadline passes before any is claimed. */
    wait_count("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send' AND deadline < now()", 10,
               "reminders past their deadline");

    start_mail(FAIRNESS_DEADLINE_TEST_CONF);
    wait_emails_done();
    cr_assert_eq(scalar("SELECT count(*) FROM usher_jobs WHERE kind = 'email.send'"
                        " AND state = 'cancelled' AND partition_key = 'org:%lld'"
                        " AND errors -> -1 ->> 'error' = 'deadline passed: dropped'",
                        soon.id),
                 10);
    cr_assert_eq(testmail_count(prefix_soon, counts, 10), 0, "reminders of a started event sent");
    assert_one_each(prefix_later, 10);
    p = scrape();
    cr_assert_eq(promtext_value(p, "usher_jobs_deadline_dropped_total", "pool=\"mail\""), 10);
    cr_assert_eq(promtext_value(p, "usher_jobs_deadline_missed_total", "pool=\"mail\""), 10);
    promtext_free(p);
}
