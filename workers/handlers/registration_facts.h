/*
 * What the ticket, email and inbox handlers need to know about one
 * registration, read in one query, and its signed ticket code.
 */
#ifndef USHER_REGISTRATION_FACTS_H
#define USHER_REGISTRATION_FACTS_H

#include <stdint.h>

#include "config.h"
#include "store.h"
#include "ticket.h"

/*
 * Room for each text with its NUL, past the column's CHECK limit
 * (schemas/migrations/0004_domain.sql) in characters; a longer value is
 * cut to fit.
 */
#define USHER_FACTS_STATUS_MAX      16  /* 'confirmed' or 'cancelled' */
#define USHER_FACTS_NAME_MAX        256 /* registrations.name: 1 to 200 */
#define USHER_FACTS_EMAIL_MAX       336 /* registrations.email: 3 to 320 */
#define USHER_FACTS_EVENT_NAME_MAX  320 /* events.name: 1 to 300 */
#define USHER_FACTS_VENUE_MAX       320 /* events.venue: no limit, cut */
#define USHER_FACTS_STARTS_AT_MAX   128 /* "Sat 05 Dec 2026, 18:00 (Europe/Berlin)" */
#define USHER_FACTS_TICKET_TYPE_MAX 208 /* ticket_types.name: 1 to 200 */
#define USHER_FACTS_LOCALE_MAX      8   /* 'en', 'de' or 'fr' */

typedef struct usher_registration_facts {
    int64_t registration_id;
    int64_t event_id;
    int64_t created_at_s; /* the registration's time, whole seconds down (never later than
                             the sale): its emails' Date:, the confirmation's deadline */
    char status[USHER_FACTS_STATUS_MAX];
    char attendee_name[USHER_FACTS_NAME_MAX];
    char email[USHER_FACTS_EMAIL_MAX];
    char event_name[USHER_FACTS_EVENT_NAME_MAX];
    char venue[USHER_FACTS_VENUE_MAX];
    char starts_at[USHER_FACTS_STARTS_AT_MAX];       /* in English, as on the ticket */
    char locale[USHER_FACTS_LOCALE_MAX];             /* the attendee's, else the event's */
    char starts_at_local[USHER_FACTS_STARTS_AT_MAX]; /* for locale (usher_format_time) */
    char ticket_type[USHER_FACTS_TICKET_TYPE_MAX];
    char ticket_code[USHER_TICKET_CODE_MAX];
} usher_registration_facts;

/*
 * Loads registration id and signs its ticket code with the configured
 * master key. USHER_ERR_NOT_FOUND for no such registration,
 * USHER_ERR_CONFIG when [tickets] secret is not 64 hex digits, USHER_ERR_DB
 * (errstr on the store) when the query failed.
 */
USHER_MUSTCHECK usher_err usher_registration_facts_load(usher_store *st, const usher_config *cfg,
                                                        int64_t id, usher_registration_facts *out);

#endif
