/*
 * Running a real job handler inside a test, as a pool child would: claim
 * the job, then call its kind's handler in this process.
 */
#ifndef USHER_TESTJOB_H
#define USHER_TESTJOB_H

#include "config.h"
#include "handler.h"
#include "store.h"

/*
 * Claims the one job waiting in queue as worker, runs sql_between (when
 * not NULL) between the claim and the handler, and runs the handler of
 * the job's kind on it with worker as the handler's worker id (reset to ""
 * after). Its result. Fails the test when there is no job to claim.
 */
usher_handler_result testjob_claim_and_run(usher_store *st, const usher_config *cfg,
                                           const char *queue, const char *worker,
                                           const char *sql_between);

/*
 * Enqueues n notify.inbox jobs for registration_id into the notifications
 * queue, titled "Notice 0", "Notice 1", ... Fails the test on error.
 */
void testjob_enqueue_inbox(usher_store *st, long long registration_id, int n);

#endif
