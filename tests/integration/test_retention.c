/*
 * The data lifecycle (platform/retention.h, migration 0025) against a real
 * PostgreSQL, on a simulated clock: "now" is 2030-06-15 12:00 UTC, and the
 * rows are written with timestamps relative to it. Expired partitions of
 * webhook_deliveries (weekly) and analytics_minute (monthly) are dropped,
 * current ones and those a live event pins are kept, partitions are created
 * ahead and rows stranded in a DEFAULT partition are moved to theirs;
 * scans, inbox entries, documents (both stores) and usher_effects are
 * deleted in batches, exactly those past retention; a second pass does
 * nothing; a table locked by someone else makes a pass give up, not wait;
 * and migrating a table that holds rows keeps every row and id.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "docstore.h"
#include "inttext.h"
#include "migrate.h"
#include "retention.h"
#include "testdb.h"

TESTDB_SUITE(retention, "usher_test_retention");

static const struct tm sim_tm = { .tm_year = 130, .tm_mon = 5, .tm_mday = 15, .tm_hour = 12 };
static char now_text[USHER_INT_TEXT_MAX];
static int64_t now;

/* A clean slate: no rows in the lifecycle's tables, no partitions but the defaults. */
static void clean(void)
{
    struct tm tm = sim_tm;

    now = (int64_t)timegm(&tm);
    usher_int_text(now, now_text);
    testdb_exec(st, "TRUNCATE webhook_deliveries, webhook_endpoints, analytics_minute, scans,"
                    " notifications, reports, documents, document_blobs, document_chunks,"
                    " registrations, ticket_types, sessions, events, organizers CASCADE");
    testdb_exec(st, "SELECT usher_partition_drop('webhook_deliveries', 'infinity'),"
                    " usher_partition_drop('analytics_minute', 'infinity')");
}

/* Runs sql with $1 = the simulated now (Unix seconds); its first value, or 0. */
static long long at_now(const char *sql)
{
    const char *params[] = { now_text };
    PGresult *res = NULL;
    long long v = 0;

    cr_assert_eq(usher_store_exec(st, sql, 1, params, &res), USHER_OK, "%s: %s", sql,
                 usher_store_errstr(st));
    if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

static usher_retention_report run_at_now(const usher_config *c)
{
    usher_retention_report r;

    cr_assert_eq(usher_retention_run(c, st, now, &r), USHER_OK, "%s", usher_store_errstr(st));
    return r;
}

#define NOW "to_timestamp($1::float8)"

/* Two events: "old" ended 100 days ago (past its 90-day period), "live" ends in 5 days. */
static void events(void)
{
    at_now(
        "WITH o AS (INSERT INTO organizers (name) VALUES ('Org') RETURNING id)"
        " INSERT INTO events (organizer_id, name, starts_at, ends_at)"
        " SELECT o.id, v.name, " NOW " + v.ends - interval '1 day', " NOW " + v.ends"
        " FROM o, (VALUES ('old', interval '-100 days'), ('live', interval '5 days')) v(name, ends)"
        " RETURNING 0");
    testdb_exec(st, "INSERT INTO ticket_types (event_id, name, capacity)"
                    " SELECT id, 'GA', 100 FROM events");
}

static long long count(const char *sql)
{
    return testdb_scalar(st, sql);
}

/* The first value of sql as text, into buf. */
static const char *text_of(const char *sql, char *buf, size_t len)
{
    PGresult *res = NULL;

    cr_assert_eq(usher_store_exec(st, sql, 0, NULL, &res), USHER_OK, "%s: %s", sql,
                 usher_store_errstr(st));
    snprintf(buf, len, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return buf;
}

Test(retention, expired_delivery_days_go_and_the_others_stay_untouched, .init = clean)
{
    usher_retention_report r;
    long long kept_ids;

    events();
    /* One delivery a day at noon, from 59 days ago to 3 days ahead. */
    at_now("WITH w AS (INSERT INTO webhook_endpoints (organizer_id, url, secret)"
           "  SELECT id, 'https://example.org/hook', 's' FROM organizers RETURNING id)"
           " INSERT INTO webhook_deliveries (endpoint_id, attempt, event, payload, created_at)"
           " SELECT w.id, 1, 'registration.created', jsonb_build_object('day', k), " NOW
           "  - k * interval '1 day' FROM w, generate_series(-3, 59) k RETURNING 0");
    cr_assert_eq(count("SELECT count(*) FROM webhook_deliveries_default"), 63,
                 "no partition yet: every row in the default one");
    /* The cutoff, 30 days back, is Thursday 2030-05-16: its week (from Monday 05-13) stays. */
    kept_ids = count("SELECT sum(id) FROM webhook_deliveries WHERE created_at >= '2030-05-13Z'");

    r = run_at_now(&cfg);
    /* 10 weeks of deliveries (9 of rows, out of the default, and the next) and June's rollups. */
    cr_assert_eq(r.partitions_created, 10 + 1);
    cr_assert_eq(r.partitions_dropped, 4, "the weeks that ended before the cutoff");
    cr_assert_eq(count("SELECT count(*) FROM usher_partitions('webhook_deliveries')"), 6,
                 "the weeks from 05-13 to 06-17");
    cr_assert_eq(count("SELECT count(*) FROM webhook_deliveries_default"), 0);
    cr_assert_eq(count("SELECT count(*) FROM webhook_deliveries"), 37, "05-13..06-18");
    cr_assert_eq(count("SELECT sum(id) FROM webhook_deliveries"), kept_ids,
                 "the rows inside retention are the same rows");
    cr_assert_eq(count("SELECT count(*) FROM usher_partitions('webhook_deliveries')"
                       " WHERE lo = '2030-06-17Z' AND hi = '2030-06-24Z'"),
                 1, "the partition of a week ahead exists");
    /* A new delivery's id goes on from the old ones. */
    cr_assert_gt(count("INSERT INTO webhook_deliveries (endpoint_id, attempt, event, payload,"
                       " created_at) SELECT id, 1, 'x', '{}', '2030-06-16Z' FROM webhook_endpoints"
                       " RETURNING id"),
                 count("SELECT max(id) FROM webhook_deliveries WHERE event <> 'x'"));

    r = run_at_now(&cfg);
    cr_assert_eq(usher_retention_total(&r), 0, "a second pass has nothing to do");
    cr_assert_eq(count("SELECT count(*) FROM webhook_deliveries"), 38);
}

Test(retention, a_month_of_rollups_goes_only_when_every_event_in_it_is_past_its_period,
     .init = clean)
{
    usher_retention_report r;
    char names[256];

    events();
    /* old: January and February; live: February and June (the current month). */
    testdb_exec(st, "INSERT INTO analytics_minute (event_id, minute, metric, count)"
                    " SELECT e.id, v.m, 'registration', 1 FROM events e JOIN (VALUES"
                    "  ('old', timestamptz '2030-01-10 10:00Z'), ('old', '2030-02-10 10:00Z'),"
                    "  ('live', '2030-02-20 10:00Z'), ('live', '2030-06-01 10:00Z')) v(name, m)"
                    " ON v.name = e.name");
    r = run_at_now(&cfg);
    cr_assert_eq(r.partitions_dropped, 1, "January: only the old event, past its period");
    cr_assert_str_eq(text_of("SELECT string_agg(name, ',' ORDER BY lo)"
                             " FROM usher_partitions('analytics_minute')",
                             names, sizeof(names)),
                     "analytics_minute_p203002,analytics_minute_p203006",
                     "February is pinned by the live event; June is the current month");
    cr_assert_eq(count("SELECT count(*) FROM analytics_minute"), 3);
    cr_assert_eq(count("SELECT count(*) FROM analytics_minute_default"), 0);
    /* The upsert of analytics.rollup still lands in its month. */
    testdb_exec(st, "INSERT INTO analytics_minute AS a (event_id, minute, metric, count)"
                    " SELECT id, '2030-06-01 10:00Z', 'registration', 4 FROM events"
                    " WHERE name = 'live' ON CONFLICT (event_id, minute, metric, gate)"
                    " DO UPDATE SET count = a.count + excluded.count");
    cr_assert_eq(count("SELECT count FROM analytics_minute_p203006"), 5);
    r = run_at_now(&cfg);
    cr_assert_eq(usher_retention_total(&r), 0, "a second pass has nothing to do");
}

/* Three registrations of the old event, two of the live one, each scanned and told once. */
static void attendees(void)
{
    testdb_exec(st, "INSERT INTO registrations (event_id, ticket_type_id, name, email)"
                    " SELECT e.id, t.id, 'A', 'a' || g || '@example.org' FROM events e"
                    " JOIN ticket_types t ON t.event_id = e.id, generate_series(1, 3) g"
                    " WHERE e.name = 'old' OR g <= 2");
    testdb_exec(st, "INSERT INTO scans (event_id, registration_id, result)"
                    " SELECT event_id, id, 'ok' FROM registrations");
    testdb_exec(st, "INSERT INTO notifications (registration_id, title)"
                    " SELECT id, 'Welcome' FROM registrations");
    /* Scans of no event: one from 100 days ago, one from 10 days ago. */
    at_now("INSERT INTO scans (result, scanned_at) VALUES ('invalid_code', " NOW
           " - interval '100 days'), ('invalid_code', " NOW " - interval '10 days') RETURNING 0");
}

Test(retention, scans_and_inbox_entries_go_with_their_events_period, .init = clean)
{
    usher_retention_report r;

    events();
    attendees();
    r = run_at_now(&cfg);
    cr_assert_eq(r.scans, 3 + 1, "the old event's three and the stray one from 100 days ago");
    cr_assert_eq(r.notifications, 3);
    cr_assert_eq(count("SELECT count(*) FROM scans s JOIN events e ON e.id = s.event_id"
                       " WHERE e.name = 'live'"),
                 2);
    cr_assert_eq(count("SELECT count(*) FROM scans"), 3);
    cr_assert_eq(count("SELECT count(*) FROM notifications"), 2);
    cr_assert_eq(count("SELECT count(*) FROM registrations"), 5, "registrations are kept");

    usher_config keep = cfg;
    keep.retention_reporting_days = 0;
    testdb_exec(st, "UPDATE events SET ends_at = ends_at - interval '10 years',"
                    " starts_at = starts_at - interval '10 years'");
    r = run_at_now(&keep);
    cr_assert_eq(r.scans + r.notifications, 0, "0 days keeps them forever");
}

/*
 * A table someone else holds locked (a LOCK TABLE, a migration) makes the
 * pass give up after its lock wait instead of queueing the maintenance
 * leader's connection behind it: that step fails with SQLSTATE 55P03, the
 * other steps (before and after it) are done, the session's lock_timeout
 * is the server's again, and the next pass finishes the rest.
 */
Test(retention, a_locked_table_makes_the_pass_give_up_and_the_next_one_finish, .init = clean,
     .timeout = 120)
{
    usher_store *holder = testdb_store(&cfg);
    usher_retention_report r;
    char before[64], after[64];

    events();
    attendees();
    at_now("INSERT INTO usher_effects (key, created_at) VALUES ('old:locked', " NOW
           " - interval '50 days') RETURNING 0");
    text_of("SHOW lock_timeout", before, sizeof(before));
    testdb_exec(holder, "BEGIN");
    testdb_exec(holder, "LOCK TABLE notifications IN EXCLUSIVE MODE");
    cr_assert_eq(usher_retention_run(&cfg, st, now, &r), USHER_ERR_DB,
                 "the pass waited out the lock");
    cr_assert_str_eq(usher_store_sqlstate(st), "55P03", "%s", usher_store_errstr(st));
    cr_assert_eq(r.scans, 3 + 1, "the scans, deleted before the locked table, stay deleted");
    cr_assert_eq(r.notifications, 0);
    cr_assert_eq(r.effects, 1, "the steps after the locked table still ran");
    cr_assert_str_eq(text_of("SHOW lock_timeout", after, sizeof(after)), before);
    testdb_exec(holder, "COMMIT");
    usher_store_free(holder);

    r = run_at_now(&cfg);
    cr_assert_eq(r.scans, 0);
    cr_assert_eq(r.notifications, 3);
    cr_assert_eq(count("SELECT count(*) FROM notifications"), 2);
}

/* A document of event name with bytes content, stored by c's store; its sha256 into sha. */
static void document(const usher_config *c, const char *name, const char *content, char *sha)
{
    char errbuf[256], size[USHER_INT_TEXT_MAX];
    usher_docstore_ref ref;

    cr_assert_eq(
        usher_docstore_put_bytes(c, st, content, strlen(content), &ref, errbuf, sizeof(errbuf)),
        USHER_OK, "%s", errbuf);
    snprintf(sha, 65, "%s", ref.sha256);
    const char *params[] = { name, sha, usher_int_text((int64_t)strlen(content), size) };
    PGresult *res = NULL;
    cr_assert_eq(usher_store_exec(st,
                                  "WITH d AS (INSERT INTO documents (kind, event_id, filename,"
                                  "  content_type, sha256, size) SELECT 'report', id, 'r.csv',"
                                  "  'text/csv', $2, $3::bigint FROM events WHERE name = $1"
                                  "  RETURNING id, event_id)"
                                  " INSERT INTO reports (event_id, kind, format, state,"
                                  "  document_id) SELECT event_id, 'attendees', 'csv', 'done', id"
                                  " FROM d",
                                  3, params, &res),
                 USHER_OK, "%s", usher_store_errstr(st));
    PQclear(res);
}

Test(retention, documents_of_ended_events_go_from_the_database_store, .init = clean)
{
    usher_retention_report r;
    char only_old[65], shared[65], live[65];

    events();
    document(&cfg, "old", "only the old event has these bytes", only_old);
    document(&cfg, "old", "both events have these bytes", shared);
    document(&cfg, "live", "both events have these bytes", live);
    cr_assert_str_eq(shared, live);
    cr_assert_eq(count("SELECT count(*) FROM document_blobs"), 2);

    r = run_at_now(&cfg);
    cr_assert_eq(r.documents, 2);
    cr_assert_eq(r.blobs, 1, "the shared bytes stay: the live event's document names them");
    cr_assert_eq(count("SELECT count(*) FROM documents"), 1);
    cr_assert_eq(count("SELECT count(*) FROM reports"), 1, "a report goes with its file");
    cr_assert_eq(count("SELECT count(*) FROM document_blobs"), 1);
    cr_assert_eq(count("SELECT count(*) FROM document_chunks c JOIN document_blobs b"
                       " USING (sha256)"),
                 count("SELECT count(*) FROM document_chunks"), "no chunk of a removed blob");
    r = run_at_now(&cfg);
    cr_assert_eq(usher_retention_total(&r), 0);
}

Test(retention, documents_of_ended_events_go_from_the_directory_store, .init = clean)
{
    char dir[] = "/tmp/usher-retention-XXXXXX", path[4096], only_old[65], shared[65];
    usher_config c = cfg;
    usher_retention_report r;

    cr_assert_not_null(mkdtemp(dir));
    c.document_store = USHER_DOCUMENTS_DIRECTORY;
    c.document_dir = dir;
    events();
    document(&c, "old", "only the old event has these bytes", only_old);
    document(&c, "old", "both events have these bytes", shared);
    document(&c, "live", "both events have these bytes", shared);

    r = run_at_now(&c);
    cr_assert_eq(r.documents, 2);
    cr_assert_eq(r.blobs, 1);
    cr_assert_eq(usher_docstore_path(dir, only_old, path, sizeof(path)), USHER_OK);
    cr_assert_neq(access(path, F_OK), 0, "%s is still there", path);
    cr_assert_eq(usher_docstore_path(dir, shared, path, sizeof(path)), USHER_OK);
    cr_assert_eq(access(path, R_OK), 0, "%s is gone", path);
    cr_assert_eq(count("SELECT count(*) FROM documents"), 1);
    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    cr_assert_eq(system(path), 0);
}

Test(retention, effects_go_in_batches_but_never_before_a_dead_job_could_run_again, .init = clean)
{
    usher_config c = cfg;
    usher_retention_report r;

    /* 12,001 rows 50 days old (three batches), 2 of 30 days, 3 of 10 days. */
    at_now(
        "INSERT INTO usher_effects (key, created_at) SELECT 'old:' || g, " NOW
        " - interval '50 days' FROM generate_series(1, 12001) g"
        " UNION ALL SELECT 'mid:' || g, " NOW " - interval '30 days' FROM generate_series(1, 2) g"
        " UNION ALL SELECT 'new:' || g, " NOW " - interval '10 days' FROM generate_series(1, 3) g"
        " RETURNING 0");
    r = run_at_now(&cfg);
    cr_assert_eq(r.effects, 12001, "older than 45 days");
    cr_assert_eq(count("SELECT count(*) FROM usher_effects"), 5);

    c.retention_effects_days = 1;
    c.dead_retention_hours = 20 * 24; /* a dead job may be retried for 20 days: 21 are kept */
    r = run_at_now(&c);
    cr_assert_eq(r.effects, 2);
    cr_assert_eq(count("SELECT count(*) FROM usher_effects WHERE key LIKE 'new:%'"), 3);
    cr_assert_eq(count("SELECT count(*) FROM usher_effects"), 3);
}

/* A directory holding the migrations numbered below 25, as links. */
static void migrations_before_retention(char *dir)
{
    const char *all = usher_migrate_default_dir();
    DIR *d = opendir(all);
    struct dirent *e;

    cr_assert_not_null(mkdtemp(dir));
    cr_assert_not_null(d, "%s", all);
    while ((e = readdir(d)) != NULL) {
        char from[1024], to[1024];

        if (strlen(e->d_name) < 5 || atoi(e->d_name) < 1 || atoi(e->d_name) >= 25)
            continue;
        snprintf(from, sizeof(from), "%s/%s", all, e->d_name);
        snprintf(to, sizeof(to), "%s/%s", dir, e->d_name);
        cr_assert_eq(symlink(from, to), 0, "%s", to);
    }
    closedir(d);
}

Test(retention, migrating_tables_that_hold_rows_keeps_every_row)
{
    char dir[] = "/tmp/usher-migrations-XXXXXX", cmd[2048];
    usher_config c = { 0 };
    usher_store *old;
    long long ids, sum;

    testdb_exec(st, "DROP DATABASE IF EXISTS usher_test_retention_migrate WITH (FORCE)");
    testdb_exec(st, "CREATE DATABASE usher_test_retention_migrate");
    testdb_setup("usher_test_retention_migrate", &c, false);
    old = testdb_store(&c);
    migrations_before_retention(dir);
    cr_assert_eq(usher_migrate(old, dir, NULL), USHER_OK, "%s", usher_store_errstr(old));
    cr_assert_eq(testdb_scalar(old, "SELECT count(*) FROM pg_partitioned_table"), 0);
    testdb_exec(old, "WITH o AS (INSERT INTO organizers (name) VALUES ('O') RETURNING id),"
                     " e AS (INSERT INTO events (organizer_id, name, starts_at, ends_at)"
                     "  SELECT id, 'E', now() - interval '400 days', now() - interval '399 days'"
                     "  FROM o RETURNING id, organizer_id),"
                     " w AS (INSERT INTO webhook_endpoints (organizer_id, url, secret)"
                     "  SELECT organizer_id, 'https://example.org/', 's' FROM e RETURNING id),"
                     " d AS (INSERT INTO webhook_deliveries (endpoint_id, attempt, event, payload,"
                     "  created_at) SELECT w.id, 1, 'x', jsonb_build_object('g', g),"
                     "  now() - g * interval '1 hour' FROM w, generate_series(0, 999) g)"
                     " INSERT INTO analytics_minute (event_id, minute, metric, count)"
                     " SELECT e.id, date_trunc('minute', now()) - g * interval '1 day',"
                     "  'checkin', g FROM e, generate_series(0, 399) g");
    ids =
        testdb_scalar(old, "SELECT sum(id) + sum((payload->>'g')::bigint) FROM webhook_deliveries");
    sum = testdb_scalar(old, "SELECT sum(count) FROM analytics_minute");

    cr_assert_eq(usher_migrate(old, usher_migrate_default_dir(), NULL), USHER_OK, "%s",
                 usher_store_errstr(old));
    cr_assert_eq(testdb_scalar(old, "SELECT count(*) FROM pg_partitioned_table"), 2);
    cr_assert_eq(testdb_scalar(old, "SELECT count(*) FROM webhook_deliveries"), 1000);
    cr_assert_eq(testdb_scalar(old, "SELECT sum(id) + sum((payload->>'g')::bigint)"
                                    " FROM webhook_deliveries"),
                 ids);
    cr_assert_eq(testdb_scalar(old, "SELECT count(*) FROM webhook_deliveries_default"), 0);
    cr_assert_eq(testdb_scalar(old, "SELECT count(*) FROM analytics_minute"), 400);
    cr_assert_eq(testdb_scalar(old, "SELECT sum(count) FROM analytics_minute"), sum);
    cr_assert_eq(testdb_scalar(old, "SELECT count(*) FROM analytics_minute_default"), 0);
    cr_assert_eq(testdb_scalar(old, "INSERT INTO webhook_deliveries (endpoint_id, attempt, event,"
                                    " payload) SELECT id, 1, 'y', '{}' FROM webhook_endpoints"
                                    " RETURNING id"),
                 1001, "ids go on after the old ones");
    usher_store_free(old);
    usher_config_free(&c);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Waits (30 s at most) until conn's statement waits for a lock; what fails otherwise. */
static void wait_for_a_lock(PGconn *conn, const char *what)
{
    long long deadline = testdb_now_ms() + 30000;

    while (testdb_scalarf(st,
                          "SELECT count(*) FROM pg_stat_activity WHERE pid = %d"
                          " AND wait_event_type = 'Lock'",
                          PQbackendPID(conn)) == 0) {
        cr_assert_lt(testdb_now_ms(), deadline, "%s", what);
        usleep(5000);
    }
}

/*
 * 0037: a rollup that wrote to analytics_minute_default and then upserts a
 * row that the pass is moving out of it must wait for the move, not
 * deadlock with it. The pass runs on a connection of its own (sent, not
 * waited for) while the rollup's transaction is open.
 */
Test(retention, moving_stray_rollups_waits_for_the_writers_instead_of_deadlocking, .init = clean,
     .timeout = 60)
{
    usher_store *rollup = testdb_store(&cfg);
    PGconn *mover = PQconnectdb(cfg.database_url);
    PGresult *res;
    const char *upsert = "INSERT INTO analytics_minute AS a (event_id, minute, metric, count)"
                         " SELECT id, $1::timestamptz, 'registration', 1 FROM events"
                         " WHERE name = 'live' ON CONFLICT (event_id, minute, metric, gate)"
                         " DO UPDATE SET count = a.count + excluded.count";
    const char *march5[] = { "2030-03-05 10:00Z" }, *march7[] = { "2030-03-07 10:00Z" };

    cr_assert_eq(PQstatus(mover), CONNECTION_OK, "%s", PQerrorMessage(mover));
    events();
    /* March has no partition: its rows wait in the default one. */
    cr_assert_eq(usher_store_exec(st, upsert, 1, march5, &res), USHER_OK);
    PQclear(res);
    testdb_exec(rollup, "BEGIN");
    cr_assert_eq(usher_store_exec(rollup, upsert, 1, march7, &res), USHER_OK, "%s",
                 usher_store_errstr(rollup));
    PQclear(res);

    cr_assert_eq(PQsendQuery(mover, "SELECT usher_partition_create('analytics_minute', 'minute',"
                                    " 'month', '2030-03-10 00:00Z')"),
                 1, "%s", PQerrorMessage(mover));
    wait_for_a_lock(mover, "the move never waited for the rollup");
    /* Without 0037 the move has taken this row away by now: this upsert waits for it, and
     * the move's ATTACH for this transaction, until the deadlock detector kills one. */
    cr_assert_eq(usher_store_exec(rollup, upsert, 1, march5, &res), USHER_OK, "%s",
                 usher_store_errstr(rollup));
    PQclear(res);
    testdb_exec(rollup, "COMMIT");
    usher_store_free(rollup);

    res = PQgetResult(mover);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(mover));
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    cr_assert_null(PQgetResult(mover));
    PQfinish(mover);
    cr_assert_eq(count("SELECT count(*) FROM analytics_minute_default"), 0);
    cr_assert_eq(count("SELECT sum(count) FROM analytics_minute_p203003"), 3);
    cr_assert_eq(count("SELECT count(*) FROM analytics_minute_p203003"), 2);
}

/*
 * 0039: a partition that holds no committed row of a live event while a
 * writer's row in it is not yet committed: the drop waits for the writer
 * and then keeps the partition with its row. Without 0039 the drop looked
 * first, saw nothing, waited at the DROP and took the row away.
 */
Test(retention, a_drop_waits_for_the_partitions_writers_and_keeps_their_rows, .init = clean,
     .timeout = 60)
{
    usher_store *writer = testdb_store(&cfg);
    PGconn *dropper = PQconnectdb(cfg.database_url);
    PGresult *res;

    cr_assert_eq(PQstatus(dropper), CONNECTION_OK, "%s", PQerrorMessage(dropper));
    events();
    testdb_exec(st, "SELECT usher_partition_create('analytics_minute', 'minute', 'month',"
                    " '2020-01-10 00:00Z')");
    testdb_exec(writer, "BEGIN");
    testdb_exec(writer, "INSERT INTO analytics_minute (event_id, minute, metric, count)"
                        " SELECT id, '2020-01-10 10:00Z', 'registration', 4 FROM events"
                        " WHERE name = 'live'");
    cr_assert_eq(PQsendQuery(dropper, "SELECT usher_partition_drop('analytics_minute', now(),"
                                      " now() - interval '90 days')"),
                 1, "%s", PQerrorMessage(dropper));
    wait_for_a_lock(dropper, "the drop never waited for the writer");
    testdb_exec(writer, "COMMIT");
    usher_store_free(writer);

    res = PQgetResult(dropper);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(dropper));
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "0", "a partition with a live event's row dropped");
    PQclear(res);
    cr_assert_null(PQgetResult(dropper));
    PQfinish(dropper);
    cr_assert_eq(count("SELECT sum(count) FROM analytics_minute_p202001"), 4);
}
