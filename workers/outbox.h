/*
 * Outcomes waiting to be written to the database: ids of completed jobs
 * and failed jobs with their results. The supervisor fills one outbox
 * while another is being flushed, and merges a failed flush back so no
 * outcome is dropped while the database is away.
 */
#ifndef USHER_OUTBOX_H
#define USHER_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "handler.h"
#include "job.h"

typedef struct usher_failed_job {
    usher_job *job; /* owned */
    usher_handler_result result;
} usher_failed_job;

typedef struct usher_outbox {
    int64_t *done;
    size_t ndone, done_cap;
    usher_failed_job *failed;
    size_t nfailed, failed_cap;
} usher_outbox;

/* Adds an outcome; takes ownership of job. false when out of memory (job is freed). */
USHER_MUSTCHECK bool usher_outbox_add(usher_outbox *o, usher_job *job,
                                      const usher_handler_result *r);

bool usher_outbox_empty(const usher_outbox *o);

/* Moves everything from src to the end of dst; false when out of memory (src kept). */
USHER_MUSTCHECK bool usher_outbox_merge(usher_outbox *dst, usher_outbox *src);

/* Frees the jobs and empties the outbox (keeps its arrays for reuse). */
void usher_outbox_clear(usher_outbox *o);

/* Frees everything. */
void usher_outbox_release(usher_outbox *o);

#endif
