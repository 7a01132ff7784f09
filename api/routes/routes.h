/* The routes' entry points, listed in the table of api/router.c. */
#ifndef USHER_API_ROUTES_H
#define USHER_API_ROUTES_H

#include "loop_batch.h"
#include "request.h"

/* ops.c */
void route_healthz(api_req *r);
void route_readyz(api_req *r);

/* events.c */
void route_event_get(api_req *r);
void route_event_list(api_req *r);
void route_event_create(api_req *r);
void route_event_update(api_req *r);
void route_ticket_type_create(api_req *r);
/*
 * Room for a cache key of the routes: the longest, "usher:v1:access:" and
 * two ids, takes 58 bytes with its NUL.
 */
#define API_CACHE_KEY_MAX 64

/* The Redis key of an event's cached details (dropped when it changes). */
void api_event_cache_key(int64_t id, char key[API_CACHE_KEY_MAX]);

/*
 * The event changed (committed): drops its cached details, and a read of
 * them in flight from before the change is shared with no later miss.
 */
void api_event_cache_changed(api_loop *loop, int64_t id);

/*
 * A registration into ticket_type was refused as sold out: drops the
 * event's cached details if they still show seats for it (once per
 * sell-out, not once per refusal). Fire and forget.
 */
void api_event_cache_sold_out(api_loop *loop, int64_t event, int64_t ticket_type);

/* Reads the event's details and caches them (a refresh, or the warm-up's fill). */
void api_event_cache_fill(api_loop *loop, int64_t id);

/* analytics.c */
void route_event_analytics(api_req *r);

/* event_removal.c */
void route_event_delete(api_req *r);
void route_session_delete(api_req *r);
void route_session_cancel(api_req *r);

/* ticket_types.c */
void route_ticket_type_get(api_req *r);
void route_ticket_type_update(api_req *r);
void route_ticket_type_close(api_req *r);
void route_ticket_type_reopen(api_req *r);

/* messages.c, event_cancel.c: messages to attendees and event cancellation */
void route_message_create(api_req *r);
void route_message_get(api_req *r);
void route_message_cancel(api_req *r);

/* schedules.c: schedules anchored to an event or a session */
void route_schedule_create(api_req *r);
void route_schedule_list(api_req *r);
void route_schedule_delete(api_req *r);
void route_event_cancel(api_req *r);

/* registrations.c, registration_cancel.c */
void route_register(api_req *r);
/* Registrations gathered per loop turn (api/loop_batch.h). */
extern const api_batch_kind route_register_batch;
/* What a loop keeps for its registrations' batches (loop->register_texts). */
void route_register_texts_free(api_register_texts *t);
void route_registration_cancel(api_req *r);
/* registrations_list.c */
void route_registration_list(api_req *r);
void route_registration_resend(api_req *r);

/* checkins.c */
void route_checkin(api_req *r);
/* Scans gathered per loop turn (api/loop_batch.h). */
extern const api_batch_kind route_checkin_batch;

/* reports.c */
void route_report_create(api_req *r);
void route_report_get(api_req *r);
void route_job_get(api_req *r);

/* badges.c */
void route_badges_create(api_req *r);
void route_badges_list(api_req *r);

/* inbox.c */
void route_inbox(api_req *r);

/* dashboard.c */
void route_dashboard(api_req *r);
void route_dashboard_file(api_req *r);

/* admin_queues.c */
void route_admin_queues(api_req *r);
void route_admin_queue_pause(api_req *r);
void route_admin_queue_resume(api_req *r);
void route_admin_pools(api_req *r);
void route_admin_actions(api_req *r);

/* admin_audit.c */
void route_admin_audit(api_req *r);

/* admin_tokens.c */
void route_admin_token_create(api_req *r);
void route_admin_token_list(api_req *r);
void route_admin_token_get(api_req *r);
void route_admin_token_revoke(api_req *r);
void route_admin_organizer_create(api_req *r);
void route_admin_organizer_list(api_req *r);
void route_admin_organizer_get(api_req *r);

/* admin_webhooks.c */
void route_admin_webhook_deliveries(api_req *r);
void route_admin_webhook_replay(api_req *r);

/* admin_jobs.c */
void route_admin_jobs(api_req *r);
void route_admin_job(api_req *r);
void route_admin_job_retry(api_req *r);
void route_admin_job_discard(api_req *r);
void route_admin_job_cancel(api_req *r);
void route_admin_jobs_retry(api_req *r);
void route_admin_jobs_cancel(api_req *r);
void route_admin_jobs_discard(api_req *r);
void route_admin_dead_retry(api_req *r);
void route_admin_dead_discard(api_req *r);

/* search.c */
void route_search(api_req *r);

/* webhooks.c */
void route_webhook_create(api_req *r);
void route_webhook_list(api_req *r);
void route_webhook_get(api_req *r);
/* webhook_endpoints.c */
void route_webhook_update(api_req *r);
void route_webhook_enable(api_req *r);
void route_webhook_rotate_secret(api_req *r);
void route_webhook_delete(api_req *r);
void route_webhook_deliveries(api_req *r);
void route_webhook_replay(api_req *r);

/* Sessions and their content (sessions.c, session_access.c, content*.c, params.c). */
void route_session_create(api_req *r);
void route_session_list(api_req *r);
void route_session_get(api_req *r);
void route_session_update(api_req *r);
void route_session_access(api_req *r);
/* The Redis key of a session door's cached answer for a registration. */
void api_access_cache_key(int64_t session, int64_t registration, char key[API_CACHE_KEY_MAX]);
/* A session door's answer as cached (JSON text, malloc'd): reason NULL for access. */
char *api_access_answer_text(int64_t session, const char *reason);
void route_content_upload(api_req *r);
void route_content_list(api_req *r);
void route_content_get(api_req *r);
/*
 * Answers with a stored document's file (sendfile), its ETag and caching
 * headers, honouring If-None-Match (304), Range (206, 416) and HEAD.
 */
void api_content_send(api_req *r, const char *sha256, const char *content_type,
                      const char *filename, uint64_t size);
/* A query-string parameter into out: 1 found, 0 absent, -1 malformed or longer than len - 1. */
int api_query_param(const api_req *r, const char *name, char *out, size_t len);
/*
 * A whole-number query parameter in min..max into *out (absent: *out is
 * left); false when it is malformed or out of range (answered 422).
 */
bool api_query_whole(api_req *r, const char *name, int64_t min, int64_t max, int64_t *out);
/*
 * A query parameter that must be one of words (NULL-terminated, each
 * shorter than API_QUERY_WORD_MAX) into *out, which points into words
 * (absent: NULL); false when it is not one (answered 422).
 */
#define API_QUERY_WORD_MAX 32
bool api_query_word(api_req *r, const char *name, const char *const *words, const char **out);

#endif
