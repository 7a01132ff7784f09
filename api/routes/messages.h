/*
 * What the message routes share with the event cancellation route
 * (messages.c, event_cancel.c).
 */
#ifndef USHER_API_ROUTES_MESSAGES_H
#define USHER_API_ROUTES_MESSAGES_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "request.h"

/* The longest message body, in characters. */
#define MESSAGE_BODY_MAX 20000

/* Room for "/v1/messages/ID" with its NUL. */
#define API_MESSAGE_PATH_MAX 48

/*
 * The status of usher_message_create()'s answer in res (borrowed from it),
 * with the message's id and path; NULL when the request is answered
 * already (the statement failed, or no such event: 404).
 */
const char *api_message_status(api_req *r, PGresult *res, const char *errmsg, int64_t *id,
                               char location[API_MESSAGE_PATH_MAX]);

/*
 * The message.fanout template for usher_message_create() as JSON text (the
 * caller frees it), its payload's message_id filled by the statement; NULL
 * out of memory.
 */
USHER_MUSTCHECK char *api_fanout_template(const api_req *r);

#endif
