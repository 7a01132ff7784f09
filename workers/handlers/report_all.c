/*
 * Fan-out of a periodic report job into one report per current event.
 * The reports are requested by "job:<id>", which is how a retried run of
 * the same job recognises the events it already covered; the whole fan-out
 * is one transaction, so a failure part-way leaves nothing behind.
 */
#include "report_all.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "job_handlers.h"
#include "report.h"

static const char events_sql[] =
    "SELECT e.id FROM events e"
    " WHERE e.starts_at <= now() AND e.ends_at >= now() - interval '1 day'"
    " AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.event_id = e.id AND r.kind = $1"
    "  AND r.requested_by = $2) ORDER BY e.id";

static USHER_MUSTCHECK usher_err request_all(usher_store *st, const char *kind, const char *by)
{
    const char *params[] = { kind, by };
    PGresult *res;
    usher_err err = usher_store_exec(st, events_sql, 2, params, &res);

    if (err != USHER_OK)
        return err;
    for (int i = 0; err == USHER_OK && i < PQntuples(res); i++) {
        usher_report_request req = { .event_id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
                                     .kind = kind,
                                     .format = "csv",
                                     .requested_by = by };
        int64_t report, job;
        err = usher_report_create(st, &req, &report, &job);
    }
    PQclear(res);
    return err;
}

void usher_report_all(usher_handler_ctx *ctx, const usher_job *job, const char *kind,
                      usher_handler_result *r)
{
    usher_store *st = usher_handler_store(ctx, r);
    char by[40];
    usher_err err;

    if (st == NULL)
        return;
    snprintf(by, sizeof(by), "job:%" PRId64, job->id);
    err = usher_store_command(st, "BEGIN");
    if (err == USHER_OK)
        err = request_all(st, kind, by);
    err = usher_store_end(st, err);
    if (err != USHER_OK)
        usher_handler_store_failed(r, st, err, job->kind);
}
