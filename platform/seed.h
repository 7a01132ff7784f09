/*
 * Demo data for trying Usher out: an organizer, a large event with
 * sessions and ticket types, and a few hundred registrations.
 */
#ifndef USHER_SEED_H
#define USHER_SEED_H

#include <stdint.h>

#include "store.h"

typedef struct usher_seed_result {
    int64_t organizer_id;
    int64_t event_id;
    int64_t registrations;
    int64_t sessions;
} usher_seed_result;

/* Creates the demo in one statement (all or nothing); registrations: how many, 1..100000. */
USHER_MUSTCHECK usher_err usher_seed_demo(usher_store *st, int registrations,
                                          usher_seed_result *out);

#endif
