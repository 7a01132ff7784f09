/*
 * The replica lag decision (replica_lag.h): a ring of the primary's LSN
 * samples, and the rule that judges a replica's replay LSN against them.
 */
#include "replica_lag.h"

#include <stdio.h>
#include <string.h>

bool api_lsn_parse(const char *text, uint64_t *lsn)
{
    unsigned int hi, lo;
    int used = 0;

    if (text == NULL || sscanf(text, "%X/%X%n", &hi, &lo, &used) != 2 || text[used] != '\0')
        return false;
    *lsn = (uint64_t)hi << 32 | lo;
    return true;
}

static const api_lag_sample *at(const api_lag_history *h, size_t i)
{
    return &h->s[(h->first + i) % API_LAG_HISTORY];
}

void api_lag_record(api_lag_history *h, uint64_t at_ms, uint64_t lsn)
{
    if (h->n == API_LAG_HISTORY) {
        h->first = (h->first + 1) % API_LAG_HISTORY;
        h->n--;
    }
    h->s[(h->first + h->n) % API_LAG_HISTORY] = (api_lag_sample){ at_ms, lsn };
    h->n++;
}

api_replica_verdict api_replica_judge(const api_lag_history *h, const api_replica_sample *r,
                                      int max_lag_ms, int64_t *lag_ms)
{
    const api_lag_sample *held = NULL; /* the newest sample the replica has replayed past */
    size_t known = 0;                  /* samples taken before the replica answered */

    *lag_ms = 0;
    if (!r->in_recovery)
        return API_REPLICA_FRESH;
    for (size_t i = 0; i < h->n && at(h, i)->at_ms <= r->at_ms; i++) {
        known = i + 1;
        if (at(h, i)->lsn <= r->replay_lsn)
            held = at(h, i);
    }
    if (known == 0) {
        /* Nothing to compare with yet (the first sample is in flight). */
        *lag_ms = -1;
        return r->paused ? API_REPLICA_PAUSED : API_REPLICA_LAGGING;
    }
    if (held == at(h, known - 1))
        *lag_ms = 0; /* it has all the primary had when last asked */
    else if (held != NULL)
        *lag_ms = (int64_t)(r->at_ms - held->at_ms);
    else
        *lag_ms = (int64_t)(r->at_ms - at(h, 0)->at_ms); /* at least this */
    if (r->paused)
        return API_REPLICA_PAUSED;
    if (held == NULL || *lag_ms > max_lag_ms)
        return API_REPLICA_LAGGING;
    return API_REPLICA_FRESH;
}
