/*
 * Tests of engine/autoscale.c under a simulated clock. Each test starts a
 * simulated pool (a [pool.p] section loaded by the real config loader, so
 * the tier defaults are the shipped ones) and ticks it: each tick observes a
 * depth, asks for the desired size and applies it at once, the way the
 * supervisor does, then moves the clock on. Nothing sleeps.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "autoscale.h"
#include "config.h"

#define T0_MS     INT64_C(1796112000000) /* 2026-12-01T08:00:00Z */
#define MINUTE_S  60
#define BUSY_ALL  (-1) /* every child busy while jobs wait, none when the queue is empty */
#define MAX_GROWS 4096

typedef struct sim {
    usher_autoscale *a;
    usher_pool_conf pool;
    int size;
    int slots;       /* downstream slots, -1 = uncapped */
    int busy;        /* busy children in each sample, or BUSY_ALL */
    int64_t now_ms;  /* of the next tick */
    int64_t step_ms; /* between ticks */
    int max_seen;
    size_t ngrows; /* every size increase, for the per-minute budget */
    int64_t grew_at_ms[MAX_GROWS];
    int grew_by[MAX_GROWS];
} sim;

static sim s;

static void stop(void)
{
    usher_autoscale_free(s.a);
    s.a = NULL;
}

TestSuite(autoscale, .fini = stop);

/* The pool of "[pool.p]\n" + keys, through the real config loader. */
static usher_pool_conf load_pool(const char *keys)
{
    char path[] = "/tmp/usher-test-autoscale-XXXXXX", text[1024], err[512];
    int len = snprintf(text, sizeof(text), "[pool.p]\n%s", keys);
    int fd = mkstemp(path);
    usher_config cfg;
    usher_pool_conf pool;
    usher_err rc;

    cr_assert_geq(fd, 0, "mkstemp failed");
    cr_assert_eq(write(fd, text, (size_t)len), len);
    cr_assert_eq(close(fd), 0);
    rc = usher_config_load(&cfg, path, err, sizeof(err));
    unlink(path);
    cr_assert_eq(rc, USHER_OK, "%s", err);
    pool = cfg.pools[0];
    usher_config_free(&cfg);
    return pool;
}

/* A fresh pool of size children at T0, ticking once a second, idle, uncapped. */
static void start(const char *keys, int size)
{
    stop();
    memset(&s, 0, sizeof(s));
    s.pool = load_pool(keys);
    cr_assert_eq(usher_autoscale_new(&s.a), USHER_OK);
    s.size = s.max_seen = size;
    s.slots = -1;
    s.now_ms = T0_MS;
    s.step_ms = 1000;
}

static int64_t at_s(int64_t seconds)
{
    return T0_MS + seconds * 1000;
}

/* Samples depth now, applies the desired size, moves the clock on; the new size. */
static int tick(int64_t depth)
{
    int busy = s.busy == BUSY_ALL ? (depth > 0 ? s.size : 0) : s.busy;
    int want;

    usher_autoscale_observe(s.a, s.now_ms, depth, busy);
    want = usher_autoscale_desired(s.a, &s.pool, s.size, s.slots, s.now_ms);
    if (want != s.size) {
        usher_autoscale_applied(s.a, s.size, want, s.now_ms);
        if (want > s.size && s.ngrows < MAX_GROWS) {
            s.grew_at_ms[s.ngrows] = s.now_ms;
            s.grew_by[s.ngrows++] = want - s.size;
        }
        s.size = want;
    }
    if (s.size > s.max_seen)
        s.max_seen = s.size;
    s.now_ms += s.step_ms;
    return s.size;
}

/* Ticks at a steady depth up to and including second t; the size after the last tick. */
static int run_until(int64_t t, int64_t depth)
{
    while (s.now_ms <= at_s(t))
        tick(depth);
    return s.size;
}

/* No half-open 60 s window (t - 60 s, t] saw more than limit children added. */
static void assert_growth_per_minute_at_most(int limit)
{
    for (size_t i = 0; i < s.ngrows; i++) {
        int added = 0;

        for (size_t j = 0; j <= i; j++)
            if (s.grew_at_ms[j] > s.grew_at_ms[i] - 60000)
                added += s.grew_by[j];
        cr_assert_leq(added, limit, "%d children added in the minute before t=%lld ms", added,
                      (long long)(s.grew_at_ms[i] - T0_MS));
    }
}

/* ---- sustain ------------------------------------------------------------- */

Test(autoscale, steady_high_depth_for_less_than_sustain_changes_nothing)
{
    start("tier = medium\n", 1);
    cr_assert_eq(run_until(29, 600), 1);
    cr_assert_eq(usher_autoscale_desired(s.a, &s.pool, 1, -1, at_s(30) - 1), 1,
                 "29.999 s is not 30 s");
    cr_assert_str_eq(usher_autoscale_reason(s.a), "hold: no sample covers sustain_ms yet");
}

Test(autoscale, steady_high_depth_for_sustain_scales_out)
{
    start("tier = medium\n", 1);
    cr_assert_eq(run_until(29, 600), 1);
    cr_assert_eq(run_until(30, 600), 2, "600 jobs over a threshold of 500 add one child");
    cr_assert_str_eq(usher_autoscale_reason(s.a), "scale out: depth above scale_out_depth");
}

Test(autoscale, depth_at_the_threshold_is_not_above_it)
{
    start("tier = medium\n", 1);
    cr_assert_eq(run_until(600, 500), 1);
    cr_assert_str_eq(usher_autoscale_reason(s.a), "hold: depth between the thresholds");
}

Test(autoscale, scale_out_step_follows_the_lowest_depth_of_the_window)
{
    static const struct {
        int64_t depth, dip;
        int size;
    } cases[] = {
        { 1600, 1600, 4 }, /* 1600 / 500 = 3 more */
        { 2600, 2600, 6 }, /* 5 more, all of the minute's budget */
        { 9000, 9000, 6 }, /* 18 wanted, 5 allowed */
        { 9000, 600, 2 },  /* one sample of 600 in the window: 1 more */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        start("tier = medium\nevent_tier = medium\n", 1);
        run_until(14, cases[i].depth);
        run_until(15, cases[i].dip);
        cr_assert_eq(run_until(30, cases[i].depth), cases[i].size, "case %zu", i);
    }
}

Test(autoscale, after_a_change_the_pool_settles_for_sustain_ms)
{
    start("tier = medium\nevent_tier = medium\n", 1);
    cr_assert_eq(run_until(30, 2000), 5, "+4, and 1 left of the minute's budget");
    cr_assert_eq(run_until(59, 2000), 5, "the new size gets a whole window");
    cr_assert_str_eq(usher_autoscale_reason(s.a), "hold: settling for sustain_ms after a change");
    cr_assert_eq(run_until(60, 2000), 6);
}

Test(autoscale, a_brief_dip_does_not_scale_in)
{
    start("tier = medium\n", 5);
    run_until(59, 100); /* between 50 and 500: hold */
    cr_assert_eq(run_until(88, 10), 5, "a dip from 60 s to 88 s is not sustained");
    cr_assert_eq(run_until(150, 100), 5);
    cr_assert_eq(run_until(180, 10), 5, "at 180 s the depth of 100 at 150 s still holds at 150 s");
    cr_assert_eq(run_until(181, 10), 4, "at 181 s every sample since 151 s is below 50");
}

Test(autoscale, no_samples_hold_the_current_size)
{
    start("tier = medium\n", 3);
    cr_assert_str_eq(usher_autoscale_reason(s.a), "hold: not asked yet");
    cr_assert_eq(usher_autoscale_desired(s.a, &s.pool, 3, -1, at_s(3600)), 3);
    cr_assert_str_eq(usher_autoscale_reason(s.a), "hold: no sample covers sustain_ms yet");
}

Test(autoscale, a_clock_that_steps_back_restarts_the_window)
{
    start("tier = medium\n", 1);
    run_until(20, 600);
    s.now_ms = at_s(-3600);
    cr_assert_eq(run_until(-3600 + 29, 600), 1, "the samples before the step are forgotten");
    cr_assert_eq(run_until(-3600 + 30, 600), 2);
}

/* ---- the scale-out budget ------------------------------------------------ */

Test(autoscale, a_long_spike_adds_at_most_5_a_minute_until_the_ceiling)
{
    start("tier = high\nevent_tier = medium\n", 2);
    for (int t = 0; t <= 15 * MINUTE_S; t++) {
        tick(100000);
        cr_assert_leq(s.size, 50);
        if (t == 569)
            cr_assert_eq(s.size, 47, "+5 at 30 s, then every 60 s: 7, 12, ..., 47 at 510 s");
        if (t == 570)
            cr_assert_eq(s.size, 50, "the ceiling of event tier medium, at 570 s");
    }
    assert_growth_per_minute_at_most(5);
    cr_assert_eq(s.size, 50);
    cr_assert_str_eq(usher_autoscale_reason(s.a), "bound: max");
}

Test(autoscale, budget_holds_in_every_minute_even_without_a_sustain_window)
{
    start("tier = high\nevent_tier = mega\nsustain_ms = 0\n", 2);
    s.step_ms = 100;
    for (int i = 0; i < 10 * 600; i++) /* 10 minutes */
        tick(100000);
    assert_growth_per_minute_at_most(5);
    cr_assert_eq(s.size, 2 + 5 * 10, "5 at 0 s, 60 s, ..., 540 s");
    cr_assert_str_eq(usher_autoscale_reason(s.a), "hold: scale_out_per_minute spent");
}

Test(autoscale, scale_out_per_minute_sets_the_budget)
{
    start("tier = high\nevent_tier = mega\nscale_out_per_minute = 12\n", 2);
    run_until(10 * MINUTE_S, 100000);
    assert_growth_per_minute_at_most(12);
    cr_assert_eq(s.size, 2 + 12 * 10, "12 at 30 s, 90 s, ..., 570 s");
}

/* ---- floor and ceiling --------------------------------------------------- */

Test(autoscale, each_tier_keeps_its_floor_when_the_queue_is_empty)
{
    static const char *const tiers[] = { "tier = high\n", "tier = medium\n", "tier = low\n" };
    static const int floors[] = { 2, 1, 1 };

    for (int i = 0; i < 3; i++) {
        start(tiers[i], 0);
        cr_assert_eq(tick(0), floors[i], "%s: a pool below its floor is raised at once", tiers[i]);
        cr_assert_str_eq(usher_autoscale_reason(s.a), "bound: min");
        cr_assert_eq(run_until(2 * 3600, 0), floors[i], "%s", tiers[i]);
    }
}

Test(autoscale, each_event_tier_keeps_its_ceiling_under_any_depth)
{
    static const char *const tiers[] = { "event_tier = small\n", "event_tier = medium\n",
                                         "event_tier = large\n", "event_tier = mega\n" };
    static const int ceilings[] = { 10, 50, 200, 500 };

    for (int i = 0; i < 4; i++) {
        start(tiers[i], ceilings[i] + 7);
        cr_assert_eq(tick(1000000000), ceilings[i], "%s: a reload's lower max applies at once",
                     tiers[i]);
        s.size = ceilings[i] - 1;
        run_until(10 * MINUTE_S, 1000000000);
        cr_assert_eq(s.size, ceilings[i], "%s", tiers[i]);
        cr_assert_eq(s.max_seen, ceilings[i] + 7, "%s: only the starting size was above", tiers[i]);
    }
}

Test(autoscale, scale_in_removes_one_child_per_5_minutes_down_to_the_floor)
{
    start("tier = high\n", 10);
    for (int t = 0; t <= 2 * 3600; t++) {
        int removed = t < 30 ? 0 : 1 + (t - 30) / 300;
        int expected = 10 - removed > 2 ? 10 - removed : 2;

        cr_assert_eq(tick(0), expected, "at %d s", t);
    }
    cr_assert_str_eq(usher_autoscale_reason(s.a), "bound: min");
}

Test(autoscale, scale_in_interval_ms_sets_the_pace_of_scale_in)
{
    start("tier = medium\nscale_in_interval_ms = 60000\n", 6);
    cr_assert_eq(run_until(30, 0), 5);
    cr_assert_eq(run_until(89, 0), 5);
    cr_assert_str_eq(usher_autoscale_reason(s.a),
                     "hold: scale_in_interval_ms since the last scale-in");
    cr_assert_eq(run_until(90, 0), 4);
    cr_assert_eq(run_until(10 * MINUTE_S, 0), 1);
}

/* ---- protection windows -------------------------------------------------- */

Test(autoscale, protection_window_suppresses_scale_in_but_not_scale_out)
{
    /* T0 is 08:00 UTC; the window is 09:00 to 12:00 */
    start("tier = medium\nevent_tier = medium\n"
          "protect = 2026-12-01T09:00:00Z/2026-12-01T12:00:00Z\n",
          20);
    cr_assert_eq(run_until(3599, 0), 8, "08:00:30, 08:05:30, ..., 08:55:30: 12 removed");
    cr_assert_eq(run_until(2 * 3600 - 1, 0), 8, "nothing removed from 09:00 to 09:59:59");
    cr_assert_str_eq(usher_autoscale_reason(s.a), "hold: protection window");
    cr_assert_eq(run_until(2 * 3600 + 30, 2000), 12, "10:00:30: 4 added inside the window");
    cr_assert_eq(run_until(4 * 3600 - 1, 0), 12, "11:59:59: still protected");
    cr_assert_eq(run_until(4 * 3600, 0), 11, "12:00:00: the window has ended");
    cr_assert_eq(run_until(4 * 3600 + 300, 0), 10);
}

Test(autoscale, protected_covers_the_start_but_not_the_end)
{
    usher_pool_conf pool = load_pool("protect = 2026-12-01T09:00:00Z/2026-12-01T12:00:00Z,"
                                     "2026-12-02T09:00:00Z/2026-12-02T12:00:00Z\n");

    cr_assert_not(usher_autoscale_protected(&pool, at_s(3600) - 1));
    cr_assert(usher_autoscale_protected(&pool, at_s(3600)));
    cr_assert(usher_autoscale_protected(&pool, at_s(4 * 3600) - 1));
    cr_assert_not(usher_autoscale_protected(&pool, at_s(4 * 3600)));
    cr_assert(usher_autoscale_protected(&pool, at_s(25 * 3600)));
    cr_assert_not(usher_autoscale_protected(&pool, at_s(28 * 3600)));
}

/* ---- downstream slots and busy children ---------------------------------- */

Test(autoscale, downstream_slots_cap_the_size_but_not_below_the_floor)
{
    start("tier = medium\nevent_tier = medium\ndownstream = smtp\ndownstream_limit = 20\n", 1);
    s.slots = 7;
    cr_assert_eq(run_until(10 * MINUTE_S, 100000), 7);
    cr_assert_eq(s.max_seen, 7);
    cr_assert_str_eq(usher_autoscale_reason(s.a), "bound: downstream slots");
    s.slots = 3;
    cr_assert_eq(tick(100000), 3, "fewer slots apply at once");
    s.slots = 0;
    cr_assert_eq(tick(100000), 1, "the floor wins over the downstream cap");
    cr_assert_str_eq(usher_autoscale_reason(s.a), "bound: min");
    s.slots = -1;
    cr_assert_eq(run_until(11 * MINUTE_S, 100000), 6, "uncapped: 5 more after settling");
}

Test(autoscale, busy_children_block_scale_in)
{
    start("tier = medium\n", 4);
    s.busy = 4;
    cr_assert_eq(run_until(10 * MINUTE_S, 0), 4, "every child busy on long jobs");
    cr_assert_str_eq(usher_autoscale_reason(s.a), "hold: every child busy");
    s.busy = 3;
    cr_assert_eq(tick(0), 3, "one idle child: retire it");
    cr_assert_eq(run_until(30 * MINUTE_S, 0), 3, "never below the 3 busy children");
    s.busy = 1;
    cr_assert_eq(tick(0), 2);
}

/* ---- a whole scenario ---------------------------------------------------- */

/*
 * A medium pool of 4 on a medium event. The depth sits at 400 (between the
 * thresholds) for 5 minutes, rises 400% to 2000 for 10 minutes, then falls
 * to 0. Sampled every second, sizes at each whole minute:
 *   0-5    4   nothing sustained above 500
 *   6      9   5:30 +4 (2000 / 500), 6:00 +1 (the minute's budget is spent)
 *   7-14   +5 a minute: 6:30 +4, 7:00 +1, and so on
 *   15    50   14:30 would add 4: the ceiling takes 1
 *   16-20 49   15:30, 30 s after the fall: 1 removed
 *   21-40      one fewer every 5 minutes (20:30, 25:30, 30:30, 35:30, 40:30)
 */
Test(autoscale, a_400_percent_spike_traced_minute_by_minute)
{
    static const int size_at_minute[] = {
        4,  4,  4,  4,  4,  4,  9,  14, 19, 24, 29, 34, 39, 44, 49, 50, 49, 49, 49, 49, 49,
        48, 48, 48, 48, 48, 47, 47, 47, 47, 47, 46, 46, 46, 46, 46, 45, 45, 45, 45, 45,
    };
    int minutes = (int)(sizeof(size_at_minute) / sizeof(size_at_minute[0]));

    start("tier = medium\nevent_tier = medium\ninitial = 4\n", 4);
    s.busy = BUSY_ALL;
    for (int t = 0; t < minutes * MINUTE_S; t++) {
        int64_t depth = t < 5 * MINUTE_S ? 400 : t < 15 * MINUTE_S ? 2000 : 0;

        tick(depth);
        if (t % MINUTE_S == 0)
            cr_assert_eq(s.size, size_at_minute[t / MINUTE_S], "minute %d", t / MINUTE_S);
    }
    assert_growth_per_minute_at_most(5);
}

/* ---- bounded memory ------------------------------------------------------ */

Test(autoscale, a_fast_sampler_is_served_while_the_ring_covers_the_window)
{
    start("tier = medium\n", 1);
    s.step_ms = 10; /* 4096 samples cover 40.96 s */
    while (s.now_ms < at_s(30))
        tick(600);
    cr_assert_eq(s.size, 1);
    cr_assert_eq(tick(600), 2, "at 30 s exactly");
}

Test(autoscale, a_sampler_too_fast_for_the_ring_holds_rather_than_guess)
{
    start("tier = medium\n", 1);
    s.step_ms = 5; /* 4096 samples cover 20.48 s, less than 30 s */
    while (s.now_ms <= at_s(120))
        tick(600);
    cr_assert_eq(s.size, 1);
    cr_assert_str_eq(usher_autoscale_reason(s.a), "hold: no sample covers sustain_ms yet");
}

Test(autoscale, more_than_64_scale_outs_a_minute_still_respect_the_budget)
{
    /* 1 child per tick: the ring of recent scale-outs overflows and merges */
    start("tier = high\nevent_tier = mega\nsustain_ms = 0\nscale_out_per_minute = 200\n", 2);
    s.step_ms = 100;
    for (int i = 0; i < 3 * 600; i++) /* 3 minutes at 101..199 jobs: +1 per tick */
        tick(150);
    assert_growth_per_minute_at_most(200);
    cr_assert_geq(s.size, 2 + 200, "at least the first minute's budget was used");
    cr_assert_leq(s.size, 2 + 3 * 200);
}

Test(autoscale, free_accepts_null)
{
    usher_autoscale_free(NULL);
}
