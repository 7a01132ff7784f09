/*
 * The retry policy is pure: these tests drive it with chosen random draws.
 */
#include <criterion/criterion.h>
#include <stdint.h>

#include "retry.h"

static const usher_kind_conf policy = {
    .name = "email.send",
    .priority = 1,
    .max_attempts = 5,
    .timeout_ms = 60000,
    .backoff_base_ms = 1000,
    .backoff_cap_ms = 30000,
};

Test(retry, backoff_ceiling_doubles_per_attempt)
{
    /* The highest draw gives the ceiling itself. */
    cr_assert_eq(usher_retry_backoff_ms(&policy, 1, UINT32_MAX), 1000);
    cr_assert_eq(usher_retry_backoff_ms(&policy, 2, UINT32_MAX), 2000);
    cr_assert_eq(usher_retry_backoff_ms(&policy, 3, UINT32_MAX), 4000);
    cr_assert_eq(usher_retry_backoff_ms(&policy, 5, UINT32_MAX), 16000);
}

Test(retry, backoff_never_exceeds_cap)
{
    for (int attempt = 1; attempt <= 1000; attempt++)
        cr_assert_leq(usher_retry_backoff_ms(&policy, attempt, UINT32_MAX), 30000, "attempt %d",
                      attempt);
    cr_assert_eq(usher_retry_backoff_ms(&policy, 6, UINT32_MAX), 30000);
}

Test(retry, full_jitter_spans_zero_to_the_ceiling)
{
    cr_assert_eq(usher_retry_backoff_ms(&policy, 3, 0), 0);
    cr_assert_eq(usher_retry_backoff_ms(&policy, 3, UINT32_MAX / 2), 2000);
}

Test(retry, zero_base_means_retry_at_once)
{
    usher_kind_conf p = policy;

    p.backoff_base_ms = 0;
    cr_assert_eq(usher_retry_backoff_ms(&p, 4, UINT32_MAX), 0);
}

Test(retry, retry_with_attempts_left_uses_the_policy_or_the_handler_delay)
{
    usher_retry_decision d = usher_retry_decide(&policy, 2, 5, USHER_OUTCOME_RETRY, -1, UINT32_MAX);

    cr_assert_eq(d.next, USHER_NEXT_RETRY);
    cr_assert_eq(d.delay_ms, 2000);
    d = usher_retry_decide(&policy, 2, 5, USHER_OUTCOME_RETRY, 123456, UINT32_MAX);
    cr_assert_eq(d.next, USHER_NEXT_RETRY);
    cr_assert_eq(d.delay_ms, 123456);
}

Test(retry, last_attempt_failing_goes_dead)
{
    usher_retry_decision d = usher_retry_decide(&policy, 5, 5, USHER_OUTCOME_RETRY, -1, 0);

    cr_assert_eq(d.next, USHER_NEXT_DEAD);
}

Test(retry, permanent_goes_dead_even_with_attempts_left)
{
    usher_retry_decision d = usher_retry_decide(&policy, 1, 5, USHER_OUTCOME_PERMANENT, -1, 0);

    cr_assert_eq(d.next, USHER_NEXT_DEAD);
}

Test(retry, snooze_never_dies_and_has_a_default_delay)
{
    usher_retry_decision d = usher_retry_decide(&policy, 5, 5, USHER_OUTCOME_SNOOZE, -1, 0);

    cr_assert_eq(d.next, USHER_NEXT_SNOOZE);
    cr_assert_gt(d.delay_ms, 0);
    d = usher_retry_decide(&policy, 5, 5, USHER_OUTCOME_SNOOZE, 250, 0);
    cr_assert_eq(d.delay_ms, 250);
}
