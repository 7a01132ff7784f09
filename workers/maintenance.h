/*
 * The maintenance leader's duties, as the supervisor sees them: every few
 * seconds try to hold the leader lock and, while it is held, rescue
 * expired leases, prune by retention and fire the periodic jobs. Exactly
 * one process among all hosts holds the lock; when it dies its session
 * ends and another supervisor's next try takes over.
 *
 * The work runs in a child process of the supervisor (maint_process.h)
 * with its own blocking connection, so the supervisor's loop never waits
 * on it and the supervisor never starts a thread: every fork it makes
 * (children, and this process) is from a single-threaded process (fork.h).
 * The supervisor watches the process and starts another when it dies.
 */
#ifndef USHER_MAINTENANCE_H
#define USHER_MAINTENANCE_H

#include <event2/event.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "error.h"

typedef struct usher_maintenance usher_maintenance;

/*
 * Forks the maintenance process and watches it from base. cfg is
 * borrowed and must outlive m: each process works with cfg as it was at
 * its fork (so a reload in the supervisor never changes a running round).
 * interval_ms: the pause between rounds.
 */
USHER_MUSTCHECK usher_err usher_maintenance_start(struct event_base *base, const usher_config *cfg,
                                                  int interval_ms, usher_maintenance **out);

/*
 * After a reload (cfg: the merged configuration, which must outlive m):
 * the process finishes its round and exits, and the next one is forked at
 * once with cfg as it is then, so maintenance runs with the reloaded
 * values from its next round on. The lock is released and taken again
 * (another supervisor may win it meanwhile).
 */
void usher_maintenance_reload(usher_maintenance *m, const usher_config *cfg);

/* True while the maintenance process holds the leader lock (as of its last round). */
bool usher_maintenance_is_leader(const usher_maintenance *m);

/*
 * A child of the supervisor that the caller reaped: true if it was the
 * maintenance process, which is then started again (at once, or a second
 * after the previous start if that one died sooner).
 */
bool usher_maintenance_exited(usher_maintenance *m, pid_t pid, int status);

/*
 * Closes the process's socket, waits for it to finish its round and exit
 * (its session ends, so the lock is released), and frees. Accepts NULL.
 */
void usher_maintenance_stop(usher_maintenance *m);

#endif
