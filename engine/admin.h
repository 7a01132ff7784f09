/*
 * Operators' view of jobs: list and show, cancel, and the dead-letter
 * queue (list, retry, discard by id or by filter). Results are JSON so
 * usherctl and the dashboard API print or serve them as they are.
 */
#ifndef USHER_ADMIN_H
#define USHER_ADMIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Which jobs an operation applies to. NULL or 0 fields do not filter. */
typedef struct usher_job_filter {
    const char *state; /* available, running, dead, cancelled */
    const char *queue;
    const char *kind;
    const char *error_text; /* substring of any attempt's error, case-insensitive */
    int64_t since_us;       /* finished (dead) or created at or after */
    int64_t until_us;       /* ... and before */
    int64_t before_id;      /* cursor: only ids below this (newest first) */
    int64_t id;             /* exactly this job */
    int64_t organizer_id;   /* jobs whose payload names this organizer's event, registration,
                               webhook endpoint or report */
    size_t limit;           /* 0: 100; at most 1000 (bulk actions: 0 is every match) */
} usher_job_filter;

/*
 * Jobs matching f, newest first, as a JSON array of objects (id, queue,
 * kind, priority, state, attempt, max_attempts, run_at, created_at,
 * finished_at, locked_by, locked_until, unique_key, progress (percent
 * done of a running job that reports it, else null), parent_id (the job
 * that chained it), attempted_at (the current or last attempt's start),
 * last_error).
 */
USHER_MUSTCHECK usher_err usher_admin_list(usher_store *st, const usher_job_filter *f,
                                           json_t **out);

/*
 * One job with its payload and every attempt's error: the list's fields,
 * payload, errors (the raw history), attempts ([{attempt, started_at,
 * finished_at, duration_ms, error, worker}], oldest first), parent ({id,
 * queue, kind, state} of the job that chained it while that job is kept,
 * else null) and children (the first 100 jobs it chained, by id);
 * USHER_ERR_NOT_FOUND if none.
 */
USHER_MUSTCHECK usher_err usher_admin_show(usher_store *st, int64_t id, json_t **out);

/*
 * Cancels a job that is not running yet. USHER_ERR_NOT_FOUND if no such
 * job, USHER_ERR_STATE if it is running, dead or already cancelled.
 */
USHER_MUSTCHECK usher_err usher_admin_cancel(usher_store *st, int64_t id);

/*
 * Puts dead jobs back to work: attempts reset to 0, history kept, runnable
 * now. By id (USHER_ERR_NOT_FOUND / _STATE if it is not dead) or by filter
 * (f->state is ignored: only dead jobs are touched). A dead job whose
 * unique key a live job holds again is left dead. *count receives how many
 * jobs were retried.
 */
USHER_MUSTCHECK usher_err usher_dead_retry_id(usher_store *st, int64_t id);
USHER_MUSTCHECK usher_err usher_dead_retry(usher_store *st, const usher_job_filter *f,
                                           size_t *count);

/* Deletes dead jobs, by id or by filter, as for retry. */
USHER_MUSTCHECK usher_err usher_dead_discard_id(usher_store *st, int64_t id);
USHER_MUSTCHECK usher_err usher_dead_discard(usher_store *st, const usher_job_filter *f,
                                             size_t *count);

/* How many dead jobs the filter matches: what a retry or discard would touch (a dry run). */
USHER_MUSTCHECK usher_err usher_dead_count(usher_store *st, const usher_job_filter *f,
                                           size_t *count);

/* What a bulk action does to the jobs its filter matches. */
typedef enum usher_bulk_action {
    USHER_BULK_RETRY,   /* dead jobs back to work, as usher_dead_retry */
    USHER_BULK_CANCEL,  /* available jobs (runnable or scheduled) cancelled */
    USHER_BULK_DISCARD, /* dead jobs deleted, as usher_dead_discard */
} usher_bulk_action;

/*
 * Applies action to every job f matches in the state it applies to (a
 * filter state of another state matches none; f->before_id bounds the set
 * to the ids a dry run counted). With dry_run nothing changes. *count is
 * how many jobs it acted on (or would), *max_id the highest of their ids
 * (0: none). USHER_ERR_INVALID for an unknown f->state.
 */
USHER_MUSTCHECK usher_err usher_admin_bulk(usher_store *st, usher_bulk_action action,
                                           const usher_job_filter *f, bool dry_run, size_t *count,
                                           int64_t *max_id);

#endif
