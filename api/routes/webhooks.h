/*
 * What the webhook endpoint routes share (webhooks.c creates and reads
 * endpoints, webhook_endpoints.c changes them): the endpoint as JSON
 * without its secret, and the checks of a URL, a list of events and a new
 * secret.
 */
#ifndef USHER_API_ROUTES_WEBHOOKS_H
#define USHER_API_ROUTES_WEBHOOKS_H

#include <jansson.h>
#include <stdbool.h>

#include "request.h"
#include "store.h"

#define API_WEBHOOK_EVENTS_MAX 16
#define API_WEBHOOK_SECRET_HEX 65 /* 32 random bytes in hex, and the NUL */

/* The endpoint row w as JSON, without its secret. */
#define ENDPOINT_JSON                                                                  \
    "json_build_object('id', w.id, 'organizer_id', w.organizer_id, 'url', w.url,"      \
    " 'events', w.events, 'enabled', w.enabled, 'disabled_reason', w.disabled_reason," \
    " 'created_at', w.created_at)"

/* An http(s) URL whose host may be posted to; false when answered (422). */
USHER_MUSTCHECK bool api_webhook_url_ok(api_req *r, const char *url);

/* Every item a known event name; false when answered (422, field events). */
USHER_MUSTCHECK bool api_webhook_events_ok(api_req *r, json_t *events);

/* A new signing secret: 32 random bytes in hex. */
void api_webhook_new_secret(char secret[API_WEBHOOK_SECRET_HEX]);

/*
 * For api_blocking: replays the delivery whose id *arg (an int64_t) is, as
 * usher_webhook_replay does (platform/webhook_replay.h), and answers
 * {"delivery_id", "job_id"}. Shared by the admins' and the organizers' replay.
 */
USHER_MUSTCHECK usher_err api_webhook_replay_job(usher_store *st, void *arg, json_t **out);

#endif
