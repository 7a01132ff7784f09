/*
 * Tests of engine/api_scale.c, the API fleet's scaling policy, under a
 * simulated clock: each tick observes the fleet's averages, asks for the
 * desired instance count and lets the simulated autoscaler follow it at
 * once, then moves the clock on by 5 s (usher-api samples every 5 s).
 */
#include <criterion/criterion.h>

#include <string.h>

#include "api_scale.h"

#define T0_MS   INT64_C(1796112000000) /* 2026-12-01T08:00:00Z */
#define STEP_MS 5000
#define MIN_MS  60000

typedef struct fleet {
    usher_api_scale *s;
    usher_api_scale_conf conf;
    int current;
    bool launch;
    int64_t now_ms;
    double cpu, mem, queue;
} fleet;

static fleet f;

static void stop(void)
{
    usher_api_scale_free(f.s);
    f.s = NULL;
}

static void start(int current, int max)
{
    usher_api_scale_free(f.s);
    memset(&f, 0, sizeof(f));
    cr_assert_eq(usher_api_scale_new(&f.s), USHER_OK);
    f.conf = usher_api_scale_seed(max);
    f.current = current;
    f.now_ms = T0_MS;
    f.cpu = 0.5;
    f.mem = 0.5;
    f.queue = 10;
}

TestSuite(api_scale, .fini = stop);

/* One tick: observe, ask, follow. Returns the answer. */
static int tick(void)
{
    usher_api_scale_observe(f.s, &(usher_api_scale_sample){ f.now_ms, f.cpu, f.mem, f.queue });
    f.current = usher_api_scale_desired(f.s, &f.conf, f.current, f.launch, f.now_ms);
    f.now_ms += STEP_MS;
    return f.current;
}

/* Ticks for ms; returns the time of the first change (-1: none). */
static int64_t run(int64_t ms)
{
    int64_t end = f.now_ms + ms, changed = -1;
    int before = f.current;

    while (f.now_ms < end) {
        int64_t at = f.now_ms;

        if (tick() != before && changed < 0)
            changed = at;
        before = f.current;
    }
    return changed;
}

Test(api_scale, holds_between_the_thresholds)
{
    start(3, 10);
    cr_assert_eq(run(60 * MIN_MS), -1);
    cr_assert_eq(f.current, 3);
    cr_assert_str_eq(usher_api_scale_reason(f.s), "hold: within the thresholds");
}

Test(api_scale, cpu_above_70_percent_for_5_minutes_scales_out_not_before)
{
    int64_t t0;

    start(2, 10);
    f.cpu = 0.90;
    t0 = f.now_ms;
    cr_assert_eq(run(5 * MIN_MS), -1, "no step before 5 minutes");
    cr_assert_eq(run(STEP_MS), t0 + 5 * MIN_MS);
    cr_assert_eq(f.current, 3, "ceil(2 * 0.9 / 0.7) = 3");
    cr_assert_str_eq(usher_api_scale_reason(f.s), "scale out: CPU above its threshold");
    /* Still hot: the next step after the minute of settling, from 3: ceil(3 * 0.9 / 0.7) = 4. */
    cr_assert_eq(run(MIN_MS), t0 + 6 * MIN_MS);
    cr_assert_eq(f.current, 4);
}

Test(api_scale, a_dip_under_the_threshold_restarts_the_window)
{
    start(2, 10);
    f.cpu = 0.90;
    run(4 * MIN_MS);
    f.cpu = 0.65;
    tick();
    f.cpu = 0.90;
    cr_assert_eq(run(5 * MIN_MS), -1, "the window starts after the dip");
    cr_assert_eq(f.current, 2);
    run(STEP_MS);
    cr_assert_eq(f.current, 3);
}

Test(api_scale, memory_above_80_percent_for_5_minutes_scales_out)
{
    start(4, 10);
    f.mem = 0.85;
    run(5 * MIN_MS + STEP_MS);
    cr_assert_eq(f.current, 5, "ceil(4 * 0.85 / 0.8) = 5");
    cr_assert_str_eq(usher_api_scale_reason(f.s), "scale out: memory above its threshold");
}

Test(api_scale, the_queue_rule_acts_after_3_minutes_and_spends_the_minutes_budget)
{
    int64_t t0, first;

    start(2, 50);
    f.queue = 600; /* per instance: wants ceil(2 * 600 / 100) = 12 */
    t0 = f.now_ms;
    first = run(3 * MIN_MS + STEP_MS);
    cr_assert_eq(first, t0 + 3 * MIN_MS);
    cr_assert_eq(f.current, 7, "2 + 5 allowed in a minute");
    cr_assert_str_eq(usher_api_scale_reason(f.s),
                     "scale out: requests waiting above their threshold");
    /* Load spread over the new instances, still over the threshold. */
    f.queue = 150;
    cr_assert_eq(run(MIN_MS), first + MIN_MS, "next step when the minute's budget renews");
    cr_assert_eq(f.current, 11, "ceil(7 * 150 / 100) = 11, within 5 more");
}

Test(api_scale, cpu_under_40_percent_for_15_minutes_scales_in_by_one_every_5_minutes)
{
    int64_t t0, first;

    start(6, 10);
    f.cpu = 0.20;
    t0 = f.now_ms;
    first = run(15 * MIN_MS + STEP_MS);
    cr_assert_eq(first, t0 + 15 * MIN_MS);
    cr_assert_eq(f.current, 5);
    cr_assert_str_eq(usher_api_scale_reason(f.s), "scale in: CPU below its threshold");
    cr_assert_eq(run(5 * MIN_MS), first + 5 * MIN_MS);
    cr_assert_eq(f.current, 4);
    run(60 * MIN_MS);
    cr_assert_eq(f.current, 2, "never under the minimum of 2");
}

Test(api_scale, a_registration_launch_holds_scale_in_but_not_scale_out)
{
    start(6, 10);
    f.cpu = 0.20;
    f.launch = true;
    cr_assert_eq(run(30 * MIN_MS), -1);
    cr_assert_str_eq(usher_api_scale_reason(f.s), "hold: registration launch");
    f.cpu = 0.95;
    run(5 * MIN_MS + STEP_MS);
    cr_assert_eq(f.current, 9, "ceil(6 * 0.95 / 0.7) = 9");
    f.launch = false;
    f.cpu = 0.20;
    run(15 * MIN_MS + STEP_MS);
    cr_assert_eq(f.current, 8);
}

Test(api_scale, the_tier_maximum_and_the_minimum_bound_the_figure)
{
    start(9, 10);
    f.cpu = 1.0;
    run(30 * MIN_MS);
    cr_assert_eq(f.current, 10);
    start(1, 10);
    cr_assert_eq(tick(), 2, "one instance is below the minimum at once");
    cr_assert_str_eq(usher_api_scale_reason(f.s), "bound: min");
    start(600, 500);
    cr_assert_eq(tick(), 500);
    cr_assert_str_eq(usher_api_scale_reason(f.s), "bound: max");
}

Test(api_scale, a_window_without_samples_at_its_start_holds)
{
    start(2, 10);
    f.cpu = 0.9;
    usher_api_scale_observe(f.s, &(usher_api_scale_sample){ f.now_ms + 10 * MIN_MS, 0.9, 0.5, 0 });
    cr_assert_eq(usher_api_scale_desired(f.s, &f.conf, 2, false, f.now_ms + 10 * MIN_MS), 2,
                 "one fresh sample covers no window");
    usher_api_scale_observe(f.s, &(usher_api_scale_sample){ f.now_ms + 12 * MIN_MS, 0.5, 0.5, 0 });
    f.now_ms += 20 * MIN_MS;
    cr_assert_eq(run(5 * MIN_MS), -1, "5 minutes of samples from here");
    run(STEP_MS);
    cr_assert_eq(f.current, 3);
}
