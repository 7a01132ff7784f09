/*
 * The maintenance leader's duties, run on a thread of the supervisor with
 * its own blocking connection (the supervisor's loop never waits on it):
 * every few seconds it tries to hold the leader lock and, while it does,
 * rescues expired leases and prunes by retention. Exactly one process among
 * all hosts holds the lock; when it dies its session ends and another
 * supervisor's next try takes over.
 */
#ifndef USHER_MAINTENANCE_H
#define USHER_MAINTENANCE_H

#include <stdbool.h>

#include "config.h"
#include "error.h"

typedef struct usher_maintenance usher_maintenance;

/*
 * Starts the thread with a configuration of its own, loaded from
 * config_path like the supervisor's (so a reload never pulls it from under
 * the thread). interval_ms: the pause between rounds.
 */
usher_err usher_maintenance_start(const char *config_path, int interval_ms,
                                  usher_maintenance **out);

/*
 * Hands the thread a copy of cfg (a reload's merged configuration); it
 * takes it before its next round. USHER_ERR_NOMEM leaves it as it was.
 */
usher_err usher_maintenance_reload(usher_maintenance *m, const usher_config *cfg);

/* True while this process holds the leader lock. */
bool usher_maintenance_is_leader(const usher_maintenance *m);

/* Stops the thread, releases the lock and frees. Accepts NULL. */
void usher_maintenance_stop(usher_maintenance *m);

#endif
