/*
 * pdf.ticket: renders a registration's ticket, stores it by content hash,
 * records it in documents and, when asked (a registration's confirmation
 * chain), enqueues the email that attaches it, in the same transaction as
 * the record and the job's own completion (usher_handler_commit). The
 * email is enqueued only by the transaction that first records the key
 * "confirmation:REGISTRATION" in the effects ledger, so no rerun of the
 * ticket job, however late, mails the attendee twice. The email works for
 * the ticket's organizer (it takes the ticket job's partition key) and,
 * when pdf.ticket has a deadline_ms, is due that long after the sale: a
 * confirmation that the ticket's retries made late is claimed ahead of the
 * older jobs of its priority ([engine] deadline_lead_ms) and counted late.
 *
 * A registration batch's sales share one job (registration_ids, schemas/
 * migrations/0038; each email gets its sale's request id from request_ids):
 * each ticket is then recorded (and its email enqueued)
 * in a transaction of its own and the job completes after the last, so a
 * rerun renders them all again and records each again in place, and the
 * ledger still lets each attendee be mailed once. A sale cancelled since
 * is skipped; a ticket that cannot be drawn (bad data) does not keep the
 * others from theirs, and fails the job permanently at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "docstore.h"
#include "effects.h"
#include "enqueue.h"
#include "inttext.h"
#include "job_handlers.h"
#include "pdf_render.h"
#include "registration_facts.h"

#define TICKETS_MAX 1000 /* registration_ids, as the payload's schema allows */

static const char record_sql[] =
    "INSERT INTO documents (kind, event_id, registration_id, job_id, filename, content_type,"
    " sha256, size) VALUES ('ticket', $1, $2, $3, $4, 'application/pdf', $5, $6)"
    " ON CONFLICT (registration_id) WHERE kind = 'ticket' DO UPDATE SET"
    "  job_id = EXCLUDED.job_id, sha256 = EXCLUDED.sha256, size = EXCLUDED.size"
    " RETURNING id";

/* Renders and stores the ticket; false (r set) on failure. */
static bool render_and_store(usher_handler_ctx *ctx, usher_store *st,
                             const usher_registration_facts *f, usher_page_size size,
                             usher_docstore_ref *ref, usher_handler_result *r)
{
    usher_ticket t = { .event_name = f->event_name,
                       .venue = f->venue[0] ? f->venue : "-",
                       .starts_at = f->starts_at,
                       .attendee_name = f->attendee_name,
                       .ticket_type = f->ticket_type,
                       .ticket_code = f->ticket_code };
    unsigned char *pdf = NULL;
    size_t len = 0;
    char errbuf[256];
    usher_err err = usher_pdf_ticket(&t, size, &pdf, &len, errbuf, sizeof(errbuf));

    if (err != USHER_OK) {
        /* Bad data stays bad; a missing font or no memory may heal. */
        usher_handler_fail(r,
                           err == USHER_ERR_INVALID ? USHER_OUTCOME_PERMANENT : USHER_OUTCOME_RETRY,
                           "render: %s", errbuf);
        return false;
    }
    err = usher_docstore_put_bytes(usher_handler_config(ctx), st, pdf, len, ref, errbuf,
                                   sizeof(errbuf));
    free(pdf);
    if (err != USHER_OK)
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "document store: %s", errbuf);
    return err == USHER_OK;
}

/*
 * The confirmation email's deadline_ms for usher_enqueue_opts: pdf.ticket's
 * deadline_ms after the sale (sold_at_s), at least 1 ms from now (a
 * deadline already passed is due at once, and counted late); 0 (the
 * email kind's own) when pdf.ticket has none.
 */
static int64_t email_deadline_ms(const usher_config *cfg, int64_t sold_at_s)
{
    const usher_kind_conf *k = usher_config_kind(cfg, "pdf.ticket");
    struct timespec now;
    int64_t left;

    if (k == NULL || k->deadline_ms <= 0 || clock_gettime(CLOCK_REALTIME, &now) != 0)
        return 0;
    left = sold_at_s * 1000 + k->deadline_ms - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    return left > 0 ? left : 1;
}

/* The confirmation email of f's registration, for the request rid (NULL: none). */
static USHER_MUSTCHECK usher_err enqueue_email(usher_store *st, const usher_config *cfg,
                                               const usher_job *job, const char *rid,
                                               const usher_registration_facts *f, int64_t document)
{
    char payload[160], key[64];
    int64_t registration = f->registration_id;
    usher_enqueue_opts o = { .queue = usher_config_kind_queue(cfg, "email.send", "email"),
                             .kind = "email.send",
                             .payload = payload,
                             .unique_key = key,
                             .partition_key = job->partition_key[0] ? job->partition_key : NULL,
                             .deadline_ms = email_deadline_ms(cfg, f->created_at_s),
                             .request_id = rid,
                             .parent_id = job->id };
    usher_enqueued out;
    bool first = false;
    usher_err err;

    snprintf(payload, sizeof(payload),
             "{\"registration_id\":%lld,\"template\":\"registration_confirmation\","
             "\"document_id\":%lld}",
             (long long)registration, (long long)document);
    snprintf(key, sizeof(key), "confirmation:%lld", (long long)registration);
    err = usher_effect_once(st, key, job->id, &first);
    if (err != USHER_OK || !first)
        return err;
    return usher_enqueue(st, &o, &out);
}

/* Records the document (and enqueues the email) in one transaction, with the job's completion
 * when complete. */
static USHER_MUSTCHECK usher_err record(usher_handler_ctx *ctx, usher_store *st,
                                        const usher_job *job, const char *rid,
                                        const usher_registration_facts *f,
                                        const usher_docstore_ref *ref, bool then_email,
                                        bool complete, usher_handler_result *r)
{
    char event[USHER_INT_TEXT_MAX], reg[USHER_INT_TEXT_MAX], jobid[USHER_INT_TEXT_MAX],
        filename[64], size[USHER_INT_TEXT_MAX];
    const char *params[] = { event, reg, jobid, filename, ref->sha256, size };
    PGresult *res = NULL;
    usher_err err;

    usher_int_text(f->event_id, event);
    usher_int_text(f->registration_id, reg);
    usher_int_text(job->id, jobid);
    snprintf(filename, sizeof(filename), "ticket-%lld.pdf", (long long)f->registration_id);
    usher_int_text(ref->size, size);
    err = usher_store_command(st, "BEGIN");
    if (err == USHER_OK)
        err = usher_store_exec(st, record_sql, 6, params, &res);
    if (err == USHER_OK && then_email)
        err = enqueue_email(st, usher_handler_config(ctx), job, rid, f,
                            strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    PQclear(res);
    if (err == USHER_OK)
        return complete ? usher_handler_commit(ctx, st, job, r) : usher_store_end(st, err);
    usher_store_rollback(st);
    return err;
}

/* What a job asks of each of its tickets. */
typedef struct ticket_job {
    const usher_job *job;
    usher_page_size size;
    bool then_email;
    bool shared;         /* registration_ids: one of several sales (see the top) */
    json_t *request_ids; /* the sales' request ids, or NULL */
} ticket_job;

/* The request id of the job's i-th registration: the job's own, its list's, or NULL. */
static const char *request_of(const ticket_job *t, size_t i)
{
    if (t->job->request_id[0] != '\0')
        return t->job->request_id;
    return json_string_value(json_array_get(t->request_ids, i));
}

/*
 * One registration's ticket. False when the job must stop (r set: a retry,
 * or for a job of one registration any failure); a shared job's ticket
 * that is not to be (the sale cancelled, bad data) returns true, the bad
 * data's failure in *bad.
 */
static bool one_ticket(usher_handler_ctx *ctx, usher_store *st, const ticket_job *t, size_t i,
                       int64_t registration, usher_handler_result *bad, usher_handler_result *r)
{
    usher_registration_facts facts;
    usher_docstore_ref ref;
    usher_err err =
        usher_registration_facts_load(st, usher_handler_config(ctx), registration, &facts);

    if (err != USHER_OK) {
        usher_handler_store_failed(r, st, err, "pdf.ticket");
        return false;
    }
    if (strcmp(facts.status, "confirmed") != 0) {
        if (t->shared)
            return true;
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "registration %lld is %s",
                           (long long)registration, facts.status);
        return false;
    }
    if (!render_and_store(ctx, st, &facts, t->size, &ref, t->shared ? bad : r)) {
        if (t->shared && bad->outcome == USHER_OUTCOME_PERMANENT)
            return true;
        if (t->shared)
            *r = *bad;
        return false;
    }
    err = record(ctx, st, t->job, request_of(t, i), &facts, &ref, t->then_email, !t->shared, r);
    if (err != USHER_OK && err != USHER_ERR_STATE) /* STATE: r says the lease was lost */
        usher_handler_store_failed(r, st, err, "pdf.ticket");
    return err == USHER_OK;
}

/* The payload's registrations: registration_id, or registration_ids; 0 (r set) if bad. */
static size_t registrations_of(json_t *payload, int64_t *one, json_t **many,
                               usher_handler_result *r)
{
    if (!usher_payload_id_list(payload, "registration_id", "registration_ids", TICKETS_MAX, many,
                               r))
        return 0;
    if (*many != NULL)
        return json_array_size(*many);
    return (*one = usher_payload_id(payload, "registration_id", r)) != 0 ? 1 : 0;
}

void usher_run_pdf_ticket(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                          usher_handler_result *r)
{
    const char *page = json_string_value(json_object_get(payload, "page"));
    usher_handler_result bad = { .outcome = USHER_OUTCOME_OK, .delay_ms = -1 };
    char first[1024] = "";
    int64_t one = 0;
    json_t *many;
    size_t n = registrations_of(payload, &one, &many, r), failed = 0;
    ticket_job t = { .job = job,
                     .size =
                         page != NULL && strcmp(page, "A4") == 0 ? USHER_PAGE_A4 : USHER_PAGE_A6,
                     .then_email = json_is_true(json_object_get(payload, "then_email")),
                     .shared = many != NULL,
                     .request_ids = json_object_get(payload, "request_ids") };
    usher_store *st;

    if (n == 0)
        return;
    if (page != NULL && strcmp(page, "A6") != 0 && strcmp(page, "A4") != 0) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "payload.page must be \"A6\" or \"A4\"");
        return;
    }
    if ((st = usher_handler_store(ctx, r)) == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        int64_t id = many != NULL ? (int64_t)json_integer_value(json_array_get(many, i)) : one;

        bad.outcome = USHER_OUTCOME_OK;
        if (!one_ticket(ctx, st, &t, i, id, &bad, r))
            return;
        if (bad.outcome != USHER_OUTCOME_OK && failed++ == 0)
            snprintf(first, sizeof(first), "registration %lld: %.960s", (long long)id, bad.error);
    }
    if (failed > 0)
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "%zu of %zu tickets could not be drawn (%s)",
                           failed, n, first);
}
