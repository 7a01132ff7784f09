/*
 * Real processes for tests: start a binary, find its children, signal it,
 * wait for it to exit, with deadlines instead of sleeps.
 */
#ifndef USHER_TESTPROC_H
#define USHER_TESTPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Starts argv[0] with argv; its stdout and stderr go to log_path (appended). */
pid_t testproc_start(const char *const argv[], const char *log_path);

/* Waits up to timeout_ms for pid to exit; true and *status (waitpid's) if it did. */
bool testproc_wait(pid_t pid, int timeout_ms, int *status);

/* SIGKILLs pid and reaps it (for cleanup; safe if it already exited). */
void testproc_kill(pid_t pid);

/* The pids whose parent is pid, at most max; returns how many. */
size_t testproc_children(pid_t pid, pid_t *out, size_t max);

/* The name usher-worker's maintenance process gives itself (workers/maint_process.c). */
#define TESTPROC_MAINT_NAME "usher-maint"

/*
 * The children of the usher-worker pid that run jobs: all its children
 * but the maintenance process. At most max; returns how many.
 */
size_t testproc_pool_children(pid_t pid, pid_t *out, size_t max);

/* The maintenance process of the usher-worker pid, or 0 if it has none now. */
pid_t testproc_maintenance(pid_t pid);

/*
 * Starts the usher-worker at path for pool with config on database_url,
 * with its documents, search index and log (worker.log) in a new directory
 * /tmp/usher-NAME-XXXXXX, whose path goes into workdir. Fails the test if
 * it cannot.
 */
pid_t testproc_start_worker(const char *path, const char *config, const char *pool,
                            const char *database_url, const char *name, char workdir[64]);

/* SIGTERM, then a clean exit (status 0) within 60 s; fails the test otherwise. */
void testproc_stop_cleanly(pid_t pid);

/* Polls cond(arg) every 20 ms until it is true or timeout_ms passes. */
bool testproc_wait_for(bool (*cond)(void *arg), void *arg, int timeout_ms);

/* Lines of the log at path that contain text (0 when it cannot be read). */
int testproc_log_lines(const char *path, const char *text);

#endif
