/*
 * Message variables and ledger marks for email.send (message_mail.h). A
 * ledger row is found by its email job's id, which the fan-out wrote into
 * it in the transaction that enqueued the job.
 */
#include "message_mail.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "inttext.h"
#include "log.h"
#include "message_format.h"

/* A session message's session, its times in the event's zone for locale $2. */
#define SESSION_TIME(col) "coalesce(usher_format_time(" col ", e.timezone, $2), '')"

static const char message_sql[] =
    "SELECT m.state, m.subject, m.body, coalesce(s.title, ''), " SESSION_TIME(
        "s.starts_at") ", " SESSION_TIME("s.ends_at") " FROM event_messages m"
                                                      " JOIN events e ON e.id = m.event_id"
                                                      " LEFT JOIN sessions s ON s.id = m.session_id"
                                                      " WHERE m.id = $1";

static const char skipped_sql[] =
    "UPDATE message_deliveries SET skipped_at = now() WHERE job_id = $1 AND skipped_at IS NULL";

static const char sent_sql[] = "UPDATE message_deliveries SET sent_at = now()"
                               " WHERE job_id = ANY ($1::bigint[]) AND sent_at IS NULL";

static usher_err mark_skipped(usher_store *st, const usher_job *job)
{
    char id[USHER_INT_TEXT_MAX];
    const char *params[] = { usher_int_text(job->id, id) };
    PGresult *res = NULL;
    usher_err err = usher_store_exec(st, skipped_sql, 1, params, &res);

    PQclear(res);
    return err;
}

usher_err usher_message_mail_vars(usher_store *st, int64_t message, const char *locale,
                                  const usher_job *job, json_t *vars, bool *skip)
{
    char id[USHER_INT_TEXT_MAX];
    const char *params[] = { usher_int_text(message, id), locale };
    PGresult *res = NULL;
    char *html;
    usher_err err = usher_store_exec(st, message_sql, 2, params, &res);

    *skip = false;
    if (err == USHER_OK && PQntuples(res) != 1)
        err = usher_store_fail(st, USHER_ERR_NOT_FOUND, "no message %lld", (long long)message);
    if (err != USHER_OK) {
        PQclear(res);
        return err;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "cancelled") == 0) {
        PQclear(res);
        *skip = true;
        return mark_skipped(st, job);
    }
    html = usher_message_html(PQgetvalue(res, 0, 2));
    if (json_object_set_new(vars, "subject", json_string(PQgetvalue(res, 0, 1))) != 0 ||
        json_object_set_new(vars, "body_text", json_string(PQgetvalue(res, 0, 2))) != 0 ||
        json_object_set_new(vars, "body_html", json_string(html)) != 0 ||
        json_object_set_new(vars, "session_title", json_string(PQgetvalue(res, 0, 3))) != 0 ||
        json_object_set_new(vars, "session_starts_at", json_string(PQgetvalue(res, 0, 4))) != 0 ||
        json_object_set_new(vars, "session_ends_at", json_string(PQgetvalue(res, 0, 5))) != 0)
        err = usher_store_fail(st, USHER_ERR_NOMEM, "out of memory");
    free(html);
    PQclear(res);
    return err;
}

void usher_message_mail_sent(usher_store *st, const int64_t *jobs, size_t n)
{
    usher_buf ids = { 0 };
    PGresult *res = NULL;

    if (n == 0)
        return;
    usher_buf_array_open(&ids);
    for (size_t i = 0; i < n; i++)
        usher_buf_array_int(&ids, jobs[i]);
    usher_buf_array_close(&ids);
    const char *params[] = { usher_buf_str(&ids) };

    if (usher_buf_failed(&ids) || usher_store_exec(st, sent_sql, 1, params, &res) != USHER_OK)
        usher_log(USHER_LOG_WARNING, "message mail sent, but its ledger rows not marked: %s",
                  usher_store_errstr(st));
    PQclear(res);
    usher_buf_release(&ids);
}
