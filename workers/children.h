/*
 * The pool's child processes, seen from the supervisor: fork them, hand
 * each a job over its socketpair, collect outcomes, enforce each job's
 * timeout, and turn a child's death into a failed attempt. The number of
 * children follows a target that the supervisor sets (autoscaling,
 * shutdown); children above the target retire as soon as they are idle.
 */
#ifndef USHER_CHILDREN_H
#define USHER_CHILDREN_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "error.h"
#include "handler.h"
#include "job.h"

typedef struct usher_children usher_children;

typedef struct usher_children_hooks {
    /*
     * A job left its child: the handler's outcome, or a failure made up
     * for a child that crashed, timed out or was killed at shutdown.
     * Ownership of job passes to the callee (usher_jobs_free(job, 1)).
     */
    void (*finished)(usher_job *job, const usher_handler_result *r, void *arg);
    /* A child became idle (or a new one started): a claim may follow. */
    void (*idle)(void *arg);
    /*
     * A process of the supervisor's that is not one of the pool's children
     * (the maintenance process) exited: the reap collects every child, so
     * it hands the others their status. May be NULL.
     */
    void (*exited)(pid_t pid, int status, void *arg);
    /*
     * Jobs taken back from a child before it started them (adaptive pools:
     * they were queued behind a slow job), oldest first. Ownership of each
     * job passes to the callee; the array is borrowed.
     */
    void (*returned)(usher_job **jobs, size_t n, void *arg);
    void *arg;
} usher_children_hooks;

/*
 * cfg (borrowed, must outlive c) is what each child gets at its fork;
 * depth is how many jobs one child may hold at once (1..64: they run one
 * after the other, each under its own timeout).
 */
USHER_MUSTCHECK usher_err usher_children_new(struct event_base *base, const usher_config *cfg,
                                             size_t depth, const usher_children_hooks *hooks,
                                             usher_children **out);

/*
 * Makes the pool adaptive (engine/hold.h): a child holds as many jobs as
 * it finishes in the hold budget, at most depth; the window per child is
 * at most depth + prefetch; jobs are queued only behind a young head, and
 * those queued behind an old one are taken back (the returned hook).
 */
void usher_children_adapt(usher_children *c, size_t prefetch);

/* Jobs per child the pool should hold (claimed, queued or running): adaptive, or depth. */
size_t usher_children_window(const usher_children *c);

/* Kills whatever is left (SIGKILL) and frees; jobs still running are reported lost first. */
void usher_children_free(usher_children *c);

/* Forks or retires children until there are target of them (busy ones retire when done). */
void usher_children_set_target(usher_children *c, size_t target);
size_t usher_children_target(const usher_children *c);

size_t usher_children_count(const usher_children *c);
/* Children that take jobs (not retiring, not stale). */
size_t usher_children_open(const usher_children *c);
size_t usher_children_idle(const usher_children *c);
size_t usher_children_busy(const usher_children *c);

/* Up to max pids of the live children into out; returns how many. */
size_t usher_children_pids(const usher_children *c, pid_t *out, size_t max);

/*
 * Gives job to an idle child, with a deadline of job->timeout_ms. Takes
 * ownership of job. USHER_ERR_STATE when no child can take it now (job
 * untouched).
 */
USHER_MUSTCHECK usher_err usher_children_dispatch(usher_children *c, usher_job *job);

/* Ids of the jobs running now, at most max; returns how many. */
size_t usher_children_running_ids(const usher_children *c, int64_t *ids, size_t max);

/*
 * Kills every busy child now (shutdown grace ran out). Their jobs are
 * reported with outcome SNOOZE and reason, so they run again without
 * spending an attempt.
 */
void usher_children_kill_busy(usher_children *c, const char *reason);

/*
 * After a reload: every child forked so far takes no new job and exits
 * once its jobs are done, and new children, forked from the configuration
 * cfg points to now, take their places (the target is unchanged).
 */
void usher_children_renew(usher_children *c);

/* Collects children that exited (call on SIGCHLD). */
void usher_children_reap(usher_children *c);

#endif
