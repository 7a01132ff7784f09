/*
 * Schedules anchored to an event or a session, end to end: a real usher-api
 * takes the organizer's requests, and real usher-worker processes (one, or
 * two running the same pool as two hosts would) fire the schedules, fan the
 * messages out and mail them through the stack's SMTP sink. The tests read
 * the jobs table for due times, count the sink's mails per attendee and
 * subject, and use anchors a few seconds ahead so that schedules fire
 * while the test waits (on conditions, never fixed sleeps).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testdb.h"
#include "testhttp.h"
#include "testmail.h"
#include "testproc.h"
#include "token.h"

__attribute__((constructor)) static void use_test_config(void)
{
    setenv("USHER_CONFIG", SCHEDULES_TEST_CONF, 1);
}

TESTDB_SUITE(schedules, "usher_test_schedules");

#define DEADLINE_MS  120000
#define TWO_HOURS_MS 7200000LL

static testapi server;
static pid_t workers[2];
static char worker_dirs[2][64];
static char run_id[32];

typedef struct world {
    long long org, other_org;
    char admin[USHER_TOKEN_MAX], organizer[USHER_TOKEN_MAX], other[USHER_TOKEN_MAX];
} world;

static void token(usher_role role, long long org, char out[USHER_TOKEN_MAX])
{
    int64_t id;

    cr_assert_eq(usher_token_create(st, role, org, 0, "test", out, &id), USHER_OK, "%s",
                 usher_store_errstr(st));
}

static void make_world(world *w)
{
    w->org = testdb_scalarf(st, "INSERT INTO organizers (name) VALUES ('Org A') RETURNING id");
    w->other_org =
        testdb_scalarf(st, "INSERT INTO organizers (name) VALUES ('Org B') RETURNING id");
    token(USHER_ROLE_ADMIN, 0, w->admin);
    token(USHER_ROLE_ORGANIZER, w->org, w->organizer);
    token(USHER_ROLE_ORGANIZER, w->other_org, w->other);
}

/* An event of org named NAME-RUNID, from starts (an SQL expression) for an hour. */
static long long make_event(long long org, const char *name, const char *starts)
{
    return testdb_scalarf(
        st,
        "INSERT INTO events (organizer_id, name, venue, timezone, starts_at, ends_at)"
        " VALUES (%lld, '%s-%s', 'Hall 1', 'Europe/Berlin', %s,"
        " %s + interval '1 hour') RETURNING id",
        org, name, run_id, starts, starts);
}

static long long make_session(long long event, const char *starts)
{
    return testdb_scalarf(st,
                          "INSERT INTO sessions (event_id, title, starts_at, ends_at)"
                          " VALUES (%lld, 'Keynote', %s, %s + interval '30 minutes') RETURNING id",
                          event, starts, starts);
}

/* n confirmed attendees of event, PREFIXi@example.org for i < n. */
static void add_attendees(long long event, const char *prefix, int n)
{
    long long ga = testdb_scalarf(st,
                                  "INSERT INTO ticket_types (event_id, name, capacity)"
                                  " VALUES (%lld, 'GA', 10000) RETURNING id",
                                  event);
    char sql[1024];

    snprintf(sql, sizeof(sql),
             "INSERT INTO registrations (event_id, ticket_type_id, name, email)"
             " SELECT %lld, %lld, 'Guest ' || g, '%s' || g || '@example.org'"
             " FROM generate_series(0, %d) g ORDER BY g",
             event, ga, prefix, n - 1);
    testdb_exec(st, sql);
}

static void start(void)
{
    snprintf(run_id, sizeof(run_id), "%lx%x", (unsigned long)time(NULL), (unsigned)getpid());
    testapi_start(&server, USHER_API_PATH, cfg.database_url, 2);
}

/* n usher-worker processes of pool all, as n hosts. */
static void start_workers(int n)
{
    for (int i = 0; i < n; i++)
        workers[i] = testproc_start_worker(USHER_WORKER_PATH, SCHEDULES_TEST_CONF, "all",
                                           cfg.database_url, "sched", worker_dirs[i]);
}

static void stop_all(void)
{
    testapi_stop(&server);
    for (int i = 0; i < 2; i++) {
        if (workers[i] > 0)
            testproc_stop_cleanly(workers[i]);
        workers[i] = 0;
    }
}

static long call(const char *method, const char *path, const char *tok, const char *body,
                 testhttp_resp *out)
{
    return testhttp(&server, &(testhttp_req){ method, path, tok, body, NULL, NULL }, out);
}

/* POSTs body as a schedule of event and expects want; the new schedule's id (or 0). */
static long long post_schedule(const char *tok, long long event, const char *body, long want,
                               const char *field)
{
    char path[96];
    testhttp_resp resp;
    long long id = 0;

    snprintf(path, sizeof(path), "/v1/events/%lld/schedules", event);
    call("POST", path, tok, body, &resp);
    cr_assert_eq(resp.status, want, "%s: %ld %s", body, resp.status, resp.body);
    if (want == 201)
        id = json_integer_value(json_object_get(resp.json, "id"));
    if (field != NULL)
        cr_assert_str_eq(
            json_string_value(json_object_get(json_object_get(resp.json, "error"), "field")), field,
            "%s: %s", body, resp.body);
    testhttp_resp_free(&resp);
    return id;
}

/* The run_at of schedule's job, in ms since the epoch. */
static long long run_at_ms(long long schedule)
{
    return testdb_scalarf(st,
                          "SELECT (extract(epoch FROM j.run_at) * 1000)::bigint FROM usher_jobs j"
                          " JOIN event_schedules s ON s.job_id = j.id WHERE s.id = %lld",
                          schedule);
}

static long long in_state(long long schedule, const char *state)
{
    return testdb_scalarf(st,
                          "SELECT count(*) FROM event_schedules WHERE id = %lld AND state = '%s'",
                          schedule, state);
}

static long long job_in_state(long long schedule, const char *state)
{
    return testdb_scalarf(
        st,
        "SELECT count(*) FROM usher_jobs j JOIN event_schedules s ON s.job_id = j.id"
        " WHERE s.id = %lld AND j.state = '%s'",
        schedule, state);
}

/* The database's clock, in ms since the epoch (the jobs' times are the database's). */
static long long db_now_ms(void)
{
    return testdb_scalarf(st, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint");
}

/* PATCHes path with body as tok and expects 200. */
static void patch(const char *tok, const char *path, const char *body)
{
    testhttp_resp resp;

    call("PATCH", path, tok, body, &resp);
    cr_assert_eq(resp.status, 200, "PATCH %s %s: %ld %s", path, body, resp.status, resp.body);
    testhttp_resp_free(&resp);
}

/* starts_at and ends_at of an event or session, moved by delta (an SQL interval), as a body. */
static void moved_times(const char *table, long long id, const char *delta, char *out, size_t len)
{
    PGresult *res;
    char sql[512];

    snprintf(sql, sizeof(sql),
             "SELECT json_build_object('starts_at', starts_at + interval '%s',"
             " 'ends_at', ends_at + interval '%s')::text FROM %s WHERE id = %lld",
             delta, delta, table, id);
    cr_assert_eq(usher_store_exec(st, sql, 0, NULL, &res), USHER_OK, "%s", usher_store_errstr(st));
    snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
}

typedef struct mailed {
    const char *prefix, *subject;
    int n;
} mailed;

static bool all_mailed(void *arg)
{
    const mailed *m = arg;
    int *counts = calloc((size_t)m->n, sizeof(int)), total;

    cr_assert_not_null(counts);
    total = testmail_count_subject(m->prefix, m->subject, counts, m->n);
    free(counts);
    return total >= m->n;
}

static bool no_mail_waiting(void *arg)
{
    (void)arg;
    return testdb_scalarf(
               st, "SELECT count(*) FROM usher_jobs WHERE kind IN ('email.send', 'message.fanout',"
                   " 'schedule.fire') AND state IN ('available', 'running')"
                   " AND run_at <= now() + interval '1 minute'") == 0;
}

/* Waits until each of the n attendees PREFIXi has a mail with subject; then checks one each. */
static void wait_mailed_once(const char *prefix, const char *subject, int n)
{
    mailed m = { prefix, subject, n };
    int *counts = calloc((size_t)n, sizeof(int)), total;

    cr_assert_not_null(counts);
    cr_assert(testproc_wait_for(all_mailed, &m, DEADLINE_MS), "%s: not everyone was mailed",
              subject);
    cr_assert(testproc_wait_for(no_mail_waiting, NULL, DEADLINE_MS), "jobs still waiting");
    total = testmail_count_subject(prefix, subject, counts, n); /* a duplicate shows now */
    for (int i = 0; i < n; i++)
        cr_assert_eq(counts[i], 1, "%s: attendee %d got %d mails", subject, i, counts[i]);
    cr_assert_eq(total, n, "%s: %d mails", subject, total);
    free(counts);
}

static int mails(const char *prefix, const char *subject, int n)
{
    int *counts = calloc((size_t)n, sizeof(int)), total;

    cr_assert_not_null(counts);
    total = testmail_count_subject(prefix, subject, counts, n);
    free(counts);
    return total;
}

Test(schedules, are_created_with_defaults_listed_deleted_and_scoped_to_the_organizer, .init = start,
     .fini = stop_all, .timeout = 120)
{
    world w;
    long long event, session, other_event, other_session, reminder, survey, door, csv;
    char path[128], body[256];
    testhttp_resp resp;
    json_t *list;

    make_world(&w);
    event = make_event(w.org, "Defaults", "now() + interval '2 days'");
    session = make_session(event, "now() + interval '2 days 1 hour'");
    other_event = make_event(w.other_org, "Theirs", "now() + interval '2 days'");
    other_session = make_session(other_event, "now() + interval '2 days'");

    /* What the request leaves out comes from [schedules]. */
    reminder = post_schedule(w.organizer, event, "{\"action\":\"reminder\"}", 201, NULL);
    cr_assert_eq(
        testdb_scalarf(st,
                       "SELECT count(*) FROM event_schedules s JOIN events e ON e.id = s.event_id"
                       " WHERE s.id = %lld AND s.anchor = 'start' AND s.offset_s = -86400"
                       " AND s.due_at = e.starts_at - interval '1 day' AND s.format IS NULL",
                       reminder),
        1);
    snprintf(body, sizeof(body),
             "{\"action\":\"message\",\"session_id\":%lld,\"subject\":\"How was it?\","
             "\"body\":\"Tell us: https://example.org/survey\"}",
             session);
    survey = post_schedule(w.organizer, event, body, 201, NULL);
    cr_assert_eq(
        testdb_scalarf(st,
                       "SELECT count(*) FROM event_schedules s JOIN sessions x"
                       " ON x.id = s.session_id WHERE s.id = %lld AND s.anchor = 'end'"
                       " AND s.offset_s = 7200 AND s.due_at = x.ends_at + interval '2 hours'",
                       survey),
        1);
    door = post_schedule(w.admin, event, "{\"action\":\"door_list\"}", 201, NULL);
    cr_assert_eq(
        testdb_scalarf(st,
                       "SELECT count(*) FROM event_schedules s JOIN events e ON e.id = s.event_id"
                       " WHERE s.id = %lld AND s.format = 'pdf' AND s.offset_s = -3600"
                       " AND s.due_at = e.starts_at - interval '1 hour'",
                       door),
        1);
    csv = post_schedule(w.organizer, event,
                        "{\"action\":\"door_list\",\"format\":\"csv\",\"anchor\":\"end\","
                        "\"offset_s\":-600}",
                        201, NULL);
    /* Each has one waiting schedule.fire job at its due time, keyed by schedule and generation. */
    cr_assert_eq(
        testdb_scalarf(st,
                       "SELECT count(*) FROM usher_jobs j JOIN event_schedules s"
                       " ON s.job_id = j.id WHERE s.event_id = %lld AND j.kind = 'schedule.fire'"
                       " AND j.state = 'available' AND j.run_at = s.due_at"
                       " AND j.unique_key = 'schedule:' || s.id || ':1'"
                       " AND (j.payload->>'schedule_id')::bigint = s.id AND j.priority = 0",
                       event),
        4);

    /* Refused: each names the field at fault. */
    static const struct {
        const char *body, *field;
    } bad[] = {
        { "{}", "action" },
        { "{\"action\":\"sms\"}", "action" },
        { "{\"action\":\"message\",\"subject\":\"x\"}", "body" },
        { "{\"action\":\"message\",\"body\":\"x\"}", "subject" },
        { "{\"action\":\"door_list\",\"subject\":\"x\"}", "subject" },
        { "{\"action\":\"reminder\",\"format\":\"csv\"}", "format" },
        { "{\"action\":\"reminder\",\"anchor\":\"middle\"}", "anchor" },
        { "{\"action\":\"reminder\",\"offset_s\":-99999999}", "offset_s" },
        { "{\"action\":\"reminder\",\"offset_s\":\"-60\"}", "offset_s" },
        { "{\"action\":\"reminder\",\"offset_s\":-259200}", "offset_s" }, /* 3 days: passed */
        { "{\"action\":\"reminder\",\"subject\":\"a\\nb\"}", "subject" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        post_schedule(w.organizer, event, bad[i].body, 422, bad[i].field);
    snprintf(body, sizeof(body), "{\"action\":\"reminder\",\"session_id\":%lld}", other_session);
    post_schedule(w.organizer, event, body, 422, "session_id");
    post_schedule(w.other, event, "{\"action\":\"reminder\"}", 404, NULL);
    post_schedule(NULL, event, "{\"action\":\"reminder\"}", 401, NULL);
    post_schedule(w.organizer, 987654321, "{\"action\":\"reminder\"}", 404, NULL);

    /* Listed by due time, each with its job. */
    snprintf(path, sizeof(path), "/v1/events/%lld/schedules", event);
    call("GET", path, w.other, NULL, &resp);
    cr_assert_eq(resp.status, 404, "%s", resp.body);
    testhttp_resp_free(&resp);
    call("GET", path, w.organizer, NULL, &resp);
    cr_assert_eq(resp.status, 200, "%s", resp.body);
    list = json_object_get(resp.json, "schedules");
    cr_assert_eq(json_array_size(list), 4, "%s", resp.body);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(list, 0), "id")), reminder);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(list, 1), "id")), door);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(list, 2), "id")), csv);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(list, 3), "id")), survey);
    cr_assert_str_eq(json_string_value(
                         json_object_get(json_object_get(json_array_get(list, 0), "job"), "state")),
                     "available");
    testhttp_resp_free(&resp);

    /* Deleted: its job is cancelled; another organizer's delete is a 404. */
    snprintf(path, sizeof(path), "/v1/schedules/%lld", csv);
    call("DELETE", path, w.other, NULL, &resp);
    cr_assert_eq(resp.status, 404, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(job_in_state(csv, "available"), 1);
    long long csv_job =
        testdb_scalarf(st, "SELECT job_id FROM event_schedules WHERE id = %lld", csv);
    call("DELETE", path, w.organizer, NULL, &resp);
    cr_assert_eq(resp.status, 200, "%s", resp.body);
    testhttp_resp_free(&resp);
    call("DELETE", path, w.organizer, NULL, &resp);
    cr_assert_eq(resp.status, 404, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(
        testdb_scalarf(
            st, "SELECT count(*) FROM usher_jobs WHERE id = %lld AND state = 'cancelled'", csv_job),
        1);
    cr_assert_eq(
        testdb_scalarf(st,
                       "SELECT count(*) FROM audit_log WHERE target = 'schedule'"
                       " AND action = 'schedule.create' AND target_id IN (%lld, %lld, %lld, %lld)"
                       " AND before IS NULL AND after->>'state' = 'scheduled'",
                       reminder, survey, door, csv),
        4);
    cr_assert_eq(
        testdb_scalarf(st,
                       "SELECT count(*) FROM audit_log WHERE action = 'schedule.delete'"
                       " AND target_id = %lld AND after IS NULL AND before->>'id' = '%lld'",
                       csv, csv),
        1);

    /* A session cancelled takes its schedules (and only those) with it. */
    snprintf(path, sizeof(path), "/v1/sessions/%lld/cancel", session);
    call("POST", path, w.organizer, NULL, &resp);
    cr_assert_eq(resp.status, 200, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(in_state(survey, "cancelled"), 1);
    cr_assert_eq(job_in_state(survey, "cancelled"), 1);
    cr_assert_eq(in_state(reminder, "scheduled"), 1);
    snprintf(body, sizeof(body), "{\"action\":\"reminder\",\"session_id\":%lld}", session);
    post_schedule(w.organizer, event, body, 409, NULL);

    /* An event cancelled: every schedule and job of it. */
    snprintf(path, sizeof(path), "/v1/events/%lld/cancel", event);
    call("POST", path, w.organizer, "{}", &resp);
    cr_assert_eq(resp.status, 202, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT count(*) FROM event_schedules WHERE event_id = %lld"
                                " AND state = 'cancelled'",
                                event),
                 3);
    cr_assert_eq(testdb_scalarf(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'schedule.fire'"
                                    " AND state = 'available'"),
                 0);
    post_schedule(w.organizer, event, "{\"action\":\"reminder\"}", 409, NULL);

    /* An event deleted (it never sold a ticket): its schedules go, their jobs are cancelled. */
    long long quiet = make_event(w.org, "Quiet", "now() + interval '3 days'");
    long long quiet_session = make_session(quiet, "now() + interval '3 days'");

    post_schedule(w.organizer, quiet, "{\"action\":\"reminder\"}", 201, NULL);
    snprintf(body, sizeof(body), "{\"action\":\"reminder\",\"session_id\":%lld}", quiet_session);
    post_schedule(w.organizer, quiet, body, 201, NULL);
    cr_assert_eq(testdb_scalarf(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'schedule.fire'"
                                    " AND state = 'available'"),
                 2);
    snprintf(path, sizeof(path), "/v1/events/%lld", quiet);
    call("DELETE", path, w.organizer, NULL, &resp);
    cr_assert_eq(resp.status, 200, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(
        testdb_scalarf(st, "SELECT count(*) FROM event_schedules WHERE event_id = %lld", quiet), 0);
    cr_assert_eq(testdb_scalarf(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'schedule.fire'"
                                    " AND state = 'available'"),
                 0);
}

Test(schedules, an_event_moved_by_two_hours_moves_its_reminders, .init = start, .fini = stop_all,
     .timeout = 300)
{
    world w;
    long long later, earlier, later_reminder, earlier_reminder, session, session_reminder;
    long long before_later, before_earlier, before_session, due;
    char later_prefix[64], earlier_prefix[64], later_subject[96], earlier_subject[96];
    char path[96], body[256];

    make_world(&w);
    /* Due in 10 s, then moved two hours later: it must not fire at 10 s. */
    later = make_event(w.org, "Later", "now() + interval '12 seconds'");
    /* Due in two hours and 12 s, then moved two hours earlier: it fires at 12 s. */
    earlier = make_event(w.org, "Earlier", "now() + interval '2 hours 14 seconds'");
    session = make_session(earlier, "now() + interval '2 days'");
    snprintf(later_prefix, sizeof(later_prefix), "mvl-%s-", run_id);
    snprintf(earlier_prefix, sizeof(earlier_prefix), "mve-%s-", run_id);
    add_attendees(later, later_prefix, 30);
    add_attendees(earlier, earlier_prefix, 30);
    start_workers(1);

    later_reminder =
        post_schedule(w.organizer, later, "{\"action\":\"reminder\",\"offset_s\":-2}", 201, NULL);
    earlier_reminder =
        post_schedule(w.organizer, earlier, "{\"action\":\"reminder\",\"offset_s\":-2}", 201, NULL);
    snprintf(body, sizeof(body), "{\"action\":\"reminder\",\"session_id\":%lld}", session);
    session_reminder = post_schedule(w.organizer, earlier, body, 201, NULL);
    before_later = run_at_ms(later_reminder);
    before_earlier = run_at_ms(earlier_reminder);
    before_session = run_at_ms(session_reminder);

    snprintf(path, sizeof(path), "/v1/events/%lld", later);
    moved_times("events", later, "2 hours", body, sizeof(body));
    patch(w.organizer, path, body);
    snprintf(path, sizeof(path), "/v1/events/%lld", earlier);
    moved_times("events", earlier, "-2 hours", body, sizeof(body));
    patch(w.organizer, path, body);
    snprintf(path, sizeof(path), "/v1/sessions/%lld", session);
    moved_times("sessions", session, "2 hours", body, sizeof(body));
    patch(w.organizer, path, body);
    /* A change that is not a move moves nothing. */
    snprintf(path, sizeof(path), "/v1/events/%lld", later);
    patch(w.organizer, path, "{\"name\":\"Later still\"}");

    /* The due times in the jobs table moved by exactly two hours, each its way. */
    cr_assert_eq(run_at_ms(later_reminder) - before_later, TWO_HOURS_MS);
    cr_assert_eq(run_at_ms(session_reminder) - before_session, TWO_HOURS_MS);
    cr_assert_eq(
        testdb_scalarf(st,
                       "SELECT count(*) FROM event_schedules s JOIN usher_jobs j"
                       " ON j.id = s.job_id WHERE s.id IN (%lld, %lld) AND j.run_at = s.due_at",
                       later_reminder, session_reminder),
        2);
    due = testdb_scalarf(st,
                         "SELECT (extract(epoch FROM due_at) * 1000)::bigint FROM event_schedules"
                         " WHERE id = %lld",
                         earlier_reminder);
    cr_assert_eq(before_earlier - due, TWO_HOURS_MS);

    /* The one moved earlier fires at its new time: everyone reminded once, after it. */
    snprintf(earlier_subject, sizeof(earlier_subject), "Reminder: Earlier-%s", run_id);
    wait_mailed_once(earlier_prefix, earlier_subject, 30);
    cr_assert_eq(in_state(earlier_reminder, "fired"), 1);
    cr_assert_eq(
        testdb_scalarf(st,
                       "SELECT count(*) FROM event_schedules WHERE id = %lld"
                       " AND fired_at >= due_at AND fired_at < due_at + interval '1 minute'",
                       earlier_reminder),
        1, "fired at its new time");
    cr_assert_eq(testdb_scalarf(
                     st,
                     "SELECT count(*) FROM event_messages m JOIN event_schedules s"
                     " ON s.message_id = m.id WHERE s.id = %lld AND m.created_by = 'schedule:%lld'"
                     " AND m.state = 'done'",
                     earlier_reminder, earlier_reminder),
                 1);

    /* By now the old time of the one moved later is seconds past: it did not fire. */
    cr_assert_gt(db_now_ms(), before_later + 1000);
    cr_assert_eq(in_state(later_reminder, "scheduled"), 1);
    cr_assert_eq(job_in_state(later_reminder, "available"), 1);
    cr_assert_eq(run_at_ms(later_reminder), before_later + TWO_HOURS_MS);
    cr_assert_eq(
        testdb_scalarf(st, "SELECT count(*) FROM event_messages WHERE event_id = %lld", later), 0);
    snprintf(later_subject, sizeof(later_subject), "Reminder: Later");
    cr_assert_eq(mails(later_prefix, later_subject, 30), 0);
    cr_assert_eq(in_state(session_reminder, "scheduled"), 1);
}

Test(schedules, a_cancelled_events_reminders_never_fire, .init = start, .fini = stop_all,
     .timeout = 300)
{
    world w;
    long long doomed, kept, session, doomed_reminder, doomed_survey, kept_reminder, session_survey;
    char doomed_prefix[64], kept_prefix[64], subject[96], path[96], body[256];
    testhttp_resp resp;

    make_world(&w);
    doomed = make_event(w.org, "Doomed", "now() + interval '8 seconds'");
    /* The control, due after the doomed ones: its reminder fires while we watch. */
    kept = make_event(w.org, "Kept", "now() + interval '12 seconds'");
    session = make_session(kept, "now() + interval '6 seconds'");
    snprintf(doomed_prefix, sizeof(doomed_prefix), "cxd-%s-", run_id);
    snprintf(kept_prefix, sizeof(kept_prefix), "cxk-%s-", run_id);
    add_attendees(doomed, doomed_prefix, 25);
    add_attendees(kept, kept_prefix, 25);

    doomed_reminder =
        post_schedule(w.organizer, doomed, "{\"action\":\"reminder\",\"offset_s\":-2}", 201, NULL);
    doomed_survey = post_schedule(w.organizer, doomed,
                                  "{\"action\":\"message\",\"anchor\":\"start\",\"offset_s\":1,"
                                  "\"subject\":\"Survey Doomed\",\"body\":\"Tell us.\"}",
                                  201, NULL);
    kept_reminder =
        post_schedule(w.organizer, kept, "{\"action\":\"reminder\",\"offset_s\":-1}", 201, NULL);
    snprintf(body, sizeof(body),
             "{\"action\":\"message\",\"session_id\":%lld,\"anchor\":\"start\",\"offset_s\":-1,"
             "\"subject\":\"Survey Keynote\",\"body\":\"Tell us.\"}",
             session);
    session_survey = post_schedule(w.organizer, kept, body, 201, NULL);

    /* The event and the session are cancelled before their schedules come due. */
    snprintf(path, sizeof(path), "/v1/events/%lld/cancel", doomed);
    call("POST", path, w.organizer, "{}", &resp);
    cr_assert_eq(resp.status, 202, "%s", resp.body);
    testhttp_resp_free(&resp);
    snprintf(path, sizeof(path), "/v1/sessions/%lld/cancel", session);
    call("POST", path, w.organizer, NULL, &resp);
    cr_assert_eq(resp.status, 200, "%s", resp.body);
    testhttp_resp_free(&resp);
    cr_assert_eq(job_in_state(doomed_reminder, "cancelled"), 1);
    cr_assert_eq(job_in_state(doomed_survey, "cancelled"), 1);
    cr_assert_eq(job_in_state(session_survey, "cancelled"), 1);
    cr_assert_eq(job_in_state(kept_reminder, "available"), 1);
    start_workers(1);

    /* Everyone of the kept event is reminded, after the doomed schedules' times. */
    snprintf(subject, sizeof(subject), "Reminder: Kept-%s", run_id);
    wait_mailed_once(kept_prefix, subject, 25);
    /* The doomed event's attendees hear of its cancellation, once. */
    snprintf(subject, sizeof(subject), "Cancelled: Doomed-%s", run_id);
    wait_mailed_once(doomed_prefix, subject, 25);
    cr_assert_gt(db_now_ms(),
                 testdb_scalarf(st,
                                "SELECT (extract(epoch FROM max(due_at)) * 1000)::bigint"
                                " FROM event_schedules WHERE event_id = %lld",
                                doomed) +
                     1000);

    /* ... and of nothing else: no reminder, no survey, no message but the cancellation. */
    cr_assert_eq(mails(doomed_prefix, "Reminder", 25), 0);
    cr_assert_eq(mails(doomed_prefix, "Survey", 25), 0);
    cr_assert_eq(mails(kept_prefix, "Survey Keynote", 25), 0);
    cr_assert_eq(
        testdb_scalarf(st, "SELECT count(*) FROM event_messages WHERE event_id = %lld", doomed), 1);
    /* The kept event's messages: its reminder, and its session's cancellation (0022's). */
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT count(*) FROM event_messages WHERE event_id = %lld"
                                " AND kind = 'message'",
                                kept),
                 1);
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT count(*) FROM event_messages WHERE event_id = %lld"
                                " AND kind = 'session_cancelled'",
                                kept),
                 1);
    cr_assert_eq(
        testdb_scalarf(st, "SELECT count(*) FROM event_messages WHERE event_id = %lld", kept), 2);
    wait_mailed_once(kept_prefix, "Session cancelled: Keynote", 25);
    cr_assert_eq(in_state(doomed_reminder, "cancelled"), 1);
    cr_assert_eq(in_state(doomed_survey, "cancelled"), 1);
    cr_assert_eq(in_state(session_survey, "cancelled"), 1);
    cr_assert_eq(in_state(kept_reminder, "fired"), 1);
}

Test(schedules, a_schedule_found_late_fires_or_is_skipped_by_the_rules, .init = start,
     .fini = stop_all, .timeout = 300)
{
    world w;
    long long event, reminder, thanks;
    char prefix[64], subject[96], path[96], body[256];

    make_world(&w);
    event = make_event(w.org, "Late", "now() + interval '1 hour'");
    snprintf(prefix, sizeof(prefix), "late-%s-", run_id);
    add_attendees(event, prefix, 10);
    reminder =
        post_schedule(w.organizer, event, "{\"action\":\"reminder\",\"offset_s\":-60}", 201, NULL);
    thanks = post_schedule(w.organizer, event,
                           "{\"action\":\"message\",\"offset_s\":1,\"subject\":\"Thanks Late\","
                           "\"body\":\"Thank you for coming.\"}",
                           201, NULL);
    start_workers(1);

    /* The event turns out to have begun a minute ago and ended 10 s ago. */
    {
        PGresult *res;

        cr_assert_eq(
            usher_store_exec(st,
                             "SELECT json_build_object('starts_at', now() - interval"
                             " '1 minute', 'ends_at', now() - interval '10 seconds')::text",
                             0, NULL, &res),
            USHER_OK);
        snprintf(body, sizeof(body), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    snprintf(path, sizeof(path), "/v1/events/%lld", event);
    patch(w.organizer, path, body);

    /* The thank-you, 9 s late but within [schedules] late_limit_s, goes out. */
    snprintf(subject, sizeof(subject), "Thanks Late");
    wait_mailed_once(prefix, subject, 10);
    cr_assert_eq(in_state(thanks, "fired"), 1);
    /* The reminder, due before a start that has passed, is skipped: nobody is reminded. */
    cr_assert_eq(in_state(reminder, "skipped"), 1);
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT count(*) FROM event_schedules WHERE id = %lld"
                                " AND reason LIKE '%%anchor had passed%%' AND message_id IS NULL",
                                reminder),
                 1);
    cr_assert_eq(mails(prefix, "Reminder", 10), 0);
    cr_assert_eq(
        testdb_scalarf(st, "SELECT count(*) FROM event_messages WHERE event_id = %lld", event), 1);
}

typedef struct report_wait {
    long long schedule;
} report_wait;

static bool door_list_done(void *arg)
{
    const report_wait *x = arg;

    return testdb_scalarf(
               st,
               "SELECT count(*) FROM event_schedules s JOIN reports r ON r.id = s.report_id"
               " WHERE s.id = %lld AND r.state = 'done'",
               x->schedule) == 1;
}

Test(schedules, two_workers_remind_each_attendee_exactly_once, .init = start, .fini = stop_all,
     .timeout = 300)
{
    enum { ATTENDEES = 200, REMINDERS = 4 };
    world w;
    long long event, ids[REMINDERS], door;
    char prefix[64], subject[96], body[256];

    make_world(&w);
    event = make_event(w.org, "Crowded", "now() + interval '10 seconds'");
    snprintf(prefix, sizeof(prefix), "two-%s-", run_id);
    add_attendees(event, prefix, ATTENDEES);
    cr_assert_gt(testdb_scalarf(st,
                                "INSERT INTO webhook_endpoints (organizer_id, url, events, secret)"
                                " VALUES (%lld, 'https://hooks.example.org/s', '{schedule.fired}',"
                                " 'secret') RETURNING id",
                                w.org),
                 0);
    for (int i = 0; i < REMINDERS; i++) {
        snprintf(body, sizeof(body),
                 "{\"action\":\"reminder\",\"offset_s\":%d,\"subject\":\"Twice %d %s\"}",
                 -4 + i % 2, i, run_id);
        ids[i] = post_schedule(w.organizer, event, body, 201, NULL);
    }
    door =
        post_schedule(w.organizer, event,
                      "{\"action\":\"door_list\",\"offset_s\":-4,\"format\":\"csv\"}", 201, NULL);
    /* Stray jobs for the same schedules (a replayed or duplicated job) must change nothing. */
    cr_assert_eq(
        testdb_scalarf(st,
                       "SELECT count(*) FROM usher_enqueue_templates((SELECT jsonb_agg("
                       " jsonb_build_object('queue', 'notifications', 'kind', 'schedule.fire',"
                       " 'priority', 0, 'max_attempts', 5, 'timeout_ms', 10000, 'run_at_us',"
                       " (extract(epoch FROM s.due_at) * 1000000)::int8,"
                       " 'payload', jsonb_build_object('schedule_id', s.id)))"
                       " FROM event_schedules s WHERE s.event_id = %lld))",
                       event),
        REMINDERS + 1);
    start_workers(2);

    for (int i = 0; i < REMINDERS; i++) {
        snprintf(subject, sizeof(subject), "Twice %d %s", i, run_id);
        wait_mailed_once(prefix, subject, ATTENDEES);
        cr_assert_eq(in_state(ids[i], "fired"), 1);
        cr_assert_eq(testdb_scalarf(st,
                                    "SELECT count(*) FROM event_messages WHERE created_by ="
                                    " 'schedule:%lld'",
                                    ids[i]),
                     1);
        cr_assert_eq(
            testdb_scalarf(st,
                           "SELECT count(*) FROM message_deliveries d JOIN event_schedules s"
                           " ON s.message_id = d.message_id WHERE s.id = %lld"
                           " AND d.sent_at IS NOT NULL",
                           ids[i]),
            ATTENDEES);
    }
    report_wait x = { door };
    cr_assert(testproc_wait_for(door_list_done, &x, DEADLINE_MS), "the door list was not made");
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT count(*) FROM reports r JOIN event_schedules s"
                                " ON s.report_id = r.id WHERE s.id = %lld AND r.rows = %d"
                                " AND r.requested_by = 'schedule:%lld'",
                                door, ATTENDEES, door),
                 1);
    cr_assert_eq(testdb_scalarf(st, "SELECT count(*) FROM reports WHERE event_id = %lld", event),
                 1);
    cr_assert_eq(
        testdb_scalarf(st, "SELECT count(*) FROM event_messages WHERE event_id = %lld", event),
        REMINDERS);
    /* The organizer's endpoint hears of each schedule once. */
    cr_assert_eq(testdb_scalarf(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'notify.webhook'"
                                    " AND payload->>'event' = 'schedule.fired'"),
                 REMINDERS + 1);
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT count(*) FROM usher_jobs WHERE kind = 'notify.webhook'"
                                " AND payload->>'event' = 'schedule.fired'"
                                " AND (payload->'data'->>'report_id')::bigint ="
                                " (SELECT report_id FROM event_schedules WHERE id = %lld)",
                                door),
                 1);
    /* No schedule.fire job is left, or died: the stray ones found nothing to do. */
    cr_assert_eq(testdb_scalarf(st, "SELECT count(*) FROM usher_jobs WHERE kind = 'schedule.fire'"),
                 0);
}

/*
 * A reminder without words of the organizer's is written in the event's
 * language, its time as the mail templates write it in the event's zone.
 */
Test(schedules, a_german_events_reminder_reads_in_german, .init = start, .fini = stop_all,
     .timeout = 300)
{
    enum { ATTENDEES = 12 };
    world w;
    long long event, reminder;
    char prefix[64], subject[96];

    make_world(&w);
    event = make_event(w.org, "Buehne", "now() + interval '8 seconds'");
    testdb_scalarf(st, "UPDATE events SET locale = 'de' WHERE id = %lld RETURNING id", event);
    snprintf(prefix, sizeof(prefix), "de-%s-", run_id);
    add_attendees(event, prefix, ATTENDEES);
    reminder =
        post_schedule(w.organizer, event, "{\"action\":\"reminder\",\"offset_s\":-2}", 201, NULL);
    /* Its job works for the organizer: the fair claim serves it in that organizer's turn. */
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT count(*) FROM usher_jobs j JOIN event_schedules s"
                                " ON s.job_id = j.id WHERE s.id = %lld"
                                " AND j.partition_key = 'org:%lld'",
                                reminder, w.org),
                 1);
    start_workers(1);

    snprintf(subject, sizeof(subject), "Erinnerung: Buehne-%s", run_id);
    wait_mailed_once(prefix, subject, ATTENDEES);
    cr_assert_eq(in_state(reminder, "fired"), 1);
    cr_assert_eq(mails(prefix, "Reminder", ATTENDEES), 0);
    cr_assert_eq(testdb_scalarf(st,
                                "SELECT count(*) FROM event_messages m JOIN events e"
                                " ON e.id = m.event_id WHERE m.event_id = %lld"
                                " AND m.subject = 'Erinnerung: ' || e.name"
                                " AND m.body = e.name || ' beginnt am '"
                                " || usher_format_time(e.starts_at, 'Europe/Berlin', 'de')"
                                " || ', Hall 1.' AND m.body LIKE '%% Uhr (Europe/Berlin), Hall 1.'",
                                event),
                 1);
}
