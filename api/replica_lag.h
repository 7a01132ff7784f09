/*
 * How far behind the primary a replica is, decided from LSNs alone, so that
 * an idle primary (no new commits: pg_last_xact_replay_timestamp() ages on a
 * replica that is current) and a paused replay (WAL still arrives, nothing
 * is applied) are both judged right. usher-api samples the primary's
 * pg_current_wal_lsn() every few hundred ms into a history of (time, LSN);
 * a replica that has replayed up to LSN R, read at time t, holds everything
 * the primary held at the newest sample p with p.lsn <= R, so its data is at
 * most t - p.at old. It is fresh when that is within the bound. Pure: no
 * I/O, times are the caller's (monotonic milliseconds).
 */
#ifndef USHER_API_REPLICA_LAG_H
#define USHER_API_REPLICA_LAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Samples kept; the oldest go first (at a 250 ms check, about a minute). */
#define API_LAG_HISTORY 256

typedef struct api_lag_sample {
    uint64_t at_ms; /* when it was asked (before the answer: the LSN is at least that of then) */
    uint64_t lsn;
} api_lag_sample;

/* The primary's LSN over time, oldest first; zero-initialise. */
typedef struct api_lag_history {
    api_lag_sample s[API_LAG_HISTORY];
    size_t first, n;
} api_lag_history;

/* What a replica said, at at_ms (when its answer arrived). */
typedef struct api_replica_sample {
    uint64_t at_ms;
    bool in_recovery; /* false: it is a primary itself (promoted), so it is current */
    bool paused;      /* pg_is_wal_replay_paused() */
    uint64_t replay_lsn;
} api_replica_sample;

typedef enum api_replica_verdict {
    API_REPLICA_FRESH,   /* within the bound: read it */
    API_REPLICA_LAGGING, /* further behind than the bound, or not known to be within it */
    API_REPLICA_PAUSED,  /* replay paused: skipped whatever its LSN */
} api_replica_verdict;

/* Parses "X/Y" (pg_lsn as text) into *lsn; false if it is not one. */
bool api_lsn_parse(const char *text, uint64_t *lsn);

/* Appends a sample of the primary (times must not go back); the oldest is dropped when full. */
void api_lag_record(api_lag_history *h, uint64_t at_ms, uint64_t lsn);

/*
 * Judges replica r against the primary's history h with the bound
 * max_lag_ms; *lag_ms gets the estimate of how old its data is (0: it has
 * everything the primary had at the last sample before r.at_ms; when no
 * sample is old enough to tell, the age of the oldest, a lower bound).
 */
api_replica_verdict api_replica_judge(const api_lag_history *h, const api_replica_sample *r,
                                      int max_lag_ms, int64_t *lag_ms);

#endif
