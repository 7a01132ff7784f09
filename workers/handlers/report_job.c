/*
 * report.attendees and report.checkins {report_id}: an organizer's list of
 * an event's registrations or door scans, as CSV or as a PDF table, stored
 * as a 'report' document and linked from the report row. The periodic
 * form {scope: "all"} requests one such report per event (report_all.c).
 *
 * Rows are read in pages of PAGE_ROWS by keyset pagination (after the last
 * key seen, never OFFSET), so each page costs the same however deep it is
 * and only one page is in memory. The report covers the rows that existed
 * when it started: the highest id then bounds every page, so registrations
 * arriving meanwhile do not make it run on. After each page the progress
 * goes to the report row and to the job's row. With [database] read_url
 * the rows are read from a replica once it has replayed everything the
 * primary had when the report started (engine/replica_reader.h); the
 * report's row, its progress and its document are written on the primary.
 *
 * Retries are safe: the document and the report's document_id are written
 * by one statement that only fires while document_id is NULL (the row
 * locked), and the file is content-addressed, so a second run, even a
 * concurrent one after a lease rescue, records no second document.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docstore.h"
#include "inttext.h"
#include "job_handlers.h"
#include "job_progress.h"
#include "log.h"
#include "report_all.h"
#include "report_output.h"

#define PAGE_ROWS      1000
#define EVENT_NAME_MAX (300 * 4 + 1) /* events.name: up to 300 characters of UTF-8 */
#define READ_PERCENT   95            /* reading is most of the work; storing the rest */
#define UTC_TIMESTAMP  "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"

/* What one kind of report reads and how it shows it. */
typedef struct report_spec {
    const char *kind; /* reports.kind */
    const char *title;
    const usher_pdf_column *cols;
    size_t ncols;
    const char *count_sql; /* $1 event -> rows, highest id */
    /*
     * $1 event, $2 highest id, $3 last id, $4 limit, [$5 last sort time]:
     * the ncols cells, then the key of the row (id, sort time).
     */
    const char *page_sql;
    int page_params;
} report_spec;

static const usher_pdf_column attendee_cols[] = {
    { "registration id", 1.2f }, { "name", 3.0f },   { "email", 3.2f },
    { "ticket type", 2.0f },     { "status", 1.2f }, { "registered at", 2.0f },
};

static const usher_pdf_column checkin_cols[] = {
    { "scan time", 2.0f },       { "gate", 1.5f }, { "result", 2.0f },
    { "registration id", 1.4f }, { "name", 3.5f },
};

static const report_spec specs[] = {
    {
        .kind = "attendees",
        .title = "Attendees",
        .cols = attendee_cols,
        .ncols = sizeof(attendee_cols) / sizeof(attendee_cols[0]),
        .count_sql = "SELECT count(*), coalesce(max(id), 0) FROM registrations WHERE event_id = $1",
        .page_sql = "SELECT r.id, r.name, r.email, t.name, r.status,"
                    " to_char(r.created_at AT TIME ZONE 'UTC', " UTC_TIMESTAMP "), r.id, ''"
                    " FROM registrations r JOIN ticket_types t ON t.id = r.ticket_type_id"
                    " WHERE r.event_id = $1 AND r.id <= $2 AND r.id > $3"
                    " ORDER BY r.id LIMIT $4",
        .page_params = 4,
    },
    {
        .kind = "checkins",
        .title = "Check-ins",
        .cols = checkin_cols,
        .ncols = sizeof(checkin_cols) / sizeof(checkin_cols[0]),
        .count_sql = "SELECT count(*), coalesce(max(id), 0) FROM scans WHERE event_id = $1",
        /* In scan time order along scans_event_time; the id breaks ties. */
        .page_sql = "SELECT to_char(s.scanned_at AT TIME ZONE 'UTC', " UTC_TIMESTAMP "), s.gate,"
                    " s.result, s.registration_id, r.name, s.id, s.scanned_at"
                    " FROM scans s LEFT JOIN registrations r ON r.id = s.registration_id"
                    " WHERE s.event_id = $1 AND s.id <= $2 AND s.scanned_at >= $5::timestamptz"
                    " AND (s.scanned_at, s.id) > ($5::timestamptz, $3::int8)"
                    " ORDER BY s.scanned_at, s.id LIMIT $4",
        .page_params = 5,
    },
};

static const char load_sql[] =
    "SELECT r.event_id, r.kind, r.format, r.document_id IS NOT NULL, e.name"
    " FROM reports r JOIN events e ON e.id = r.event_id WHERE r.id = $1";

static const char start_sql[] =
    "UPDATE reports SET state = 'running', progress = 0, error = NULL,"
    " finished_at = NULL, job_id = $2 WHERE id = $1 AND state <> 'done'";

static const char progress_sql[] = "UPDATE reports SET progress = $2 WHERE id = $1";

static const char finish_sql[] =
    "WITH r AS (SELECT id, event_id FROM reports WHERE id = $1 AND document_id IS NULL FOR UPDATE),"
    " doc AS (INSERT INTO documents (kind, event_id, job_id, filename, content_type, sha256, size)"
    "  SELECT 'report', r.event_id, $2, $3, $4, $5, $6 FROM r RETURNING id)"
    " UPDATE reports SET state = 'done', progress = 100, rows = $7, document_id = doc.id,"
    "  error = NULL, finished_at = now() FROM doc WHERE reports.id = $1";

static const char failed_sql[] = "UPDATE reports SET error = $2,"
                                 " state = CASE WHEN $3::bool THEN 'failed' ELSE state END,"
                                 " finished_at = CASE WHEN $3::bool THEN now() ELSE finished_at END"
                                 " WHERE id = $1 AND state <> 'done'";

/* One run of a report: what it is, how far it got, where its rows go. */
typedef struct run {
    usher_store *st; /* the primary: the report's row, progress, document */
    usher_store *rd; /* its rows: a replica caught up with st, or st */
    usher_replica_reader *replicas;
    const usher_job *job;
    const report_spec *spec;
    char id[USHER_INT_TEXT_MAX], event[USHER_INT_TEXT_MAX], format[8], event_name[EVENT_NAME_MAX];
    int64_t total, rows;
    char bound[USHER_INT_TEXT_MAX], last_id[USHER_INT_TEXT_MAX], last_time[64];
    usher_report_output *out;
} run;

static const report_spec *spec_of(const char *kind)
{
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        if (strcmp(specs[i].kind, kind) == 0)
            return &specs[i];
    }
    return NULL;
}

/* Loads the report; false (r set) if it cannot run. *done: it already has its document. */
static bool load(run *w, usher_handler_result *r, bool *done)
{
    const char *params[] = { w->id };
    PGresult *res;
    usher_err err = usher_store_exec(w->st, load_sql, 1, params, &res);

    if (err != USHER_OK) {
        usher_handler_store_failed(r, w->st, err, w->job->kind);
        return false;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "no report %s", w->id);
        return false;
    }
    snprintf(w->event, sizeof(w->event), "%s", PQgetvalue(res, 0, 0));
    w->spec = spec_of(PQgetvalue(res, 0, 1));
    snprintf(w->format, sizeof(w->format), "%s", PQgetvalue(res, 0, 2));
    *done = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
    snprintf(w->event_name, sizeof(w->event_name), "%s", PQgetvalue(res, 0, 4));
    if (w->spec == NULL || strncmp(w->job->kind, "report.", 7) != 0 ||
        strcmp(w->job->kind + 7, w->spec->kind) != 0) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "report %s is a %s report, not %s", w->id,
                           PQgetvalue(res, 0, 1), w->job->kind);
        PQclear(res);
        return false;
    }
    PQclear(res);
    return true;
}

/* Runs a statement whose result is not needed. */
static USHER_MUSTCHECK usher_err command(usher_store *st, const char *sql, int n,
                                         const char *const *params)
{
    PGresult *res;
    usher_err err = usher_store_exec(st, sql, n, params, &res);

    if (err == USHER_OK)
        PQclear(res);
    return err;
}

/*
 * A read of the report's rows, on w->rd; when the replica fails it, again on
 * the primary, which then serves the rest of the report.
 */
static USHER_MUSTCHECK usher_err read_rows(run *w, const char *sql, int n,
                                           const char *const *params, PGresult **res)
{
    usher_err err = usher_store_exec(w->rd, sql, n, params, res);

    if (err != USHER_OK && usher_replica_reader_failed(w->replicas, w->rd)) {
        w->rd = w->st;
        err = usher_store_exec(w->rd, sql, n, params, res);
    }
    return err;
}

/* Records percent on the report and on the job. */
static USHER_MUSTCHECK usher_err progress(run *w, int percent)
{
    char pct[USHER_INT_TEXT_MAX];
    const char *params[] = { w->id, pct };
    usher_err err;

    usher_int_text(percent, pct);
    err = command(w->st, progress_sql, 2, params);
    if (err == USHER_OK)
        err = usher_job_progress(w->st, w->job->id, percent);
    return err;
}

/*
 * Marks the report running, picks the server its rows are read from (a
 * replica that has everything the primary has now, so the rows include
 * whatever came before the request) and counts them there.
 */
static USHER_MUSTCHECK usher_err start(run *w)
{
    char job[USHER_INT_TEXT_MAX];
    const char *start_params[] = { w->id, job };
    const char *count_params[] = { w->event };
    PGresult *res;
    usher_err err;

    usher_int_text(w->job->id, job);
    err = command(w->st, start_sql, 2, start_params);
    if (err == USHER_OK)
        err = usher_job_progress(w->st, w->job->id, 0);
    if (err == USHER_OK)
        err = usher_replica_reader_pick(w->replicas, w->st, &w->rd);
    if (err != USHER_OK)
        return err;
    usher_log(USHER_LOG_INFO, "job=%lld report=%s rows_from=%s", (long long)w->job->id, w->id,
              w->rd == w->st ? "primary" : "replica");
    err = read_rows(w, w->spec->count_sql, 1, count_params, &res);
    if (err != USHER_OK)
        return err;
    w->total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(w->bound, sizeof(w->bound), "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    snprintf(w->last_id, sizeof(w->last_id), "0");
    snprintf(w->last_time, sizeof(w->last_time), "-infinity");
    return USHER_OK;
}

/* Reads the next page into the output; *got receives its row count (0: the end). */
static USHER_MUSTCHECK usher_err read_page(run *w, int *got, char *errbuf, size_t errlen)
{
    char limit[USHER_INT_TEXT_MAX];
    const char *params[] = { w->event, w->bound, w->last_id, limit, w->last_time };
    const char *cells[USHER_PDF_TABLE_MAX_COLUMNS];
    size_t nc = w->spec->ncols;
    PGresult *res;
    usher_err err;
    int n;

    usher_int_text(PAGE_ROWS, limit);
    err = read_rows(w, w->spec->page_sql, w->spec->page_params, params, &res);
    if (err != USHER_OK)
        return usher_errbuf(errbuf, errlen, err, "%s", usher_store_errstr(w->rd));
    n = PQntuples(res);
    for (int i = 0; i < n && err == USHER_OK; i++) {
        for (size_t c = 0; c < nc; c++)
            cells[c] = PQgetvalue(res, i, (int)c);
        err = usher_report_output_row(w->out, cells, errbuf, errlen);
    }
    if (err == USHER_OK && n > 0) {
        snprintf(w->last_id, sizeof(w->last_id), "%s", PQgetvalue(res, n - 1, (int)nc));
        snprintf(w->last_time, sizeof(w->last_time), "%s", PQgetvalue(res, n - 1, (int)nc + 1));
    }
    PQclear(res);
    w->rows += n;
    *got = n;
    return err;
}

/* Reads every page, recording progress after each. */
static USHER_MUSTCHECK usher_err read_all(run *w, char *errbuf, size_t errlen)
{
    int got = PAGE_ROWS;
    usher_err err = USHER_OK;

    while (err == USHER_OK && got == PAGE_ROWS) {
        err = read_page(w, &got, errbuf, errlen);
        if (err == USHER_OK && got > 0) {
            int64_t done = w->rows < w->total ? w->rows : w->total;
            err = progress(w, (int)(done * READ_PERCENT / (w->total > 0 ? w->total : 1)));
            if (err != USHER_OK)
                usher_errbuf(errbuf, errlen, err, "%s", usher_store_errstr(w->st));
        }
    }
    return err;
}

/* Stores the file and records it on the report (once, however often this runs). */
static USHER_MUSTCHECK usher_err finish(run *w, const unsigned char *data, size_t len, char *errbuf,
                                        size_t errlen)
{
    char jobid[USHER_INT_TEXT_MAX], filename[96], size[USHER_INT_TEXT_MAX],
        rows[USHER_INT_TEXT_MAX];
    const char *content_type = strcmp(w->format, "pdf") == 0 ? "application/pdf" : "text/csv";
    const char *params[] = { w->id, jobid, filename, content_type, NULL, size, rows };
    usher_docstore_ref ref;
    usher_err err =
        usher_docstore_put_bytes(usher_store_config(w->st), w->st, data, len, &ref, errbuf, errlen);

    if (err != USHER_OK)
        return err;
    usher_int_text(w->job->id, jobid);
    snprintf(filename, sizeof(filename), "%s-event-%s.%s", w->spec->kind, w->event, w->format);
    usher_int_text(ref.size, size);
    usher_int_text(w->rows, rows);
    params[4] = ref.sha256;
    err = command(w->st, finish_sql, 7, params);
    if (err == USHER_OK)
        err = usher_job_progress(w->st, w->job->id, 100);
    if (err != USHER_OK)
        usher_errbuf(errbuf, errlen, err, "%s", usher_store_errstr(w->st));
    return err;
}

/* Bad data and a PDF past its size stay bad; I/O, memory and the database may heal. */
static usher_outcome outcome_of(usher_err err)
{
    return err == USHER_ERR_INVALID || err == USHER_ERR_TOO_LARGE ? USHER_OUTCOME_PERMANENT
                                                                  : USHER_OUTCOME_RETRY;
}

/* Reads the rows into the chosen format and stores the file; r set on failure. */
static void generate(run *w, usher_handler_result *r)
{
    char errbuf[512], title[EVENT_NAME_MAX + 32];
    unsigned char *data = NULL;
    size_t len = 0;
    usher_err err = start(w);

    if (err != USHER_OK) {
        usher_handler_store_failed(r, w->rd, err, w->job->kind);
        return;
    }
    if (strcmp(w->format, "pdf") == 0 && w->total > USHER_PDF_TABLE_MAX_ROWS) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT,
                           "%" PRId64 " rows are too many for a PDF (at most %d): ask for CSV",
                           w->total, USHER_PDF_TABLE_MAX_ROWS);
        return;
    }
    snprintf(title, sizeof(title), "%s \xe2\x80\x94 %s", w->spec->title, w->event_name);
    err = usher_report_output_open(w->format, title, w->spec->cols, w->spec->ncols, &w->out, errbuf,
                                   sizeof(errbuf));
    if (err == USHER_OK)
        err = read_all(w, errbuf, sizeof(errbuf));
    if (err == USHER_OK)
        err = usher_report_output_finish(w->out, &data, &len, errbuf, sizeof(errbuf));
    usher_report_output_free(w->out);
    w->out = NULL;
    if (err == USHER_OK)
        err = finish(w, data, len, errbuf, sizeof(errbuf));
    free(data);
    if (err != USHER_OK)
        usher_handler_fail(r, outcome_of(err), "%s: %s", w->job->kind, errbuf);
}

/*
 * Keeps the failure on the report; on the last attempt, or a permanent
 * failure, the report is failed. Best effort: if the database is what
 * failed, the API still sees the dead job through usher_report_get.
 */
static void record_failure(run *w, const usher_handler_result *r)
{
    bool final = r->outcome == USHER_OUTCOME_PERMANENT || w->job->attempt >= w->job->max_attempts;
    const char *params[] = { w->id, r->error, final ? "true" : "false" };

    if (usher_store_usable(w->st))
        usher_ignore(command(w->st, failed_sql, 3, params)); /* best effort, as said above */
}

void usher_run_report(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                      usher_handler_result *r)
{
    const char *scope = json_string_value(json_object_get(payload, "scope"));
    run w = { .job = job, .replicas = usher_handler_replicas(ctx) };
    bool done = false;
    int64_t id;

    if (scope != NULL) {
        if (strcmp(scope, "all") == 0)
            usher_report_all(ctx, job, job->kind + strlen("report."), r);
        else
            usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "payload.scope must be \"all\"");
        return;
    }
    id = usher_payload_id(payload, "report_id", r);
    if (id == 0 || (w.st = usher_handler_store(ctx, r)) == NULL)
        return;
    w.rd = w.st; /* until start() picks a replica */
    usher_int_text(id, w.id);
    if (!load(&w, r, &done))
        return;
    if (done) {
        /* An earlier attempt finished and its completion was lost: nothing to redo. */
        if (usher_job_progress(w.st, job->id, 100) != USHER_OK)
            usher_handler_store_failed(r, w.st, USHER_ERR_DB, job->kind);
        return;
    }
    generate(&w, r);
    if (r->outcome != USHER_OUTCOME_OK)
        record_failure(&w, r);
}
