/*
 * Organizer reports end to end: usher_report_create writes the report and
 * its job, the report handler runs in this process (after a real claim) or
 * in a real usher-worker, and the stored file is read back: the CSV with a
 * strict RFC 4180 parser and compared with the rows the database holds,
 * the PDF with pdfinfo and pdftotext page by page. Progress is checked
 * through triggers that log every value written, and the document's
 * sha256 and size against the file on disk.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "docstore.h"
#include "enqueue.h"
#include "handler.h"
#include "pdf_table.h"
#include "report.h"
#include "report_check.h"
#include "testdb.h"
#include "testjob.h"
#include "testproc.h"

__attribute__((constructor)) static void use_reports_config(void)
{
    setenv("USHER_CONFIG", REPORTS_TEST_CONF, 1);
}

TESTDB_SUITE(reports, "usher_test_reports");

#define UTC        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"
#define FIRST_NAME "Zoë Ångström"
#define LAST_NAME  "Łukasz Żółć"

static char workdir[64];

/* A fresh document store for this test, in a directory of its own. */
static void use_workdir(void)
{
    char docs[128];

    snprintf(workdir, sizeof(workdir), "/tmp/usher-reports-XXXXXX");
    cr_assert_not_null(mkdtemp(workdir));
    snprintf(docs, sizeof(docs), "%s/documents", workdir);
    free(cfg.document_dir);
    cfg.document_dir = strdup(docs);
    cr_assert_not_null(cfg.document_dir);
}

static void remove_workdir(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
    cr_assert_eq(system(cmd), 0);
}

__attribute__((format(printf, 1, 2))) static void execf(const char *fmt, ...)
{
    char sql[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    testdb_exec(st, sql);
}

__attribute__((format(printf, 1, 2))) static long long scalarf(const char *fmt, ...)
{
    char sql[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return testdb_scalar(st, sql);
}

/*
 * An event with n generated registrations between FIRST_NAME (the lowest
 * id) and names that CSV and spreadsheets trip on, LAST_NAME last.
 */
static long long seed_event(int n)
{
    long long event = testdb_scalar(
        st, "WITH o AS (INSERT INTO organizers (name) VALUES ('Reports') RETURNING id)"
            " INSERT INTO events (organizer_id, name, starts_at, ends_at)"
            " SELECT id, 'Ωmega Conf 2026', '2026-12-05', '2026-12-06' FROM o RETURNING id");

    execf("INSERT INTO ticket_types (event_id, name, capacity) VALUES (%lld, 'Standard', 100000),"
          " (%lld, 'VIP, \"Gold\"', 100000)",
          event, event);
    execf("INSERT INTO registrations (event_id, ticket_type_id, name, email, created_at)"
          " SELECT %lld, (SELECT min(id) FROM ticket_types WHERE event_id = %lld), '" FIRST_NAME
          "', 'zoe@example.org', '2026-10-01T12:00:00Z'",
          event, event);
    execf(
        "INSERT INTO registrations (event_id, ticket_type_id, name, email, status, created_at)"
        " SELECT %lld, t.id, 'Attendee ' || i, 'a' || i || '@example.org',"
        "  CASE WHEN i %% 10 = 0 THEN 'cancelled' ELSE 'confirmed' END::usher_registration_status,"
        "  '2026-10-02T00:00:00Z'::timestamptz + i * interval '1 minute'"
        " FROM generate_series(1, %d) i, LATERAL (SELECT id FROM ticket_types"
        "  WHERE event_id = %lld ORDER BY id OFFSET i %% 2 LIMIT 1) t",
        event, n, event);
    execf("INSERT INTO registrations (event_id, ticket_type_id, name, email)"
          " SELECT %lld, (SELECT max(id) FROM ticket_types WHERE event_id = %lld), v.name, v.email"
          " FROM (VALUES (1, 'O''Brien, \"Jr\"', 'ob@example.org'),"
          "  (2, E'Line one\\nLine two', 'lines@example.org'),"
          "  (3, '=HYPERLINK(\"http://evil.example\")', '+1@example.org'),"
          "  (4, '-minus', '@at@example.org'), (5, '" LAST_NAME "', 'l@example.org'))"
          " AS v(o, name, email) ORDER BY v.o",
          event, event);
    return event;
}

/*
 * Scans: one 'ok' per registration of the first `admitted`, in reverse id
 * order and seven to a second (so scan time order is not id order and
 * ties cross page boundaries), plus unknown tickets and another event's.
 */
static void seed_scans(long long event, int admitted)
{
    execf("INSERT INTO scans (event_id, registration_id, gate, result, scanned_at)"
          " SELECT %lld, id, CASE WHEN id %% 3 = 0 THEN 'South, \"B\"' ELSE 'North' END, 'ok',"
          "  '2026-12-05T08:00:00Z'::timestamptz + ((%d - row_number() OVER (ORDER BY id)) / 7)"
          "  * interval '1 second'"
          " FROM (SELECT id FROM registrations WHERE event_id = %lld ORDER BY id LIMIT %d) r",
          event, admitted, event, admitted);
    execf("INSERT INTO scans (event_id, gate, result, scanned_at) SELECT %lld, 'North',"
          " 'unknown_ticket', '2026-12-05T08:00:30Z' FROM generate_series(1, 30)",
          event);
    execf("INSERT INTO scans (event_id, gate, result) SELECT %lld, 'Elsewhere', 'wrong_event'"
          " FROM generate_series(1, 5)",
          event + 100000);
}

/* Logs every progress value written to a report or a job, in order. */
static void log_progress(void)
{
    testdb_exec(st, "CREATE TABLE IF NOT EXISTS progress_log (seq bigserial, report_id bigint,"
                    " job_id bigint, progress int)");
    testdb_exec(st, "CREATE OR REPLACE FUNCTION log_progress() RETURNS trigger AS $$ BEGIN"
                    " IF TG_TABLE_NAME = 'reports' THEN INSERT INTO progress_log (report_id,"
                    " progress) VALUES (NEW.id, NEW.progress); ELSE INSERT INTO progress_log"
                    " (job_id, progress) VALUES (NEW.id, NEW.progress); END IF; RETURN NEW;"
                    " END $$ LANGUAGE plpgsql");
    testdb_exec(st, "CREATE OR REPLACE TRIGGER reports_progress AFTER UPDATE OF progress ON reports"
                    " FOR EACH ROW EXECUTE FUNCTION log_progress()");
    testdb_exec(st, "CREATE OR REPLACE TRIGGER jobs_progress AFTER UPDATE OF progress ON usher_jobs"
                    " FOR EACH ROW EXECUTE FUNCTION log_progress()");
}

static long long create_report(long long event, const char *kind, const char *format,
                               long long *job)
{
    usher_report_request req = {
        .event_id = event, .kind = kind, .format = format, .requested_by = "test@example.org"
    };
    int64_t report = 0, job_id = 0;

    cr_assert_eq(usher_report_create(st, &req, &report, &job_id), USHER_OK, "%s",
                 usher_store_errstr(st));
    cr_assert_gt(report, 0);
    cr_assert_gt(job_id, 0);
    if (job != NULL)
        *job = job_id;
    return report;
}

/* Claims the next report job as a worker would and runs its handler here. */
static usher_handler_result run_next(void)
{
    return testjob_claim_and_run(st, &cfg, "reports", "test", NULL);
}

/*
 * The report's file, read from the document store after checking that the
 * report is done and that its document row (kind, name, type, sha256,
 * size) describes exactly that file. The caller frees it.
 */
static char *report_file(long long report, const char *filename, const char *type, size_t *len)
{
    char sql[512];
    PGresult *res;
    char *data;

    snprintf(sql, sizeof(sql),
             "SELECT d.sha256, d.size, d.filename, d.content_type, d.kind, r.state, r.progress"
             " FROM reports r JOIN documents d ON d.id = r.document_id WHERE r.id = %lld",
             report);
    cr_assert_eq(usher_store_exec(st, sql, 0, NULL, &res), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_eq(PQntuples(res), 1, "report %lld has no document", report);
    cr_assert_str_eq(PQgetvalue(res, 0, 2), filename);
    cr_assert_str_eq(PQgetvalue(res, 0, 3), type);
    cr_assert_str_eq(PQgetvalue(res, 0, 4), "report");
    cr_assert_str_eq(PQgetvalue(res, 0, 5), "done");
    cr_assert_str_eq(PQgetvalue(res, 0, 6), "100");
    data = read_checked_document(&cfg, st, PQgetvalue(res, 0, 0), atol(PQgetvalue(res, 0, 1)), len);
    PQclear(res);
    return data;
}

/* The rows of sql ($1: the event) as the CSV should hold them, after header. */
static csv_records expected_rows(const char *sql, long long event, const char *header)
{
    char id[24];
    const char *params[] = { id };
    csv_records out;
    PGresult *res;

    snprintf(id, sizeof(id), "%lld", event);
    cr_assert_eq(usher_store_exec(st, sql, 1, params, &res), USHER_OK, "%s",
                 usher_store_errstr(st));
    out = csv_expected(res, header);
    PQclear(res);
    return out;
}

/* Every progress value logged for the report and its job: non-decreasing, ending at 100. */
static void assert_progress(long long report, long long job, long long min_updates)
{
    const char *who[] = { "report_id", "job_id" };
    long long id[] = { report, job };
    char sql[512];

    for (int i = 0; i < 2; i++) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM progress_log WHERE %s = %lld", who[i],
                 id[i]);
        cr_assert_geq(testdb_scalar(st, sql), min_updates, "too few progress updates of %s",
                      who[i]);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM (SELECT progress, lag(progress) OVER (ORDER BY seq) p"
                 " FROM progress_log WHERE %s = %lld) x WHERE progress < p",
                 who[i], id[i]);
        cr_assert_eq(testdb_scalar(st, sql), 0, "progress of %s went backwards", who[i]);
        snprintf(sql, sizeof(sql),
                 "SELECT progress FROM progress_log WHERE %s = %lld ORDER BY seq DESC LIMIT 1",
                 who[i], id[i]);
        cr_assert_eq(testdb_scalar(st, sql), 100, "progress of %s did not reach 100", who[i]);
    }
}

#define ATTENDEE_HEADER           \
    "registration id\x1fname\x1f" \
    "email\x1fticket type\x1fstatus\x1fregistered at"
#define CHECKIN_HEADER "scan time\x1fgate\x1fresult\x1fregistration id\x1fname"

static const char attendees_sql[] =
    "SELECT r.id, r.name, r.email, t.name, r.status, to_char(r.created_at AT TIME ZONE 'UTC', " UTC
    ") FROM registrations r JOIN ticket_types t ON t.id = r.ticket_type_id"
    " WHERE r.event_id = $1 ORDER BY r.id";

static const char checkins_sql[] =
    "SELECT to_char(s.scanned_at AT TIME ZONE 'UTC', " UTC "), s.gate, s.result,"
    " coalesce(s.registration_id::text, ''), coalesce(r.name, '')"
    " FROM scans s LEFT JOIN registrations r ON r.id = s.registration_id"
    " WHERE s.event_id = $1 ORDER BY s.scanned_at, s.id";

/* Runs the report's job here and checks its CSV against rows_sql's rows. */
static void check_csv_report(long long event, const char *kind, const char *rows_sql,
                             const char *header, long long rows)
{
    char filename[64];
    csv_records got, want;
    long long job, report;
    usher_handler_result r;
    size_t len;
    char *csv;

    log_progress();
    report = create_report(event, kind, "csv", &job);
    r = run_next();
    cr_assert_eq(r.outcome, USHER_OUTCOME_OK, "%s", r.error);
    snprintf(filename, sizeof(filename), "%s-event-%lld.csv", kind, event);
    csv = report_file(report, filename, "text/csv", &len);
    got = csv_parse(csv, len);
    want = expected_rows(rows_sql, event, header);
    cr_assert_eq((long long)want.n, rows + 1, "the seed did not make %lld rows", rows);
    csv_assert_same(&got, &want);
    cr_assert_eq(scalarf("SELECT rows FROM reports WHERE id = %lld", report), rows);
    /* 0, then one value per page of 1000 rows, then 100. */
    assert_progress(report, job, 2 + (rows + 999) / 1000);
    csv_records_free(&got);
    csv_records_free(&want);
    free(csv);
}

Test(reports, attendee_csv_rows_equal_the_database, .timeout = 300)
{
    long long event;

    use_workdir();
    event = seed_event(2500);
    check_csv_report(event, "attendees", attendees_sql, ATTENDEE_HEADER, 2506);
    remove_workdir();
}

Test(reports, checkin_csv_rows_equal_the_database_in_scan_time_order, .timeout = 300)
{
    long long event;

    use_workdir();
    event = seed_event(2500);
    seed_scans(event, 2100);
    check_csv_report(event, "checkins", checkins_sql, CHECKIN_HEADER, 2130);
    remove_workdir();
}

Test(reports, csv_quotes_what_it_must_and_defuses_formulas, .timeout = 300)
{
    long long event = 0, report;
    char filename[64];
    usher_handler_result r;
    size_t len;
    char *csv;

    use_workdir();
    event = seed_event(3);
    report = create_report(event, "attendees", "csv", NULL);
    r = run_next();
    cr_assert_eq(r.outcome, USHER_OUTCOME_OK, "%s", r.error);
    snprintf(filename, sizeof(filename), "attendees-event-%lld.csv", event);
    csv = report_file(report, filename, "text/csv", &len);
    cr_assert(strncmp(csv, "registration id,name,email,ticket type,status,registered at\r\n", 61) ==
                  0,
              "%s", csv);
    cr_assert(strstr(csv, ",\"O'Brien, \"\"Jr\"\"\",") != NULL, "%s", csv);
    cr_assert(strstr(csv, ",\"Line one\nLine two\",") != NULL, "%s", csv);
    cr_assert(strstr(csv, ",\"'=HYPERLINK(\"\"http://evil.example\"\")\",'+1@example.org,") != NULL,
              "%s", csv);
    cr_assert(strstr(csv, ",'-minus,'@at@example.org,\"VIP, \"\"Gold\"\"\",") != NULL, "%s", csv);
    cr_assert(strstr(csv, "," FIRST_NAME ",zoe@example.org,Standard,confirmed,"
                          "2026-10-01T12:00:00Z\r\n") != NULL,
              "%s", csv);
    free(csv);
    remove_workdir();
}

Test(reports, attendee_pdf_has_the_header_and_a_page_number_on_every_page, .timeout = 300)
{
    long long event, job, report, rows = 1206;
    long pages, want_pages;
    char filename[64], path[160], text[65536], page_no[64];
    usher_handler_result r;
    size_t len;
    char *pdf;
    FILE *f;

    use_workdir();
    log_progress();
    event = seed_event((int)rows - 6);
    report = create_report(event, "attendees", "pdf", &job);
    r = run_next();
    cr_assert_eq(r.outcome, USHER_OUTCOME_OK, "%s", r.error);
    snprintf(filename, sizeof(filename), "attendees-event-%lld.pdf", event);
    pdf = report_file(report, filename, "application/pdf", &len);
    cr_assert_eq(memcmp(pdf, "%PDF-", 5), 0);
    snprintf(path, sizeof(path), "%s/report.pdf", workdir);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(pdf, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    free(pdf);
    pages = pdf_page_count(path);
    want_pages = (long)((rows + (long long)usher_pdf_table_rows_per_page() - 1) /
                        (long long)usher_pdf_table_rows_per_page());
    cr_assert_gt(pages, 1);
    cr_assert_eq(pages, want_pages, "%ld pages for %lld rows", pages, rows);
    for (long p = 1; p <= pages; p++) {
        pdf_page_text(path, p, text, sizeof(text));
        snprintf(page_no, sizeof(page_no), "Page %ld of %ld", p, pages);
        cr_assert(strstr(text, page_no) != NULL, "no '%s' on page %ld: %s", page_no, p, text);
        cr_assert(strstr(text, "Attendees \xe2\x80\x94 \xce\xa9mega Conf 2026") != NULL,
                  "no title on page %ld", p);
        cr_assert(strstr(text, "registration id") != NULL && strstr(text, "ticket type") &&
                      strstr(text, "registered at") != NULL,
                  "no header row on page %ld: %s", p, text);
    }
    pdf_page_text(path, 1, text, sizeof(text));
    cr_assert(strstr(text, FIRST_NAME) != NULL, "%s", text);
    pdf_page_text(path, pages, text, sizeof(text));
    cr_assert(strstr(text, LAST_NAME) != NULL, "%s", text);
    cr_assert(strstr(text, "O'Brien, \"Jr\"") != NULL, "%s", text);
    cr_assert(strstr(text, "Line one Line two") != NULL, "%s", text);
    assert_progress(report, job, 4);
    remove_workdir();
}

Test(reports, a_retried_job_records_no_second_document, .timeout = 300)
{
    long long event, job, report;
    usher_handler_result r;

    use_workdir();
    event = seed_event(40);
    report = create_report(event, "attendees", "csv", &job);
    r = run_next();
    cr_assert_eq(r.outcome, USHER_OUTCOME_OK, "%s", r.error);
    /* The completion was lost: the lease ran out and the job runs again. */
    execf("UPDATE usher_jobs SET state = 'available', locked_by = NULL WHERE id = %lld", job);
    r = run_next();
    cr_assert_eq(r.outcome, USHER_OUTCOME_OK, "%s", r.error);
    cr_assert_eq(scalarf("SELECT count(*) FROM documents WHERE event_id = %lld", event), 1);
    cr_assert_eq(scalarf("SELECT count(*) FROM reports WHERE id = %lld AND state = 'done'"
                         " AND rows = 46 AND progress = 100",
                         report),
                 1);
    /* The same rows again make the same bytes: one file, two records of it. */
    create_report(event, "attendees", "csv", NULL);
    r = run_next();
    cr_assert_eq(r.outcome, USHER_OUTCOME_OK, "%s", r.error);
    cr_assert_eq(scalarf("SELECT count(DISTINCT sha256) * 10 + count(*) FROM documents"
                         " WHERE event_id = %lld",
                         event),
                 12);
    remove_workdir();
}

static void enqueue_report_job(const char *kind, const char *payload)
{
    usher_enqueued out;

    cr_assert_eq(
        usher_enqueue(st,
                      &(usher_enqueue_opts){ .queue = "reports", .kind = kind, .payload = payload },
                      &out),
        USHER_OK, "%s", usher_store_errstr(st));
}

Test(reports, an_unknown_or_mismatched_report_is_a_permanent_failure)
{
    long long event, job, report;
    usher_handler_result r;

    use_workdir();
    enqueue_report_job("report.attendees", "{\"report_id\":987654321}");
    r = run_next();
    cr_assert_eq(r.outcome, USHER_OUTCOME_PERMANENT);
    cr_assert(strstr(r.error, "no report 987654321") != NULL, "%s", r.error);
    enqueue_report_job("report.checkins", "{\"report\":1}");
    r = run_next();
    cr_assert_eq(r.outcome, USHER_OUTCOME_PERMANENT);
    cr_assert(strstr(r.error, "report_id") != NULL, "%s", r.error);
    event = seed_event(1);
    report = create_report(event, "checkins", "csv", &job);
    execf("UPDATE usher_jobs SET kind = 'report.attendees' WHERE id = %lld", job);
    r = run_next();
    cr_assert_eq(r.outcome, USHER_OUTCOME_PERMANENT);
    cr_assert(strstr(r.error, "is a checkins report") != NULL, "%s", r.error);
    cr_assert_eq(
        scalarf("SELECT count(*) FROM reports WHERE id = %lld AND state = 'queued'", report), 1);
    remove_workdir();
}

Test(reports, an_unreachable_database_is_retried)
{
    usher_config down = cfg;
    usher_handler_result r = { .outcome = USHER_OUTCOME_OK, .delay_ms = -1 };
    usher_job job = { .id = 1, .kind = "report.attendees", .attempt = 1, .max_attempts = 5 };
    json_t *payload = json_pack("{s:i}", "report_id", 1);
    usher_handler_ctx *ctx;

    static char nowhere[] = "postgresql://127.0.0.1:1/usher?connect_timeout=5";

    down.database_url = nowhere;
    ctx = usher_handler_ctx_new(&down);
    cr_assert_not_null(ctx);
    usher_handler_find(ctx, "report.attendees")->run(ctx, &job, payload, &r);
    cr_assert_eq(r.outcome, USHER_OUTCOME_RETRY, "%s", r.error);
    usher_handler_ctx_free(ctx);
    json_decref(payload);
}

Test(reports, create_is_one_transaction_and_get_follows_the_job)
{
    usher_report_request req = { .event_id = 0, .kind = "attendees", .format = "csv" };
    long long event, before, report, job;
    int64_t r = 0, j = 0;
    json_t *got = NULL;

    event = seed_event(1);
    before = testdb_scalar(st, "SELECT (SELECT count(*) FROM reports) * 1000000"
                               " + (SELECT count(*) FROM usher_jobs)");
    req.event_id = 999999999;
    cr_assert_eq(usher_report_create(st, &req, &r, &j), USHER_ERR_NOT_FOUND);
    req.event_id = event;
    req.kind = "sales";
    cr_assert_eq(usher_report_create(st, &req, &r, &j), USHER_ERR_INVALID);
    req.kind = "checkins";
    req.format = "xlsx";
    cr_assert_eq(usher_report_create(st, &req, &r, &j), USHER_ERR_INVALID);
    req.format = "pdf";
    testdb_exec(st, "BEGIN");
    cr_assert_eq(usher_report_create(st, &req, &r, &j), USHER_OK, "%s", usher_store_errstr(st));
    testdb_exec(st, "ROLLBACK");
    cr_assert_eq(testdb_scalar(st, "SELECT (SELECT count(*) FROM reports) * 1000000"
                                   " + (SELECT count(*) FROM usher_jobs)"),
                 before, "a refused or rolled back request left rows behind");

    report = create_report(event, "checkins", "pdf", &job);
    cr_assert_eq(usher_report_get(st, report, &got), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_str_eq(json_string_value(json_object_get(got, "state")), "queued");
    cr_assert_eq(json_integer_value(json_object_get(got, "job_id")), job);
    cr_assert_str_eq(json_string_value(json_object_get(got, "requested_by")), "test@example.org");
    json_decref(got);
    execf("UPDATE usher_jobs SET state = 'dead', finished_at = now(),"
          " errors = '[{\"attempt\": 1, \"error\": \"disk full\"}]' WHERE id = %lld",
          job);
    cr_assert_eq(usher_report_get(st, report, &got), USHER_OK, "%s", usher_store_errstr(st));
    cr_assert_str_eq(json_string_value(json_object_get(got, "state")), "failed");
    cr_assert_str_eq(json_string_value(json_object_get(got, "error")), "disk full");
    json_decref(got);
    cr_assert_eq(usher_report_get(st, 987654321, &got), USHER_ERR_NOT_FOUND);
}

static pid_t start_worker(void)
{
    const char *argv[] = {
        USHER_WORKER_PATH, "--config", REPORTS_TEST_CONF, "--pool", "tests", NULL
    };
    char log[128];
    pid_t pid;

    snprintf(log, sizeof(log), "%s/worker.log", workdir);
    cr_assert_eq(setenv("USHER_DOCUMENT_DIR", cfg.document_dir, 1), 0);
    cr_assert_eq(setenv("USHER_DATABASE_URL", cfg.database_url, 1), 0);
    pid = testproc_start(argv, log);
    cr_assert_gt(pid, 0);
    return pid;
}

/* The worker's log holds no sanitizer report (the build-asan worker writes them there). */
static void assert_clean_log(void)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd),
             "test -f '%s/worker.log' && ! grep -qE 'Sanitizer|runtime error' '%s/worker.log'",
             workdir, workdir);
    cr_assert_eq(system(cmd), 0, "see %s/worker.log", workdir);
}

static long long worker_reports[2];

/* Both reports done and the bogus job dead. */
static bool worker_finished(void *arg)
{
    (void)arg;
    return scalarf("SELECT count(*) FROM reports WHERE id IN (%lld, %lld) AND state = 'done'",
                   worker_reports[0], worker_reports[1]) == 2 &&
           testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'") == 1;
}

Test(reports, the_worker_runs_reports_to_done_and_a_bogus_one_to_the_dead_letters, .timeout = 300)
{
    long long event, jobs[2];
    char filename[64];
    json_t *got = NULL;
    size_t len;
    char *data;
    int status;
    pid_t pid;

    use_workdir();
    log_progress();
    event = seed_event(600);
    seed_scans(event, 400);
    worker_reports[0] = create_report(event, "attendees", "pdf", &jobs[0]);
    worker_reports[1] = create_report(event, "checkins", "csv", &jobs[1]);
    enqueue_report_job("report.checkins", "{\"report_id\":987654321}");
    pid = start_worker();
    cr_assert(testproc_wait_for(worker_finished, NULL, 120000),
              "the reports did not finish (see %s/worker.log)", workdir);
    kill(pid, SIGTERM);
    cr_assert(testproc_wait(pid, 60000, &status), "usher-worker did not stop");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "usher-worker exit %d", status);
    assert_clean_log();

    cr_assert_eq(usher_report_get(st, worker_reports[0], &got), USHER_OK);
    cr_assert_str_eq(json_string_value(json_object_get(got, "state")), "done");
    cr_assert_eq(json_integer_value(json_object_get(got, "progress")), 100);
    cr_assert_eq(json_integer_value(json_object_get(got, "rows")), 606);
    cr_assert_gt(json_integer_value(json_object_get(got, "document_id")), 0);
    json_decref(got);
    snprintf(filename, sizeof(filename), "attendees-event-%lld.pdf", event);
    free(report_file(worker_reports[0], filename, "application/pdf", &len));
    snprintf(filename, sizeof(filename), "checkins-event-%lld.csv", event);
    data = report_file(worker_reports[1], filename, "text/csv", &len);
    cr_assert(strncmp(data, "scan time,gate,result,registration id,name\r\n", 44) == 0);
    free(data);
    for (int i = 0; i < 2; i++)
        assert_progress(worker_reports[i], jobs[i], 3);
    cr_assert_eq(
        scalarf("SELECT count(*) FROM usher_jobs WHERE id IN (%lld, %lld)", jobs[0], jobs[1]), 0,
        "completed report jobs are still there");
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs WHERE state = 'dead'"
                                   " AND attempt = 1 AND errors->-1->>'error' LIKE '%no report%'"),
                 1, "the unknown report was not a permanent failure");
    remove_workdir();
}

Test(reports, the_nightly_job_requests_one_report_per_current_event_once)
{
    long long on = seed_event(1), ended = seed_event(1), old = seed_event(1), job;
    usher_handler_result r;

    execf("UPDATE events SET starts_at = now() - interval '2 hours',"
          " ends_at = now() + interval '2 hours' WHERE id = %lld",
          on);
    execf("UPDATE events SET starts_at = now() - interval '30 hours',"
          " ends_at = now() - interval '20 hours' WHERE id = %lld",
          ended);
    execf("UPDATE events SET starts_at = now() - interval '30 days',"
          " ends_at = now() - interval '29 days' WHERE id = %lld",
          old);
    enqueue_report_job("report.checkins", "{\"scope\":\"all\"}");
    job = testdb_scalar(st, "SELECT max(id) FROM usher_jobs");
    for (int attempt = 1; attempt <= 2; attempt++) {
        r = run_next();
        cr_assert_eq(r.outcome, USHER_OUTCOME_OK, "%s", r.error);
        /* Every current event, once, with a queued checkins job; the old one has none. */
        cr_assert_eq(scalarf("SELECT count(*) FROM reports r JOIN usher_jobs j ON j.id = r.job_id"
                             " WHERE r.requested_by = 'job:%lld' AND r.kind = 'checkins'"
                             " AND r.format = 'csv' AND j.kind = 'report.checkins'",
                             job),
                     testdb_scalar(st, "SELECT count(*) FROM events WHERE starts_at <= now()"
                                       " AND ends_at >= now() - interval '1 day'"),
                     "attempt %d", attempt);
        cr_assert_eq(scalarf("SELECT count(*) FROM reports WHERE requested_by = 'job:%lld'"
                             " AND event_id IN (%lld, %lld)",
                             job, on, ended),
                     2);
        cr_assert_eq(scalarf("SELECT count(*) FROM reports WHERE event_id = %lld", old), 0);
        /* The completion was lost: the same job runs again. */
        execf("UPDATE usher_jobs SET state = 'available', locked_by = NULL WHERE id = %lld", job);
    }
}
