/*
 * The effects ledger (effects.h): one INSERT ... ON CONFLICT DO NOTHING.
 * Two transactions racing for one key serialise on its primary key: the
 * second waits for the first and then sees the row (no insert), or takes
 * the key if the first rolled back.
 */
#include "effects.h"

#include "inttext.h"

static const char once_sql[] = "INSERT INTO usher_effects (key, job_id) VALUES ($1, $2)"
                               " ON CONFLICT (key) DO NOTHING";

usher_err usher_effect_once(usher_store *st, const char *key, int64_t job_id, bool *first)
{
    char job[USHER_INT_TEXT_MAX];
    const char *params[] = { key, job_id > 0 ? job : NULL };
    PGresult *res = NULL;
    usher_err err;

    *first = false;
    usher_int_text(job_id, job);
    err = usher_store_exec_hot(st, once_sql, 2, params, &res);
    if (err == USHER_OK)
        *first = PQcmdTuples(res)[0] == '1';
    PQclear(res);
    return err;
}
