/*
 * schedule.fire {schedule_id}: a schedule anchored to an event or a session
 * comes due (schemas/migrations/0027_schedules.sql). usher_schedule_fire()
 * locks the event, the session and the schedule, and decides: a schedule
 * deleted, already fired or no longer this job's does nothing; one whose
 * event or session was cancelled is marked so; one whose anchor moved later
 * while this job was being claimed gets a new job at the new time; one found
 * too late is skipped; otherwise it fires. A reminder or a message becomes
 * a message to the attendees (usher_message_create of 0017, whose
 * message.fanout jobs mail each attendee once through their ledger); a door
 * list becomes the organizer's attendee report (platform/report.h), made
 * here in the same transaction. Everything, and the job's completion
 * (usher_handler_commit), commits together or not at all, so a schedule
 * fires once however many workers hold its jobs or retry them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "enqueue.h"
#include "inttext.h"
#include "job_handlers.h"
#include "log.h"
#include "report.h"

static const char fire_sql[] =
    "SELECT status, action, event_id, format"
    " FROM usher_schedule_fire($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6)";

static const char reported_sql[] = "SELECT usher_schedule_reported($1, $2, $3::jsonb)";

/* The templates the statements enqueue from, as JSON text (owned), and their queues. */
typedef struct templates {
    char *self, *fanout, *hook;
    usher_buf queues; /* a text[] literal of the queues to wake */
} templates;

/* kind's template with id_field filled by the statement, as JSON text; its queue to queues. */
static char *template_text(const usher_config *cfg, const char *kind, const char *id_field,
                           usher_buf *queues)
{
    json_t *t = usher_enqueue_template(cfg, kind, USHER_DEFAULT_QUEUE, NULL);
    char *text = NULL;

    if (t != NULL &&
        (id_field == NULL || json_object_set_new(t, "id_field", json_string(id_field)) == 0)) {
        text = json_dumps(t, JSON_COMPACT);
        if (text != NULL && queues != NULL)
            usher_buf_array_text(queues, json_string_value(json_object_get(t, "queue")));
    }
    json_decref(t);
    return text;
}

static bool templates_build(const usher_config *cfg, templates *t)
{
    usher_buf_array_open(&t->queues);
    t->self = template_text(cfg, "schedule.fire", "schedule_id", NULL);
    t->fanout = template_text(cfg, "message.fanout", "message_id", &t->queues);
    t->hook = template_text(cfg, "notify.webhook", NULL, &t->queues);
    usher_buf_array_close(&t->queues);
    return t->self != NULL && t->fanout != NULL && t->hook != NULL && !usher_buf_failed(&t->queues);
}

static void templates_release(templates *t)
{
    free(t->self);
    free(t->fanout);
    free(t->hook);
    usher_buf_release(&t->queues);
}

/* The door list: the event's attendee report, recorded on the schedule, in st's transaction. */
static usher_err door_list(usher_store *st, int64_t schedule, int64_t event, const char *format,
                           const templates *t)
{
    char requester[32], id[USHER_INT_TEXT_MAX], report_text[USHER_INT_TEXT_MAX];
    usher_report_request req = {
        .event_id = event, .kind = "attendees", .format = format, .requested_by = requester
    };
    const char *params[] = { id, report_text, t->hook };
    int64_t report = 0, job = 0;
    PGresult *res = NULL;
    usher_err err;

    snprintf(requester, sizeof(requester), "schedule:%lld", (long long)schedule);
    err = usher_report_create(st, &req, &report, &job);
    if (err != USHER_OK)
        return err;
    usher_int_text(schedule, id);
    usher_int_text(report, report_text);
    err = usher_store_exec(st, reported_sql, 3, params, &res);
    PQclear(res);
    if (err == USHER_OK)
        usher_log(USHER_LOG_INFO, "schedule=%lld door list report=%lld job=%lld",
                  (long long)schedule, (long long)report, (long long)job);
    return err;
}

/* The decision and its work, in one transaction with the job's completion. */
static usher_err fire(usher_handler_ctx *ctx, usher_store *st, const usher_job *job,
                      int64_t schedule, const templates *t, usher_handler_result *r)
{
    const usher_config *cfg = usher_handler_config(ctx);
    char id[USHER_INT_TEXT_MAX], job_id[USHER_INT_TEXT_MAX], late[USHER_INT_TEXT_MAX];
    const char *params[] = { id, job_id, t->self, t->fanout, t->hook, late };
    PGresult *res = NULL;
    usher_err err;

    usher_int_text(schedule, id);
    usher_int_text(job->id, job_id);
    usher_int_text(cfg->schedules_late_limit_s, late);
    err = usher_store_command(st, "BEGIN");
    if (err == USHER_OK)
        err = usher_store_exec(st, fire_sql, 6, params, &res);
    if (err == USHER_OK) {
        const char *status = PQgetvalue(res, 0, 0), *action = PQgetvalue(res, 0, 1);

        usher_log(USHER_LOG_INFO, "schedule=%lld job=%lld %s action=%s", (long long)schedule,
                  (long long)job->id, status, action);
        if (strcmp(status, "fired") == 0 && strcmp(action, "door_list") == 0)
            err = door_list(st, schedule, strtoll(PQgetvalue(res, 0, 2), NULL, 10),
                            PQgetvalue(res, 0, 3), t);
    }
    PQclear(res);
    if (err == USHER_OK)
        return usher_handler_commit(ctx, st, job, r);
    usher_store_rollback(st);
    return err;
}

void usher_run_schedule_fire(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                             usher_handler_result *r)
{
    int64_t schedule = usher_payload_id(payload, "schedule_id", r);
    templates t = { 0 };
    usher_store *st;
    usher_err err;

    if (schedule == 0 || (st = usher_handler_store(ctx, r)) == NULL)
        return;
    if (!templates_build(usher_handler_config(ctx), &t)) {
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "schedule.fire: out of memory");
        goto out;
    }
    err = fire(ctx, st, job, schedule, &t, r);
    if (err == USHER_OK)
        usher_handler_wake(st, usher_buf_str(&t.queues));
    else if (err != USHER_ERR_STATE) /* STATE: r says the lease was lost */
        usher_handler_store_failed(r, st, err, "schedule.fire");
out:
    templates_release(&t);
}
