/*
 * The effects ledger (table usher_effects): a key recorded once ever, in
 * the caller's transaction, so that an effect guarded by it (enqueueing a
 * chained job, a message to one attendee) happens at most once however
 * often the code that causes it runs. Unlike a job's unique key, which
 * guards only while that job lives, a key stays recorded.
 */
#ifndef USHER_EFFECTS_H
#define USHER_EFFECTS_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

/*
 * Records key (with job_id, 0 for none) inside the transaction open on st.
 * *first is true when this call recorded it, false when it was already
 * there: then the effect has happened (or its transaction is committing)
 * and the caller skips it. Commit or roll back with the effect itself.
 */
USHER_MUSTCHECK usher_err usher_effect_once(usher_store *st, const char *key, int64_t job_id,
                                            bool *first);

#endif
