/*
 * The email.send side of messages to attendees (message_fanout.c enqueues
 * the jobs): a job whose payload names a message_id gets the message's
 * subject and body as template variables, is skipped when the message was
 * cancelled before it went, and marks its ledger row sent once the relay
 * took it (schemas/migrations/0017_messages.sql).
 */
#ifndef USHER_MESSAGE_MAIL_H
#define USHER_MESSAGE_MAIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "store.h"

/*
 * Adds subject, body_text and body_html (message_format.h) of message to
 * vars, and for a session's message session_title, session_starts_at and
 * session_ends_at (for locale, in the event's time zone). *skip is true when the message was
 * cancelled: its ledger row for job is then marked skipped, and the job ends without a mail.
 */
USHER_MUSTCHECK usher_err usher_message_mail_vars(usher_store *st, int64_t message,
                                                  const char *locale, const usher_job *job,
                                                  json_t *vars, bool *skip);

/* Marks the ledger rows of the n jobs (ids) sent. A failure is logged only. */
void usher_message_mail_sent(usher_store *st, const int64_t *jobs, size_t n);

#endif
