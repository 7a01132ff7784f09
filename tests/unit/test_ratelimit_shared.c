/*
 * Tests of workers/ratelimit_shared.c: the GCRA driven by a simulated
 * clock (slots, no saved-up burst, the wait bound, rate changes), then the
 * shared page between threads with the real clock.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "ratelimit_shared.h"

#define MS       1000000ULL
#define S        1000000000ULL
#define NO_BOUND (3600 * S)
#define START    (1000 * S) /* a simulated CLOCK_MONOTONIC reading */

static usher_gcra limiter_at(int per_second)
{
    usher_gcra g = { 0 };

    usher_gcra_set_rate(&g, per_second);
    return g;
}

Test(gcra, callers_arriving_together_get_consecutive_slots)
{
    usher_gcra g = limiter_at(10);
    uint64_t wait;

    for (uint64_t i = 0; i < 20; i++) {
        cr_assert(usher_gcra_take(&g, START, NO_BOUND, &wait));
        cr_assert_eq(wait, i * 100 * MS, "caller %llu waits %llu ns", (unsigned long long)i,
                     (unsigned long long)wait);
    }
}

Test(gcra, callers_at_the_rate_never_wait)
{
    usher_gcra g = limiter_at(4);
    uint64_t wait;

    for (uint64_t i = 0; i < 10; i++) {
        cr_assert(usher_gcra_take(&g, START + i * 250 * MS, NO_BOUND, &wait));
        cr_assert_eq(wait, 0);
    }
}

Test(gcra, an_idle_limiter_saves_up_no_burst)
{
    usher_gcra g = limiter_at(10);
    uint64_t wait;

    cr_assert(usher_gcra_take(&g, START, NO_BOUND, &wait));
    /* a minute of silence, then three at once: still 100 ms apart */
    for (uint64_t i = 0; i < 3; i++) {
        cr_assert(usher_gcra_take(&g, START + 60 * S, NO_BOUND, &wait));
        cr_assert_eq(wait, i * 100 * MS);
    }
}

Test(gcra, a_slot_beyond_the_bound_is_refused_and_not_taken)
{
    usher_gcra g = limiter_at(1);
    uint64_t wait;

    cr_assert(usher_gcra_take(&g, START, 2 * S, &wait)); /* slot 0 s */
    cr_assert(usher_gcra_take(&g, START, 2 * S, &wait)); /* slot 1 s */
    cr_assert(usher_gcra_take(&g, START, 2 * S, &wait)); /* slot 2 s: at the bound */
    cr_assert_eq(wait, 2 * S);
    cr_assert_not(usher_gcra_take(&g, START, 2 * S, &wait)); /* slot 3 s: too far */
    cr_assert_eq(wait, 1 * S, "should come back when the slot is within the bound");
    cr_assert_not(usher_gcra_take(&g, START, 2 * S, &wait)); /* the refusal took nothing */
    cr_assert_eq(wait, 1 * S);
    cr_assert(usher_gcra_take(&g, START + 1 * S, 2 * S, &wait));
    cr_assert_eq(wait, 2 * S);
}

Test(gcra, rate_zero_means_no_limit_and_a_new_rate_applies_to_the_next_slot)
{
    usher_gcra g = limiter_at(0);
    uint64_t wait;

    for (int i = 0; i < 1000; i++) {
        cr_assert(usher_gcra_take(&g, START, 0, &wait));
        cr_assert_eq(wait, 0);
    }
    usher_gcra_set_rate(&g, 2);
    cr_assert(usher_gcra_take(&g, START, NO_BOUND, &wait));
    cr_assert(usher_gcra_take(&g, START, NO_BOUND, &wait));
    cr_assert_eq(wait, 500 * MS);
    usher_gcra_set_rate(&g, 100);
    cr_assert(usher_gcra_take(&g, START, NO_BOUND, &wait));
    cr_assert_eq(wait, 1000 * MS, "the slot already promised stands");
    cr_assert(usher_gcra_take(&g, START, NO_BOUND, &wait));
    cr_assert_eq(wait, 1010 * MS);
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

/*
 * 4 senders take 5 slots each at 50/s through one shared page: 20 sends
 * take >= 19 intervals. The senders are threads: fork() from inside a
 * Criterion test leaves children that Criterion's runner hears from as
 * strangers (now and then it gives up and the test hangs), so the
 * cross-process case is the worker test of smtp_rate
 * (tests/integration/test_smtp_rate.c), with real pools of processes.
 */
static void *take_five(void *arg)
{
    int64_t retry;

    for (int i = 0; i < 5; i++)
        if (!usher_gcra_wait(arg, 10000, &retry))
            return (void *)1;
    return NULL;
}

Test(gcra, senders_sharing_one_page_are_paced_together, .timeout = 60)
{
    usher_gcra *g;
    pthread_t threads[4];
    uint64_t start;

    cr_assert_eq(usher_gcra_shared_new(50, &g), USHER_OK);
    start = now_ns();
    for (int t = 0; t < 4; t++)
        cr_assert_eq(pthread_create(&threads[t], NULL, take_five, g), 0);
    for (int t = 0; t < 4; t++) {
        void *failed;

        cr_assert_eq(pthread_join(threads[t], &failed), 0);
        cr_assert_null(failed);
    }
    cr_assert_geq(now_ns() - start, 19 * 20 * MS, "20 sends at 50/s took %llu ms",
                  (unsigned long long)((now_ns() - start) / MS));
    usher_gcra_shared_free(g);
}

Test(gcra, only_a_set_rate_limits)
{
    usher_gcra g = limiter_at(0);

    cr_assert_not(usher_gcra_limited(NULL));
    cr_assert_not(usher_gcra_limited(&g));
    usher_gcra_set_rate(&g, 5);
    cr_assert(usher_gcra_limited(&g));
    usher_gcra_set_rate(&g, 0);
    cr_assert_not(usher_gcra_limited(&g));
}
