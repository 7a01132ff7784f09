/*
 * Progress of a running job, for the dashboard: a long job (a report)
 * says how far its current attempt got. The value lives on the job's row
 * and goes with it when the job completes.
 */
#ifndef USHER_JOB_PROGRESS_H
#define USHER_JOB_PROGRESS_H

#include <stdint.h>

#include "store.h"

/*
 * Sets the progress of job_id to percent (0..100) if the job is running.
 * USHER_ERR_INVALID for a percent out of range; a job that is not running
 * (cancelled, rescued and claimed again, gone) is left as it is and this
 * still returns USHER_OK, since progress is advice, not state.
 */
USHER_MUSTCHECK usher_err usher_job_progress(usher_store *st, int64_t job_id, int percent);

#endif
