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

typedef struct usher_registration_facts {
    int64_t registration_id;
    int64_t event_id;
    int64_t created_at_s; /* the registration's time: a stable Date: for its emails */
    char status[16];
    char attendee_name[256];
    char email[336];
    char event_name[320];
    char venue[320];
    char starts_at[128]; /* "Sat 05 Dec 2026, 18:00 (Europe/Berlin)" */
    char ticket_type[208];
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
