/*
 * The request ids usher-worker's lines for a job name: the job's own
 * (usher_jobs.request_id), or for a job several requests share (a
 * registration batch's ticket or search entry, schemas/migrations/0038)
 * each one its payload lists in request_ids, a line each, so that one grep
 * for a request id still finds the job that served it (issue 16), as when
 * each sale had a job of its own.
 */
#ifndef USHER_JOB_REQUESTS_H
#define USHER_JOB_REQUESTS_H

#include "job.h"

/*
 * Calls line(rid, arg) for each request id of job (a shared job's nulls
 * skipped), or once with "-" when it names none.
 */
void usher_job_requests_each(const usher_job *job, void (*line)(const char *rid, void *arg),
                             void *arg);

#endif
