/*
 * Job progress: one UPDATE of the running job's row. It is a plain update
 * of a column no index covers, so PostgreSQL can keep it a HOT update
 * (fillfactor 90 leaves the room) and the claim index is not touched.
 */
#include "job_progress.h"

#include <stdio.h>

#include "inttext.h"

static const char progress_sql[] =
    "UPDATE usher_jobs SET progress = $2 WHERE id = $1 AND state = 'running'"
    " AND progress IS DISTINCT FROM $2::int2";

usher_err usher_job_progress(usher_store *st, int64_t job_id, int percent)
{
    char id[USHER_INT_TEXT_MAX], pct[USHER_INT_TEXT_MAX];
    const char *params[] = { id, pct };
    PGresult *res;
    usher_err err;

    if (percent < 0 || percent > 100)
        return usher_store_fail(st, USHER_ERR_INVALID, "progress %d is not 0..100", percent);
    usher_int_text(job_id, id);
    usher_int_text(percent, pct);
    err = usher_store_exec(st, progress_sql, 2, params, &res);
    if (err == USHER_OK)
        PQclear(res);
    return err;
}
