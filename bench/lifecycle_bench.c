/*
 * usher-bench-lifecycle: a year of weekly events on a simulated clock, with
 * the data lifecycle (platform/retention.h) running, to show whether the hot
 * tables and the API's reads stay flat (bench/README.md, "bench/lifecycle").
 *
 * Each simulated week is one event of --registrations attendees: their
 * registrations over the two weeks before it, and per attendee what the
 * platform writes, with timestamps set to the simulated time (nothing
 * waits): a ticket document (its own 2 KiB of bytes in the database store),
 * an inbox entry, a confirmation mail's usher_effects row, two webhook
 * deliveries with a ~300-byte payload (registration.created, checkin.ok),
 * a check-in scan for 90% of them on the event's day, and the per-minute
 * rollups. After each week the retention pass runs as of that week's end
 * (unless --no-retention), then a plain VACUUM of the tables it deletes
 * from, standing in for the week of autovacuum that a year squeezed into
 * minutes never gets (unless --no-vacuum). At each simulated month's first week a JSON line
 * gives the hot tables' rows and bytes (all partitions), and the median and
 * p95 of 200 runs of each read the API serves from them: the deliveries log
 * of the organizer's endpoint (GET /v1/webhooks/{id}/deliveries), a recent
 * attendee's inbox (GET /v1/me/notifications), the admitted-once check of
 * a check-in, and a live event's rollups.
 *
 *   usher-bench-lifecycle [--config FILE] [--weeks N] [--registrations N]
 *                         [--no-retention] [--no-vacuum]
 *
 * The database ($USHER_DATABASE_URL) must be migrated and empty of events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "config.h"
#include "inttext.h"
#include "retention.h"
#include "store.h"

const char bench_program[] = "usher-bench-lifecycle";

#define WEEK_S     (7 * 86400LL)
#define READ_RUNS  200
#define START_UNIX 1925164800LL /* 2031-01-03 00:00 UTC, a Friday */

typedef struct opts {
    const char *config;
    int weeks;
    int registrations;
    bool retention;
    bool vacuum;
} opts;

/* $1 organizer, $2 event start (Unix s), $3 registrations. One week's event and its data. */
static const char week_sql[] =
    "WITH e AS (INSERT INTO events (organizer_id, name, starts_at, ends_at, created_at)"
    "  VALUES ($1::bigint, 'Week', to_timestamp($2::float8), to_timestamp($2::float8)"
    "  + interval '10 hours', to_timestamp($2::float8) - interval '3 weeks') RETURNING id),"
    " t AS (INSERT INTO ticket_types (event_id, name, capacity) SELECT id, 'GA', $3::int FROM e"
    "  RETURNING id, event_id),"
    " r AS (INSERT INTO registrations (event_id, ticket_type_id, name, email, created_at)"
    "  SELECT t.event_id, t.id, 'Attendee ' || g, 'a' || g || '@example.org',"
    "  to_timestamp($2::float8) - interval '14 days' + g * (interval '14 days' / $3::int)"
    "  FROM t, generate_series(1, $3::int) g RETURNING id, event_id, created_at),"
    " b AS (INSERT INTO document_blobs (sha256, size, chunk_size, chunks)"
    "  SELECT encode(sha256(('ticket ' || id)::bytea), 'hex'), 2048, 262144, 1 FROM r"
    "  RETURNING sha256),"
    " c AS (INSERT INTO document_chunks (sha256, seq, data)"
    "  SELECT sha256, 0, decode(repeat(sha256, 64), 'hex') FROM b),"
    " d AS (INSERT INTO documents (kind, event_id, registration_id, filename, content_type,"
    "  sha256, size, created_at) SELECT 'ticket', event_id, id, 'ticket.pdf', 'application/pdf',"
    "  encode(sha256(('ticket ' || id)::bytea), 'hex'), 2048, created_at FROM r),"
    " n AS (INSERT INTO notifications (registration_id, title, body, created_at)"
    "  SELECT id, 'Your ticket', 'See you there', created_at FROM r),"
    " x AS (INSERT INTO usher_effects (key, created_at) SELECT 'bench:' || id, created_at FROM r),"
    " s AS (INSERT INTO scans (event_id, registration_id, gate, result, scanned_at)"
    "  SELECT event_id, id, 'A', 'ok', to_timestamp($2::float8) + (id % 120) * interval '1 minute'"
    "  FROM r WHERE id % 10 <> 0),"
    " w AS (INSERT INTO webhook_deliveries (endpoint_id, attempt, event, payload, status_code,"
    "  latency_ms, created_at)"
    "  SELECT (SELECT id FROM webhook_endpoints WHERE organizer_id = $1::bigint), 1, k.event,"
    "  jsonb_build_object('registration_id', r.id, 'event_id', r.event_id, 'name',"
    "  'Attendee ' || r.id, 'email', 'a' || r.id || '@example.org', 'ticket_type', 'GA',"
    "  'pad', repeat('x', 120)), 200, 12, CASE k.event WHEN 'checkin.ok' THEN"
    "  to_timestamp($2::float8) + (r.id % 120) * interval '1 minute' ELSE r.created_at END"
    "  FROM r, (VALUES ('registration.created'), ('checkin.ok')) k(event)),"
    " a AS (INSERT INTO analytics_minute (event_id, minute, metric, count)"
    "  SELECT event_id, date_trunc('minute', created_at), 'registration', count(*) FROM r"
    "  GROUP BY 1, 2)"
    " SELECT id FROM e";

static const char vacuum_sql[] =
    "VACUUM scans, notifications, usher_effects, documents, document_blobs, document_chunks";

static const char *const sizes_sql =
    "SELECT"
    " (SELECT count(*) FROM webhook_deliveries), (SELECT count(*) FROM scans),"
    " (SELECT count(*) FROM notifications), (SELECT count(*) FROM analytics_minute),"
    " (SELECT count(*) FROM usher_effects), (SELECT count(*) FROM documents),"
    " (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM"
    "  pg_partition_tree('webhook_deliveries')),"
    " pg_total_relation_size('scans') + pg_total_relation_size('notifications')"
    " + pg_total_relation_size('usher_effects') + pg_total_relation_size('documents')"
    " + (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM"
    "  pg_partition_tree('analytics_minute')),"
    " pg_total_relation_size('document_blobs') + pg_total_relation_size('document_chunks'),"
    " (SELECT count(*) FROM usher_partitions('webhook_deliveries'))"
    " + (SELECT count(*) FROM usher_partitions('analytics_minute'))";

/* The reads the API serves from these tables, each with its one id parameter. */
static const struct read {
    const char *name;
    const char *id_sql;
    const char *sql;
} reads[] = {
    { "deliveries", "SELECT max(id) FROM webhook_endpoints",
      "SELECT json_agg(d) FROM (SELECT id, endpoint_id, job_id, attempt, event, payload,"
      " status_code, latency_ms, error, created_at FROM webhook_deliveries"
      " WHERE endpoint_id = $1 ORDER BY id DESC LIMIT 50) d" },
    { "inbox", "SELECT max(registration_id) FROM notifications",
      "SELECT json_agg(n) FROM (SELECT id, title, body, created_at, read_at FROM notifications"
      " WHERE registration_id = $1 ORDER BY created_at DESC LIMIT 50) n" },
    { "checkin", "SELECT max(registration_id) FROM scans",
      "SELECT scanned_at, gate FROM scans WHERE registration_id = $1 AND result = 'ok'" },
    { "rollups", "SELECT max(event_id) FROM analytics_minute",
      "SELECT metric, sum(count) FROM analytics_minute WHERE event_id = $1 GROUP BY metric" },
};

static int exec_ints(usher_store *st, const char *sql, int nparams, const char *const *params,
                     long long *out, int n)
{
    PGresult *res = NULL;
    usher_err err = usher_store_exec(st, sql, nparams, params, &res);

    if (err != USHER_OK)
        return bench_fail(st, err, sql);
    for (int i = 0; i < n && i < PQnfields(res); i++)
        out[i] = PQgetisnull(res, 0, i) ? 0 : strtoll(PQgetvalue(res, 0, i), NULL, 10);
    PQclear(res);
    return 0;
}

/* Times READ_RUNS runs of read r; prints "name":{"p50_ms":..,"p95_ms":..}. */
static int time_read(usher_store *st, const struct read *r)
{
    int64_t lat[READ_RUNS];
    long long id;
    char idt[USHER_INT_TEXT_MAX];
    const char *params[] = { idt };

    if (exec_ints(st, r->id_sql, 0, NULL, &id, 1) != 0)
        return 1;
    usher_int_text(id, idt);
    for (int i = 0; i < READ_RUNS; i++) {
        PGresult *res = NULL;
        int64_t t0 = bench_now_ns();
        usher_err err = usher_store_exec(st, r->sql, 1, params, &res);

        lat[i] = bench_now_ns() - t0;
        PQclear(res);
        if (err != USHER_OK)
            return bench_fail(st, err, r->name);
    }
    qsort(lat, READ_RUNS, sizeof(lat[0]), bench_compare_int64);
    printf("\"%s\":{\"p50_ms\":%.3f,\"p95_ms\":%.3f}", r->name,
           bench_percentile_ms(lat, READ_RUNS, 50, NS_PER_MS),
           bench_percentile_ms(lat, READ_RUNS, 95, NS_PER_MS));
    return 0;
}

/* The month's line. */
static int report(usher_store *st, int week, int64_t sim_now, double retention_s)
{
    long long v[10];
    char date[32];
    time_t t = (time_t)sim_now;
    struct tm tm;

    if (exec_ints(st, sizes_sql, 0, NULL, v, 10) != 0)
        return 1;
    strftime(date, sizeof(date), "%Y-%m-%d", gmtime_r(&t, &tm));
    printf("{\"week\":%d,\"date\":\"%s\",\"rows\":{\"deliveries\":%lld,\"scans\":%lld,"
           "\"notifications\":%lld,\"rollups\":%lld,\"effects\":%lld,\"documents\":%lld},"
           "\"mb\":{\"deliveries\":%.1f,\"other_tables\":%.1f,\"document_bytes\":%.1f},"
           "\"partitions\":%lld,\"retention_s\":%.2f,\"reads\":{",
           week, date, v[0], v[1], v[2], v[3], v[4], v[5], v[6] / 1048576.0, v[7] / 1048576.0,
           v[8] / 1048576.0, v[9], retention_s);
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        if (i > 0)
            putchar(',');
        if (time_read(st, &reads[i]) != 0)
            return 1;
    }
    printf("}}\n");
    fflush(stdout);
    return 0;
}

static int parse(int argc, char **argv, opts *o)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            o->config = argv[++i];
        else if (strcmp(argv[i], "--weeks") == 0 && i + 1 < argc)
            o->weeks = atoi(argv[++i]);
        else if (strcmp(argv[i], "--registrations") == 0 && i + 1 < argc)
            o->registrations = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-retention") == 0)
            o->retention = false;
        else if (strcmp(argv[i], "--no-vacuum") == 0)
            o->vacuum = false;
        else {
            fprintf(stderr, "%s: unknown argument %s\n", bench_program, argv[i]);
            return 2;
        }
    }
    if (o->weeks < 1 || o->weeks > 520 || o->registrations < 1 || o->registrations > 100000) {
        fprintf(stderr, "%s: --weeks 1..520, --registrations 1..100000\n", bench_program);
        return 2;
    }
    return 0;
}

/* The organizer and its webhook endpoint; its id into org. */
static int organizer(usher_store *st, char *org)
{
    long long id;

    if (exec_ints(st,
                  "WITH o AS (INSERT INTO organizers (name) VALUES ('Bench') RETURNING id),"
                  " w AS (INSERT INTO webhook_endpoints (organizer_id, url, secret)"
                  "  SELECT id, 'https://example.org/hook', 's' FROM o) SELECT id FROM o",
                  0, NULL, &id, 1) != 0)
        return 1;
    usher_int_text(id, org);
    return 0;
}

/* Weeks of events; the retention pass after each as of its end. */
static int year(const usher_config *cfg, usher_store *st, const opts *o)
{
    char org[USHER_INT_TEXT_MAX], start[USHER_INT_TEXT_MAX], regs[USHER_INT_TEXT_MAX];
    int last_month = -1;

    if (organizer(st, org) != 0)
        return 1;
    usher_int_text(o->registrations, regs);
    for (int w = 0; w < o->weeks; w++) {
        int64_t event_at = START_UNIX + w * WEEK_S, sim_now = event_at + WEEK_S - 86400;
        const char *params[] = { org, usher_int_text(event_at, start), regs };
        usher_retention_report r = { 0 };
        long long id;
        double retention_s = 0;
        time_t t = (time_t)sim_now;
        struct tm tm;

        if (exec_ints(st, week_sql, 3, params, &id, 1) != 0)
            return 1;
        if (o->retention) {
            int64_t t0 = bench_now_ns();
            usher_err err = usher_retention_run(cfg, st, sim_now, &r);

            if (err != USHER_OK)
                return bench_fail(st, err, "retention");
            retention_s = bench_seconds_between(t0, bench_now_ns());
        }
        /* A week of autovacuum, which a year squeezed into minutes never gives it. */
        if (o->vacuum && exec_ints(st, vacuum_sql, 0, NULL, NULL, 0) != 0)
            return 1;
        gmtime_r(&t, &tm);
        if (tm.tm_mon != last_month && report(st, w + 1, sim_now, retention_s) != 0)
            return 1;
        last_month = tm.tm_mon;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o = { .weeks = 52, .registrations = 1000, .retention = true, .vacuum = true };
    usher_config cfg = { 0 };
    usher_store *st = NULL;
    char errbuf[512];
    int rc;

    if ((rc = parse(argc, argv, &o)) != 0)
        return rc;
    if (usher_config_load(&cfg, o.config != NULL ? o.config : usher_config_default_path(), errbuf,
                          sizeof(errbuf)) != USHER_OK) {
        fprintf(stderr, "%s: config: %s\n", bench_program, errbuf);
        return 1;
    }
    if (bench_store_open(&cfg, &st) != USHER_OK) {
        usher_config_free(&cfg);
        return 1;
    }
    rc = year(&cfg, st, &o);
    usher_store_free(st);
    usher_config_free(&cfg);
    return rc;
}
