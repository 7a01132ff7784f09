/*
 * Enqueue: one job or a batch in one statement. The statement runs on the
 * store's connection as it is: inside the caller's open transaction the
 * jobs exist only if that transaction commits; on an idle connection the
 * statement commits by itself.
 */
#ifndef USHER_ENQUEUE_H
#define USHER_ENQUEUE_H

#include <stddef.h>

#include "job.h"
#include "store.h"

/*
 * Enqueues n jobs; out[i] receives the id of jobs[i] (or, when a live job
 * holds its unique key, that job's id with existed=true). All jobs are
 * validated before any is written: a bad one refuses the whole batch with
 * USHER_ERR_INVALID, _PAYLOAD, _TOO_LARGE or _UNKNOWN_QUEUE and the index
 * and reason in the store's errstr.
 */
USHER_MUSTCHECK usher_err usher_enqueue_batch(usher_store *st, const usher_enqueue_opts *jobs,
                                              size_t n, usher_enqueued *out);

/* usher_enqueue_batch for one job. */
USHER_MUSTCHECK usher_err usher_enqueue(usher_store *st, const usher_enqueue_opts *job,
                                        usher_enqueued *out);

#endif
