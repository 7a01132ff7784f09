/*
 * notify.inbox: one row in the attendee's inbox. The job id is unique on
 * the row, so a retried job (its result lost, say) never writes twice.
 */
#include "inttext.h"
#include "job_handlers.h"

static const char insert_sql[] =
    "INSERT INTO notifications (registration_id, title, body, job_id) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (job_id) DO NOTHING";

void usher_run_notify_inbox(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                            usher_handler_result *r)
{
    const char *title = json_string_value(json_object_get(payload, "title"));
    const char *body = json_string_value(json_object_get(payload, "body"));
    int64_t registration = usher_payload_id(payload, "registration_id", r);
    char reg[USHER_INT_TEXT_MAX], jobid[USHER_INT_TEXT_MAX];
    const char *params[] = { reg, title, body != NULL ? body : "", jobid };
    usher_store *st;
    PGresult *res;
    usher_err err;

    if (registration == 0)
        return;
    if (title == NULL || title[0] == '\0') {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "payload.title must be a non-empty string");
        return;
    }
    st = usher_handler_store(ctx, r);
    if (st == NULL)
        return;
    usher_int_text(registration, reg);
    usher_int_text(job->id, jobid);
    err = usher_store_exec(st, insert_sql, 4, params, &res);
    if (err != USHER_OK) {
        usher_handler_store_failed(r, st, err, "notify.inbox");
        return;
    }
    PQclear(res);
}
