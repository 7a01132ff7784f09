/*
 * usher-worker's supervisor: one libevent loop per pool that owns the
 * database connection (claim, complete, LISTEN), the pre-forked children
 * that run handlers, and the timers (heartbeat, poll, watchdog, scaling).
 */
#ifndef USHER_SUPERVISOR_H
#define USHER_SUPERVISOR_H

/*
 * Runs the pool named pool with the configuration at config_path until
 * SIGTERM or SIGINT has drained it. Returns the process exit status.
 */
int usher_supervisor_run(const char *config_path, const char *pool);

#endif
