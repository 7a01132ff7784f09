/*
 * pdf.badge: a sheet of name badges for an event's confirmed registrations
 * (or the ones listed), stored and recorded as one 'badges' document. The
 * role line shows the ticket type, which is what door staff look for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "docstore.h"
#include "inttext.h"
#include "job_handlers.h"
#include "pdf_render.h"

#define BADGES_MAX 20000

static const char people_sql[] =
    "SELECT r.name, t.name FROM registrations r JOIN ticket_types t ON t.id = r.ticket_type_id"
    " WHERE r.event_id = $1 AND r.status = 'confirmed' ORDER BY r.name, r.id LIMIT $2";

static const char record_sql[] =
    "INSERT INTO documents (kind, event_id, job_id, filename, content_type, sha256, size)"
    " VALUES ('badges', $1, $2, $3, 'application/pdf', $4, $5) RETURNING id";

/* Renders the badges of res's rows and stores them; false (r set) on failure. */
static bool render(usher_handler_ctx *ctx, usher_store *st, PGresult *res, usher_docstore_ref *ref,
                   usher_handler_result *r)
{
    size_t n = (size_t)PQntuples(res), len = 0;
    usher_badge *badges = usher_calloc(n > 0 ? n : 1, sizeof(*badges));
    unsigned char *pdf = NULL;
    char errbuf[256];
    usher_err err;

    for (size_t i = 0; i < n; i++)
        badges[i] =
            (usher_badge){ .name = PQgetvalue(res, (int)i, 0), .role = PQgetvalue(res, (int)i, 1) };
    err = usher_pdf_badges(badges, n, &pdf, &len, errbuf, sizeof(errbuf));
    free(badges);
    if (err == USHER_OK)
        err = usher_docstore_put_bytes(usher_handler_config(ctx), st, pdf, len, ref, errbuf,
                                       sizeof(errbuf));
    free(pdf);
    if (err != USHER_OK)
        usher_handler_fail(r,
                           err == USHER_ERR_INVALID ? USHER_OUTCOME_PERMANENT : USHER_OUTCOME_RETRY,
                           "badges: %s", errbuf);
    return err == USHER_OK;
}

void usher_run_pdf_badge(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                         usher_handler_result *r)
{
    int64_t event = usher_payload_id(payload, "event_id", r);
    char eventtext[USHER_INT_TEXT_MAX], limit[USHER_INT_TEXT_MAX], jobid[USHER_INT_TEXT_MAX],
        filename[64], size[USHER_INT_TEXT_MAX];
    const char *query[] = { eventtext, limit };
    usher_docstore_ref ref;
    usher_store *st;
    PGresult *res;
    usher_err err;

    if (event == 0 || (st = usher_handler_store(ctx, r)) == NULL)
        return;
    usher_int_text(event, eventtext);
    usher_int_text(BADGES_MAX, limit);
    err = usher_store_exec(st, people_sql, 2, query, &res);
    if (err != USHER_OK) {
        usher_handler_store_failed(r, st, err, "pdf.badge");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "event %lld has no confirmed registration",
                           (long long)event);
        return;
    }
    if (!render(ctx, st, res, &ref, r)) {
        PQclear(res);
        return;
    }
    PQclear(res);
    usher_int_text(job->id, jobid);
    snprintf(filename, sizeof(filename), "badges-%lld.pdf", (long long)event);
    usher_int_text(ref.size, size);
    {
        const char *params[] = { eventtext, jobid, filename, ref.sha256, size };

        err = usher_store_exec(st, record_sql, 5, params, &res);
    }
    if (err != USHER_OK) {
        usher_handler_store_failed(r, st, err, "pdf.badge");
        return;
    }
    PQclear(res);
}
