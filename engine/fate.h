/*
 * What happens to jobs whose attempt did not succeed: the retry policy's
 * decision, written for a whole batch in one statement. Shared by the
 * claimer (usher_fail) and by lease rescue.
 */
#ifndef USHER_FATE_H
#define USHER_FATE_H

#include <stddef.h>

#include "job.h"
#include "store.h"

/*
 * Applies results. With worker != NULL only jobs that worker still holds
 * are touched; with worker == NULL (rescue) only running jobs whose lease
 * has expired. *updated (may be NULL) receives how many jobs changed.
 */
usher_err usher_fate_apply(usher_store *st, const char *worker, const usher_job_result *results,
                           size_t n, size_t *updated);

#endif
