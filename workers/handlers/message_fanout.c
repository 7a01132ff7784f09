/*
 * message.fanout {message_id}: one batch of a message to attendees (or of
 * an event's cancellation), usher_message_fanout() of
 * schemas/migrations/0017_messages.sql, in one transaction with the job's
 * completion (usher_handler_commit): the batch's ledger rows, inbox
 * entries, email.send jobs (and for a cancellation the registrations'
 * cancellations and registration.cancelled webhooks), the cursor, and the
 * job of the next batch commit together or not at all. A worker killed
 * halfway leaves nothing of the batch, and the job is rescued and run
 * again; the ledger's key (message, registration) keeps a batch that did
 * commit from mailing anyone again. After the commit the queues that got
 * jobs are woken. A message gone with its event (deleted, as it had no
 * registrations) leaves nothing to do.
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

static const char fanout_sql[] =
    "SELECT status, mailed, cursor_id"
    " FROM usher_message_fanout($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb)";

/* The templates the statement enqueues from, as JSON text (owned), and their queues. */
typedef struct templates {
    char *email, *next, *cancel, *hook;
    usher_buf queues; /* a text[] literal of the queues they go to */
} templates;

/* t's JSON text (NULL out of memory), its queue added to queues; drops t's reference. */
static char *dump(json_t *t, json_t *queue_of, usher_buf *queues, const char *request_id)
{
    char *text = t != NULL && (request_id[0] == '\0' ||
                               json_object_set_new(t, "request_id", json_string(request_id)) == 0)
                     ? json_dumps(t, JSON_COMPACT)
                     : NULL;
    const char *queue = json_string_value(json_object_get(queue_of, "queue"));

    if (text != NULL && queue != NULL)
        usher_buf_array_text(queues, queue);
    json_decref(t);
    return text;
}

/*
 * Builds them from the config, each carrying request_id (the fan-out job's:
 * the request that sent the message, or ""); false out of memory.
 */
static bool templates_build(const usher_config *cfg, int64_t message, const char *request_id,
                            templates *t)
{
    json_t *email = usher_enqueue_template(cfg, "email.send", USHER_DEFAULT_QUEUE, NULL);
    json_t *next = usher_enqueue_template(cfg, "message.fanout", USHER_DEFAULT_QUEUE,
                                          json_pack("{s:I}", "message_id", (json_int_t)message));
    json_t *hook = usher_enqueue_template(cfg, "notify.webhook", USHER_DEFAULT_QUEUE, NULL);
    json_t *index = usher_enqueue_template(cfg, "index.document", USHER_DEFAULT_QUEUE,
                                           json_pack("{s:s}", "type", "attendee"));
    /* Each cancellation counted in its event's analytics (usher_cancel_registration sets it). */
    json_t *counted = usher_enqueue_template(cfg, "analytics.rollup", USHER_DEFAULT_QUEUE,
                                             json_pack("{s:s}", "metric", "cancellation"));
    json_t *cancel = json_array();

    usher_buf_array_open(&t->queues);
    if (index != NULL && json_object_set_new(index, "id_field", json_string("id")) == 0 &&
        (request_id[0] == '\0' ||
         json_object_set_new(index, "request_id", json_string(request_id)) == 0) &&
        counted != NULL &&
        json_object_set_new(counted, "event_field", json_string("event_id")) == 0 &&
        json_object_set_new(counted, "at_field", json_string("at")) == 0 &&
        (request_id[0] == '\0' ||
         json_object_set_new(counted, "request_id", json_string(request_id)) == 0) &&
        cancel != NULL && json_array_append(cancel, index) == 0 &&
        json_array_append(cancel, counted) == 0) {
        t->cancel = dump(cancel, index, &t->queues, "");
        usher_buf_array_text(&t->queues, json_string_value(json_object_get(counted, "queue")));
    } else {
        json_decref(cancel);
    }
    json_decref(index);
    json_decref(counted);
    t->email = dump(email, email, &t->queues, request_id);
    t->next = dump(next, next, &t->queues, request_id);
    t->hook = dump(hook, hook, &t->queues, request_id);
    usher_buf_array_close(&t->queues);
    return t->email != NULL && t->next != NULL && t->hook != NULL && t->cancel != NULL &&
           !usher_buf_failed(&t->queues);
}

static void templates_release(templates *t)
{
    free(t->email);
    free(t->next);
    free(t->cancel);
    free(t->hook);
    usher_buf_release(&t->queues);
}

/* The batch, in one transaction with the job's completion. */
static usher_err run_batch(usher_handler_ctx *ctx, usher_store *st, const usher_job *job,
                           int64_t message, const templates *t, usher_handler_result *r)
{
    char id[USHER_INT_TEXT_MAX], batch[USHER_INT_TEXT_MAX];
    const char *params[] = { id, batch, t->email, t->next, t->cancel, t->hook };
    PGresult *res = NULL;
    usher_err err;

    usher_int_text(message, id);
    usher_int_text(usher_handler_config(ctx)->messages_batch_size, batch);
    err = usher_store_command(st, "BEGIN");
    if (err == USHER_OK)
        err = usher_store_exec(st, fanout_sql, 6, params, &res);
    if (err == USHER_OK)
        usher_log(USHER_LOG_DEBUG, "message=%lld batch=%s mailed=%s cursor=%s", (long long)message,
                  PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
    PQclear(res);
    if (err == USHER_OK)
        return usher_handler_commit(ctx, st, job, r);
    usher_store_rollback(st);
    return err;
}

void usher_run_message_fanout(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                              usher_handler_result *r)
{
    int64_t message = usher_payload_id(payload, "message_id", r);
    templates t = { 0 };
    usher_store *st;
    usher_err err;

    if (message == 0 || (st = usher_handler_store(ctx, r)) == NULL)
        return;
    if (!templates_build(usher_handler_config(ctx), message, job->request_id, &t)) {
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "message.fanout: out of memory");
        goto out;
    }
    err = run_batch(ctx, st, job, message, &t, r);
    if (err == USHER_OK)
        usher_handler_wake(st, usher_buf_str(&t.queues));
    else if (err != USHER_ERR_STATE) /* STATE: r says the lease was lost */
        usher_handler_store_failed(r, st, err, "message.fanout");
out:
    templates_release(&t);
}
