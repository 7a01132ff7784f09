/*
 * What happens to jobs whose attempt did not succeed: the retry policy's
 * decision, written for a whole batch in one statement. Shared by the
 * claimer (usher_fail) and by lease rescue.
 */
#ifndef USHER_FATE_H
#define USHER_FATE_H

#include <stddef.h>

#include "config.h"
#include "job.h"
#include "stmt.h"

/*
 * Builds the statement that applies results (its count: how many jobs
 * changed). With worker != NULL only jobs that worker still holds are
 * touched; with worker == NULL (rescue) only running jobs whose lease has
 * expired.
 */
USHER_MUSTCHECK usher_err usher_fate_stmt(usher_stmt *s, const usher_config *cfg,
                                          const char *worker, const usher_job_result *results,
                                          size_t n);

#endif
