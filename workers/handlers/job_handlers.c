/*
 * The table of the platform's handlers, and the two helpers every one of
 * them uses to read its payload and to map a failure to an outcome.
 */
#include "job_handlers.h"

#include "mail_send.h"

const usher_handler usher_job_handlers[] = {
    { .kind = "pdf.ticket", .run = usher_run_pdf_ticket },
    { .kind = "pdf.badge", .run = usher_run_pdf_badge },
    { .kind = "email.send",
      .run = usher_run_email_send,
      .run_batch = usher_batch_email_send,
      .batch_max = USHER_MAIL_SESSION_MAX },
    { .kind = "notify.inbox", .run = usher_run_notify_inbox },
    { .kind = "notify.webhook", .run = usher_run_notify_webhook },
    { .kind = "message.fanout", .run = usher_run_message_fanout },
    { .kind = "index.document",
      .run = usher_run_index_document,
      .run_batch = usher_batch_index_document,
      .batch_max = USHER_BATCH_MAX },
    { .kind = "report.attendees", .run = usher_run_report },
    { .kind = "report.checkins", .run = usher_run_report },
    { .kind = "schedule.fire", .run = usher_run_schedule_fire },
    { .kind = "analytics.rollup",
      .run_batch = usher_batch_analytics_rollup,
      .batch_max = USHER_BATCH_MAX },
    { .kind = NULL },
};

void usher_handler_store_failed(usher_handler_result *r, usher_store *st, usher_err err,
                                const char *what)
{
    usher_outcome outcome = USHER_OUTCOME_RETRY;

    if (err == USHER_ERR_NOT_FOUND || err == USHER_ERR_INVALID || err == USHER_ERR_PAYLOAD)
        outcome = USHER_OUTCOME_PERMANENT;
    /* A foreign key or check violation will not heal by retrying. */
    if (err == USHER_ERR_DB &&
        (usher_store_sqlstate(st)[0] == '2' && usher_store_sqlstate(st)[1] == '3'))
        outcome = USHER_OUTCOME_PERMANENT;
    usher_handler_fail(r, outcome, "%s: %s", what, usher_store_errstr(st));
}

int64_t usher_payload_id(json_t *payload, const char *field, usher_handler_result *r)
{
    json_t *value = json_object_get(payload, field);

    if (!json_is_integer(value) || json_integer_value(value) <= 0) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "payload.%s must be a positive integer",
                           field);
        return 0;
    }
    return (int64_t)json_integer_value(value);
}

bool usher_payload_id_list(json_t *payload, const char *one, const char *many, size_t max,
                           json_t **list, usher_handler_result *r)
{
    json_t *ids = json_object_get(payload, many), *id;
    size_t n = json_array_size(ids), i;

    *list = NULL;
    if (ids == NULL)
        return true;
    if (json_object_get(payload, one) != NULL || n == 0 || n > max) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT,
                           "payload needs %s or %s (an array of 1 to %zu ids), not both", one, many,
                           max);
        return false;
    }
    json_array_foreach(ids, i, id)
    {
        if (!json_is_integer(id) || json_integer_value(id) <= 0) {
            usher_handler_fail(r, USHER_OUTCOME_PERMANENT,
                               "payload.%s must hold positive integers only", many);
            return false;
        }
    }
    *list = ids;
    return true;
}

void usher_handler_wake(usher_store *st, const char *queues)
{
    const char *params[] = { queues };
    PGresult *res = NULL;

    if (usher_store_exec(st, "SELECT usher_wake($1::text[])", 1, params, &res) == USHER_OK)
        PQclear(res);
}
