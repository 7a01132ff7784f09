/*
 * The claimer's side of the queue: take a batch of jobs with a lease,
 * extend leases, and report outcomes in batches.
 */
#ifndef USHER_CLAIM_H
#define USHER_CLAIM_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "stmt.h"
#include "store.h"

/*
 * Claims up to max jobs from the given queues in one statement (FOR UPDATE
 * SKIP LOCKED), highest priority first across all of them, skipping paused
 * queues and jobs whose run_at is in the future. Within a priority, jobs
 * whose deadline is within deadline_lead_ms come first (earliest deadline
 * first), then the partitions (partition_key) that have runnable jobs share
 * the batch in turn, each its oldest jobs first (claim.c says how). A job
 * claimed after its deadline is counted (usher_claim_deadline_counts) and,
 * if its kind says deadline_drop, cancelled and not returned. Each job
 * gets a lease held by worker until now + its timeout + lease_grace_ms.
 * *jobs (freed with usher_jobs_free) and *n receive the claimed jobs, in
 * claim order; zero jobs is not an error.
 */
USHER_MUSTCHECK usher_err usher_claim(usher_store *st, const char *const *queues, size_t nqueues,
                                      const char *worker, size_t max, usher_job **jobs, size_t *n);

/*
 * How many jobs this process claimed after their deadline (*missed) and,
 * of those, cancelled instead of running them because their kind says
 * deadline_drop (*dropped). Counters since the process started.
 */
void usher_claim_deadline_counts(uint64_t *missed, uint64_t *dropped);

/*
 * Extends the leases that worker holds on the given jobs to now + lease_ms.
 * *extended (may be NULL) receives how many were still held.
 */
USHER_MUSTCHECK usher_err usher_heartbeat(usher_store *st, const char *worker, const int64_t *ids,
                                          size_t n, int lease_ms, size_t *extended);

/*
 * Completes jobs that worker holds: deletes them and counts them in the
 * per-minute statistics, one statement for all. Jobs whose lease worker no
 * longer holds (rescued after the lease ran out) are left alone;
 * *completed (may be NULL) says how many were completed.
 */
USHER_MUSTCHECK usher_err usher_complete(usher_store *st, const char *worker, const int64_t *ids,
                                         size_t n, size_t *completed);

/*
 * Records the failed (or snoozed) attempts of jobs that worker holds, one
 * statement for all: the retry policy of each job's kind decides between
 * a retry after backoff and the dead-letter queue; the error is appended
 * to the job's history. *updated (may be NULL) as for usher_complete.
 * With worker NULL it applies to running jobs whose lease has expired
 * instead (lease rescue).
 */
USHER_MUSTCHECK usher_err usher_fail(usher_store *st, const char *worker,
                                     const usher_job_result *results, size_t n, size_t *updated);

/*
 * The same operations as statements, for a caller that runs them on its
 * own connection (the worker supervisor's event loop). Each builds *s
 * (release it with usher_stmt_release); claim results are read with
 * usher_claim_read, the others' with usher_stmt_count.
 */
USHER_MUSTCHECK usher_err usher_claim_stmt(usher_stmt *s, const usher_config *cfg,
                                           const char *const *queues, size_t nqueues,
                                           const char *worker, size_t max);
USHER_MUSTCHECK usher_err usher_claim_read(const PGresult *res, usher_job **jobs, size_t *n);
USHER_MUSTCHECK usher_err usher_heartbeat_stmt(usher_stmt *s, const char *worker,
                                               const int64_t *ids, size_t n, int lease_ms);
USHER_MUSTCHECK usher_err usher_complete_stmt(usher_stmt *s, const char *worker, const int64_t *ids,
                                              size_t n);

#endif
