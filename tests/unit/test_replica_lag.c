/*
 * The replica lag decision (api/replica_lag.c): a table of primary LSN
 * histories, replica answers and bounds, each with the verdict and lag it
 * must give; LSN parsing; and the history ring dropping its oldest sample.
 */
#include <criterion/criterion.h>

#include "replica_lag.h"

#define MAX_SAMPLES 8

typedef struct lag_case {
    const char *name;
    api_lag_sample history[MAX_SAMPLES]; /* until at_ms 0 */
    api_replica_sample replica;
    int max_lag_ms;
    api_replica_verdict verdict;
    int64_t lag_ms;
} lag_case;

/* A primary busy from t=1000: its LSN grows 100 every 250 ms. */
#define BUSY                                                        \
    { 1000, 1000 }, { 1250, 1100 }, { 1500, 1200 }, { 1750, 1300 }, \
    {                                                               \
        2000, 1400                                                  \
    }

static const lag_case cases[] = {
    { "an idle primary: the same LSN for seconds, the replica has it",
      { { 1000, 500 }, { 1250, 500 }, { 1500, 500 }, { 9000, 500 } },
      { 9010, true, false, 500 },
      1000,
      API_REPLICA_FRESH,
      0 },
    { "caught up with the last sample of a busy primary",
      { BUSY },
      { 2010, true, false, 1400 },
      1000,
      API_REPLICA_FRESH,
      0 },
    { "a sample behind: its data is at most the time since the one it holds",
      { BUSY },
      { 2010, true, false, 1350 },
      1000,
      API_REPLICA_FRESH,
      260 },
    { "exactly at the bound is fresh",
      { BUSY },
      { 2000, true, false, 1000 },
      1000,
      API_REPLICA_FRESH,
      1000 },
    { "a millisecond past the bound lags",
      { BUSY },
      { 2001, true, false, 1000 },
      1000,
      API_REPLICA_LAGGING,
      1001 },
    { "behind every sample: the age of the oldest, at least, and lagging",
      { BUSY },
      { 2010, true, false, 900 },
      5000,
      API_REPLICA_LAGGING,
      1010 },
    { "samples after the replica's answer do not count",
      { BUSY },
      { 1260, true, false, 1100 },
      1000,
      API_REPLICA_FRESH,
      0 },
    { "replay paused is skipped though it holds everything",
      { { 1000, 500 }, { 1250, 500 } },
      { 1300, true, true, 500 },
      1000,
      API_REPLICA_PAUSED,
      0 },
    { "paused and far behind reports its lag",
      { BUSY },
      { 2010, true, true, 1000 },
      100,
      API_REPLICA_PAUSED,
      1010 },
    { "not in recovery (promoted): current",
      { BUSY },
      { 2010, false, false, 0 },
      0,
      API_REPLICA_FRESH,
      0 },
    { "no sample yet: not known to be fresh",
      { { 0, 0 } },
      { 100, true, false, 5000 },
      1000,
      API_REPLICA_LAGGING,
      -1 },
    { "only samples newer than the answer: not known",
      { { 5000, 10 } },
      { 4000, true, false, 5000 },
      1000,
      API_REPLICA_LAGGING,
      -1 },
    { "a zero bound takes only a replica that has the last sample",
      { BUSY },
      { 2010, true, false, 1399 },
      0,
      API_REPLICA_LAGGING,
      260 },
};

static void load(api_lag_history *h, const api_lag_sample *samples)
{
    *h = (api_lag_history){ 0 };
    for (size_t i = 0; i < MAX_SAMPLES && samples[i].at_ms != 0; i++)
        api_lag_record(h, samples[i].at_ms, samples[i].lsn);
}

Test(replica_lag, every_case_of_the_table_gets_its_verdict_and_lag)
{
    static api_lag_history h;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const lag_case *c = &cases[i];
        int64_t lag = -2;

        load(&h, c->history);
        cr_expect_eq(api_replica_judge(&h, &c->replica, c->max_lag_ms, &lag), c->verdict,
                     "%s: verdict", c->name);
        cr_expect_eq(lag, c->lag_ms, "%s: lag %lld, not %lld", c->name, (long long)lag,
                     (long long)c->lag_ms);
    }
}

Test(replica_lag, lsns_parse_as_postgresql_prints_them)
{
    uint64_t lsn = 0;

    cr_assert(api_lsn_parse("0/0", &lsn));
    cr_assert_eq(lsn, 0);
    cr_assert(api_lsn_parse("16/B374D848", &lsn));
    cr_assert_eq(lsn, 0x16B374D848ull);
    cr_assert(api_lsn_parse("FFFFFFFF/FFFFFFFF", &lsn));
    cr_assert_eq(lsn, UINT64_MAX);
    cr_assert_not(api_lsn_parse("", &lsn));
    cr_assert_not(api_lsn_parse("16", &lsn));
    cr_assert_not(api_lsn_parse("16/B3 ", &lsn));
    cr_assert_not(api_lsn_parse(NULL, &lsn));
}

Test(replica_lag, a_full_history_drops_its_oldest_sample)
{
    static api_lag_history h;
    api_replica_sample r = { 10000000, true, false, 0 };
    int64_t lag = 0;

    for (uint64_t i = 1; i <= API_LAG_HISTORY + 10; i++)
        api_lag_record(&h, i * 10, i * 100);
    cr_assert_eq(h.n, API_LAG_HISTORY);
    /* LSN 1000 was sample 10, dropped: the oldest kept is sample 11. */
    r.replay_lsn = 1000;
    cr_assert_eq(api_replica_judge(&h, &r, 1000, &lag), API_REPLICA_LAGGING);
    cr_assert_eq(lag, 10000000 - 110);
    r.replay_lsn = (API_LAG_HISTORY + 10) * 100;
    cr_assert_eq(api_replica_judge(&h, &r, 0, &lag), API_REPLICA_FRESH);
    cr_assert_eq(lag, 0);
}
