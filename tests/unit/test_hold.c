/*
 * The window policy of engine/hold.h, fed service times by hand.
 */
#include <criterion/criterion.h>

#include "hold.h"

static void feed(usher_hold *h, int64_t us, int times)
{
    for (int i = 0; i < times; i++)
        usher_hold_observe(h, us);
}

Test(hold, a_new_pool_holds_one_job_per_child)
{
    usher_hold h;

    usher_hold_init(&h, 32);
    cr_assert_eq(usher_hold_window(&h), 1);
}

Test(hold, short_jobs_open_the_whole_window)
{
    usher_hold h;

    usher_hold_init(&h, 32);
    feed(&h, 30, 200);
    cr_assert_eq(usher_hold_window(&h), 32);
}

Test(hold, jobs_of_under_half_a_millisecond_get_four)
{
    usher_hold h;

    usher_hold_init(&h, 32);
    feed(&h, 450, 400);
    cr_assert_eq(usher_hold_window(&h), 4);
}

Test(hold, slow_jobs_get_one_job_per_child)
{
    usher_hold h;

    usher_hold_init(&h, 32);
    feed(&h, 30, 200);
    feed(&h, 50000, 100);
    cr_assert_eq(usher_hold_window(&h), 1);
}

Test(hold, one_slow_job_in_a_hundred_keeps_a_fast_pool_wide)
{
    usher_hold h;

    usher_hold_init(&h, 32);
    for (int round = 0; round < 20; round++) {
        feed(&h, 30, 99);
        usher_hold_observe(&h, 1000000);
        cr_assert_geq(usher_hold_window(&h), 4, "round %d: window %zu", round,
                      usher_hold_window(&h));
    }
    feed(&h, 30, 99);
    cr_assert_eq(usher_hold_window(&h), 32);
}

Test(hold, the_window_never_exceeds_its_max_nor_falls_below_one)
{
    usher_hold h;

    usher_hold_init(&h, 5);
    feed(&h, 0, 100);
    cr_assert_eq(usher_hold_window(&h), 5);
    feed(&h, -7, 10);
    cr_assert_eq(usher_hold_window(&h), 5);
    usher_hold_init(&h, 0);
    cr_assert_eq(usher_hold_window(&h), 1);
}
