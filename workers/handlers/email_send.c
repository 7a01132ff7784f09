/*
 * email.send: renders a template, attaches a stored document if asked,
 * and hands the message to the SMTP relay. A message to attendees
 * (message_id in the payload) adds the message's subject and body to the
 * registration's variables, is skipped once the message was cancelled, and
 * marks its ledger row sent (message_mail.h). The Message-ID comes from the
 * job id and, for a registration's mail, the Date from the registration, so
 * every retry sends the very same message and a relay or mailbox that saw
 * the first one can tell. 4xx and connection failures retry with backoff;
 * 5xx is permanent. The pool's smtp_rate paces the sends of all its
 * children (workers/ratelimit_shared.h). A child holding several email jobs
 * (child_queue > 1) sends them over shared SMTP sessions (see send_prepared).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "backup.h"
#include "log.h"
#include "docstore.h"
#include "job_handlers.h"
#include "mail_message.h"
#include "mail_send.h"
#include "mail_template.h"
#include "message_mail.h"
#include "registration_facts.h"

#define ATTACHMENT_MAX   (20 * 1024 * 1024)
#define RATE_WAIT_MAX_MS 10000
#define SESSION_CHUNK    16 /* messages per SMTP session at most */
#define BATCH_SHARE_PCT  75 /* of the first job's timeout that a batch may use */

typedef struct outgoing {
    json_t *vars; /* owned */
    char to[336];
    char to_name[256];
    char locale[USHER_FACTS_LOCALE_MAX]; /* "": the templates at the top (English) */
    time_t date;
    usher_mail_attachment attachment;
    unsigned char *attachment_data; /* owned */
    char filename[256];
    char content_type[128];
} outgoing;

static const char document_sql[] =
    "SELECT filename, content_type, sha256, size FROM documents WHERE id = $1";

/* Reads the document's bytes from the store; false (r set) on failure. */
static bool load_attachment(usher_handler_ctx *ctx, usher_store *st, int64_t id, outgoing *m,
                            usher_handler_result *r)
{
    char errbuf[256];
    PGresult *res;
    size_t size;
    usher_err err = usher_store_exec_one(st, document_sql, id, "document", &res);

    if (err != USHER_OK) {
        usher_handler_store_failed(r, st, err, "attachment");
        return false;
    }
    snprintf(m->filename, sizeof(m->filename), "%s", PQgetvalue(res, 0, 0));
    snprintf(m->content_type, sizeof(m->content_type), "%s", PQgetvalue(res, 0, 1));
    size = (size_t)strtoull(PQgetvalue(res, 0, 3), NULL, 10);
    if (!usher_docstore_name_ok(PQgetvalue(res, 0, 2)) || size > ATTACHMENT_MAX) {
        PQclear(res);
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "document %lld cannot be attached",
                           (long long)id);
        return false;
    }
    m->attachment_data = usher_malloc(size > 0 ? size : 1);
    err = usher_docstore_read(usher_handler_config(ctx), st, PQgetvalue(res, 0, 2), 0, size,
                              m->attachment_data, errbuf, sizeof(errbuf));
    PQclear(res);
    if (err != USHER_OK) {
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "document %lld: %s", (long long)id, errbuf);
        return false;
    }
    m->attachment = (usher_mail_attachment){ .filename = m->filename,
                                             .content_type = m->content_type,
                                             .data = m->attachment_data,
                                             .len = size };
    return true;
}

/* The variables and recipient of a registration's mail; false (r set) on failure. */
static bool from_registration(usher_handler_ctx *ctx, usher_store *st, int64_t id, outgoing *m,
                              usher_handler_result *r)
{
    usher_registration_facts f;
    usher_err err = usher_registration_facts_load(st, usher_handler_config(ctx), id, &f);

    if (err != USHER_OK) {
        usher_handler_store_failed(r, st, err, "email.send");
        return false;
    }
    m->vars = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event_name", f.event_name,
                        "attendee_name", f.attendee_name, "ticket_type", f.ticket_type, "starts_at",
                        f.starts_at_local, "venue", f.venue, "ticket_code", f.ticket_code);
    snprintf(m->locale, sizeof(m->locale), "%s", f.locale);
    snprintf(m->to, sizeof(m->to), "%s", f.email);
    snprintf(m->to_name, sizeof(m->to_name), "%s", f.attendee_name);
    m->date = (time_t)f.created_at_s;
    if (m->vars == NULL)
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "out of memory");
    return m->vars != NULL;
}

/*
 * Does vars name a variable *_html? A template inserts those unescaped
 * (mail_template.h), so only this handler sets them, never a payload.
 */
static bool html_named(json_t *vars)
{
    const char *name;
    json_t *value;

    json_object_foreach(vars, name, value)
    {
        size_t n = strlen(name);

        if (n >= 5 && strcmp(name + n - 5, "_html") == 0)
            return true;
    }
    return false;
}

/* A message's subject and body for its mail; false (r set) on failure or when *skip. */
static bool from_message(usher_store *st, const usher_job *job, int64_t message, outgoing *m,
                         bool *skip, usher_handler_result *r)
{
    usher_err err =
        usher_message_mail_vars(st, message, m->locale[0] ? m->locale : "en", job, m->vars, skip);

    if (err != USHER_OK)
        usher_handler_store_failed(r, st, err, "email.send");
    return err == USHER_OK && !*skip;
}

/* The recipient and variables given in the payload itself. */
static bool from_payload(json_t *payload, outgoing *m, usher_handler_result *r)
{
    const char *to = json_string_value(json_object_get(payload, "to"));
    const char *name = json_string_value(json_object_get(payload, "to_name"));
    json_t *vars = json_object_get(payload, "vars");

    if (to == NULL || !json_is_object(vars)) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT,
                           "payload needs registration_id, or to and vars");
        return false;
    }
    if (html_named(vars)) {
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT,
                           "payload.vars may not name *_html: those are HTML this handler makes");
        return false;
    }
    snprintf(m->to, sizeof(m->to), "%s", to);
    snprintf(m->to_name, sizeof(m->to_name), "%s", name != NULL ? name : "");
    m->vars = json_incref(vars);
    m->date = time(NULL);
    return true;
}

/*
 * How long a child may sleep for its turn under the pool's smtp_rate: a
 * turn further away puts the job back (a snooze spends no attempt) rather
 * than holding a child and eating into the job's timeout.
 */
static int rate_wait_limit_ms(const usher_job *job)
{
    return job->timeout_ms / 2 < RATE_WAIT_MAX_MS ? job->timeout_ms / 2 : RATE_WAIT_MAX_MS;
}

static usher_smtp_tls starttls_of(const usher_config *cfg)
{
    switch (cfg->smtp_starttls) {
    case USHER_STARTTLS_IF_AVAILABLE:
        return USHER_SMTP_TLS_IF_OFFERED;
    case USHER_STARTTLS_REQUIRED:
        return USHER_SMTP_TLS_REQUIRED;
    default:
        return USHER_SMTP_TLS_OFF;
    }
}

/* A job's message, built and waiting for its turn in the session. */
typedef struct prepared {
    char to[336];
    char *bytes; /* NULL: the job failed already (its result says why) */
    size_t len;
} prepared;

/*
 * The template directory for locale: its subdirectory of [mail]
 * template_dir when that has the template, else the directory itself
 * (English, and any template not yet translated).
 */
static const char *template_dir(const usher_config *cfg, const char *template, const char *locale,
                                char dir[PATH_MAX])
{
    char probe[PATH_MAX];

    if (locale[0] == '\0' || strcmp(locale, "en") == 0 ||
        snprintf(dir, PATH_MAX, "%s/%s", cfg->mail_template_dir, locale) >= PATH_MAX ||
        snprintf(probe, sizeof(probe), "%s/%s.txt", dir, template) >= (int)sizeof(probe) ||
        access(probe, R_OK) != 0)
        return cfg->mail_template_dir;
    return dir;
}

/* Renders and builds m's message for job into p; false (r set) on failure. */
static bool build(usher_handler_ctx *ctx, const usher_job *job, const char *template,
                  const outgoing *m, prepared *p, usher_handler_result *r)
{
    const usher_config *cfg = usher_handler_config(ctx);
    usher_mail_rendered text = { 0 };
    usher_mail_message msg = { .from_name = cfg->smtp_from_name,
                               .from_addr = cfg->smtp_from_address,
                               .to_name = m->to_name[0] ? m->to_name : NULL,
                               .to_addr = m->to,
                               .date = m->date,
                               .attachments = &m->attachment,
                               .attachment_count = m->attachment.data != NULL ? 1 : 0 };
    char message_id[256], errbuf[512], dir[PATH_MAX];
    usher_err err;

    err = usher_mail_template_render(template_dir(cfg, template, m->locale, dir), template, m->vars,
                                     &text, errbuf, sizeof(errbuf));
    if (err == USHER_OK)
        err = usher_mail_message_id(message_id, sizeof(message_id), job->id,
                                    cfg->smtp_message_id_domain);
    msg.subject = text.subject;
    msg.text = text.text;
    msg.html = text.html;
    msg.message_id = message_id;
    if (err == USHER_OK)
        err = usher_mail_message_build(&msg, &p->bytes, &p->len, errbuf, sizeof(errbuf));
    usher_mail_rendered_release(&text);
    if (err != USHER_OK) {
        usher_handler_fail(r, err == USHER_ERR_IO ? USHER_OUTCOME_RETRY : USHER_OUTCOME_PERMANENT,
                           "email.send: %s", errbuf);
        free(p->bytes);
        p->bytes = NULL;
        return false;
    }
    snprintf(p->to, sizeof(p->to), "%s", m->to);
    return true;
}

/* Everything up to the SMTP session: the job's message into p, or its failure into r. */
static void prepare(usher_handler_ctx *ctx, const usher_job *job, json_t *payload, prepared *p,
                    usher_handler_result *r)
{
    const char *template = json_string_value(json_object_get(payload, "template"));
    json_t *registration = json_object_get(payload, "registration_id");
    json_t *document = json_object_get(payload, "document_id");
    json_t *message = json_object_get(payload, "message_id");
    outgoing m = { 0 };
    usher_store *st = NULL;
    bool ok = template != NULL;

    if (!ok)
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "payload.template is required");
    if (ok && (registration != NULL || document != NULL))
        ok = (st = usher_handler_store(ctx, r)) != NULL;
    if (ok && registration != NULL)
        ok = from_registration(ctx, st, usher_payload_id(payload, "registration_id", r), &m, r);
    else if (ok)
        ok = from_payload(payload, &m, r);
    if (ok && message != NULL && registration != NULL) {
        int64_t id = usher_payload_id(payload, "message_id", r);
        bool skip = false;

        ok = id != 0 && from_message(st, job, id, &m, &skip, r); /* skip: done, no mail */
    }
    if (ok && document != NULL) {
        int64_t id = usher_payload_id(payload, "document_id", r);

        ok = id != 0 && load_attachment(ctx, st, id, &m, r);
    }
    if (ok)
        build(ctx, job, template, &m, p, r);
    json_decref(m.vars);
    free(m.attachment_data);
}

static void report(usher_handler_result *r, const usher_mail_result *sent)
{
    if (sent->status == USHER_MAIL_TEMPORARY)
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "%s", sent->error);
    else if (sent->status == USHER_MAIL_PERMANENT)
        usher_handler_fail(r, USHER_OUTCOME_PERMANENT, "%s", sent->error);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Puts a job back without spending an attempt (its turn is later). */
static void snooze(usher_handler_result *r, int64_t delay_ms, const char *why)
{
    usher_handler_fail(r, USHER_OUTCOME_SNOOZE, "email.send: %s", why);
    r->delay_ms = delay_ms > 0 ? delay_ms : 1000;
}

/*
 * How many messages a session may carry when left_ms remain and each
 * protocol step may take step_ms: its worst case, 6 steps (connect and
 * greeting, EHLO, STARTTLS, EHLO, AUTH, QUIT) and 4 per message (MAIL,
 * RCPT, DATA, end of data), must fit. 0 when not even one fits.
 */
static size_t session_fits(int64_t left_ms, long step_ms)
{
    int64_t steps = left_ms / step_ms;

    return steps < 10 ? 0 : (size_t)((steps - 6) / 4);
}

/*
 * Sends the built messages of jobs[0..n) over shared SMTP sessions. The
 * child's supervisor times the whole batch by its first job's timeout, and
 * a child killed mid-session would have the messages of that session sent
 * again although the relay took some of them. So a session carries only as
 * many messages as its worst case (every step taking [smtp] timeout_ms)
 * allows within what is left of BATCH_SHARE_PCT of that timeout, at most
 * SESSION_CHUNK, and at least one (what a job alone risks); once that share
 * is spent the rest is put back (snoozed) for a later batch. With the
 * defaults (60 s jobs, 30 s steps) that is one message per session: shorter
 * SMTP timeouts or longer email.send timeouts let sessions carry more
 * (conf/usher.conf). With the pool's smtp_rate each
 * message goes alone at its own turn (no burst); turns beyond the first
 * job's rate_wait_limit_ms are put back too.
 */
static void send_prepared(usher_handler_ctx *ctx, const usher_job *jobs, prepared *p, size_t n,
                          usher_handler_result *results)
{
    const usher_config *cfg = usher_handler_config(ctx);
    usher_gcra *limiter = usher_handler_smtp_limiter(ctx);
    usher_smtp_opts opts = { .url = cfg->smtp_url,
                             .starttls = starttls_of(cfg),
                             .timeout_ms = cfg->smtp_timeout_ms,
                             .username = cfg->smtp_username,
                             .password = cfg->smtp_password,
                             .ca_file = cfg->smtp_ca_file };
    usher_mail_envelope mails[USHER_MAIL_SESSION_MAX];
    usher_mail_result sent[USHER_MAIL_SESSION_MAX];
    size_t at[USHER_MAIL_SESSION_MAX], nmails = 0, done = 0;
    long step = cfg->smtp_timeout_ms > 0 ? cfg->smtp_timeout_ms : 30000;
    int64_t start = now_ms();
    int64_t rate_deadline = start + rate_wait_limit_ms(&jobs[0]);
    int64_t batch_deadline = start + (int64_t)jobs[0].timeout_ms * BATCH_SHARE_PCT / 100;

    for (size_t i = 0; i < n; i++) {
        if (p[i].bytes == NULL)
            continue;
        mails[nmails] =
            (usher_mail_envelope){ cfg->smtp_from_address, p[i].to, p[i].bytes, p[i].len };
        at[nmails++] = i;
    }
    while (done < nmails) {
        int64_t snooze_ms = 0, left = batch_deadline - now_ms();
        size_t k = session_fits(left, step);

        if (left <= 0 && done > 0) {
            for (size_t j = done; j < nmails; j++)
                snooze(&results[at[j]], 0, "no time left in this batch; sent later");
            return;
        }
        k = k < 1 ? 1 : k > SESSION_CHUNK ? SESSION_CHUNK : k;
        if (k > nmails - done)
            k = nmails - done;
        if (usher_gcra_limited(limiter)) {
            k = 1;
            left = rate_deadline - now_ms();
            if (left < 0 || !usher_gcra_wait(limiter, (int)left, &snooze_ms)) {
                for (size_t j = done; j < nmails; j++)
                    snooze(&results[at[j]], snooze_ms, "over the pool's smtp_rate");
                return;
            }
        }
        /* sent[] says what became of each mail (k is in range); the summary adds nothing. */
        usher_ignore(usher_mail_send_many(&opts, &mails[done], k, &sent[done]));
        for (size_t j = done; j < done + k; j++)
            report(&results[at[j]], &sent[j]);
        done += k;
    }
}

/* Marks the ledger rows of the messages' mails that the relay took. */
static void messages_sent(usher_handler_ctx *ctx, const usher_job *jobs, json_t *const *payloads,
                          const prepared *p, size_t n, const usher_handler_result *results)
{
    int64_t sent[USHER_MAIL_SESSION_MAX];
    size_t nsent = 0;
    usher_handler_result scratch = { 0 };
    usher_store *st;

    for (size_t i = 0; i < n; i++)
        if (p[i].bytes != NULL && results[i].outcome == USHER_OUTCOME_OK &&
            json_object_get(payloads[i], "message_id") != NULL)
            sent[nsent++] = jobs[i].id;
    if (nsent > 0 && (st = usher_handler_store(ctx, &scratch)) != NULL)
        usher_message_mail_sent(st, sent, nsent);
}

/*
 * Enters the send barrier (engine/backup.h) for the built messages: one
 * whose job's mail is recorded as sent already (a job run again after its
 * completion was lost, or restored from a backup taken after the relay took
 * it) is not sent again but completes. False (every built message put back
 * to retry) when the database cannot say.
 */
static bool barrier_enter(usher_handler_ctx *ctx, const usher_job *jobs, prepared *p, size_t n,
                          usher_handler_result *results)
{
    int64_t ids[USHER_MAIL_SESSION_MAX];
    bool sent[USHER_MAIL_SESSION_MAX];
    size_t at[USHER_MAIL_SESSION_MAX], k = 0;
    usher_handler_result scratch = { 0 };
    usher_store *st;

    for (size_t i = 0; i < n; i++) {
        if (p[i].bytes != NULL) {
            at[k] = i;
            ids[k++] = jobs[i].id;
        }
    }
    if (k == 0)
        return false;
    st = usher_handler_store(ctx, &scratch);
    if (st == NULL || usher_send_barrier_enter(st, ids, k, sent) != USHER_OK) {
        for (size_t j = 0; j < k; j++)
            usher_handler_fail(&results[at[j]], USHER_OUTCOME_RETRY,
                               "email.send: cannot check the sent ledger: %s",
                               st != NULL ? usher_store_errstr(st) : scratch.error);
        return false;
    }
    for (size_t j = 0; j < k; j++) {
        if (sent[j]) {
            free(p[at[j]].bytes);
            p[at[j]].bytes = NULL; /* results[at[j]] stays OK: it was sent */
        }
    }
    return true;
}

/* Records the mails the relay took (usher_effects "mail:JOBID") and leaves the barrier. */
static void barrier_leave(usher_handler_ctx *ctx, const usher_job *jobs, const prepared *p,
                          size_t n, const usher_handler_result *results)
{
    int64_t ids[USHER_MAIL_SESSION_MAX];
    size_t k = 0;
    usher_handler_result scratch = { 0 };
    usher_store *st = usher_handler_store(ctx, &scratch);

    for (size_t i = 0; i < n; i++)
        if (p[i].bytes != NULL && results[i].outcome == USHER_OUTCOME_OK)
            ids[k++] = jobs[i].id;
    if (st == NULL || usher_send_barrier_leave(st, ids, k) != USHER_OK)
        usher_log(USHER_LOG_WARNING, "email.send: %zu sent mail(s) not recorded: %s", k,
                  st != NULL ? usher_store_errstr(st) : scratch.error);
}

void usher_batch_email_send(usher_handler_ctx *ctx, const usher_job *jobs, json_t *const *payloads,
                            size_t n, usher_handler_result *results)
{
    prepared p[USHER_MAIL_SESSION_MAX] = { 0 };

    if (n > USHER_MAIL_SESSION_MAX)
        n = USHER_MAIL_SESSION_MAX; /* batch_max keeps it there; never overrun p */
    for (size_t i = 0; i < n; i++)
        prepare(ctx, &jobs[i], payloads[i], &p[i], &results[i]);
    if (barrier_enter(ctx, jobs, p, n, results)) {
        send_prepared(ctx, jobs, p, n, results);
        barrier_leave(ctx, jobs, p, n, results);
    }
    messages_sent(ctx, jobs, payloads, p, n, results);
    for (size_t i = 0; i < n; i++)
        free(p[i].bytes);
}

void usher_run_email_send(usher_handler_ctx *ctx, const usher_job *job, json_t *payload,
                          usher_handler_result *r)
{
    usher_batch_email_send(ctx, job, &payload, 1, r);
}
