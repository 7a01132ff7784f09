/*
 * Backoff follows the "full jitter" scheme: the ceiling doubles with each
 * attempt up to the cap and the wait is drawn uniformly below it, which
 * spreads a burst of failures (an SMTP relay that went away for a minute)
 * instead of bringing them all back at once.
 */
#include "retry.h"

/* Snoozing without a delay would spin; this is the wait when none is given. */
#define SNOOZE_DEFAULT_MS 1000

static int64_t backoff_ceiling_ms(const usher_kind_conf *policy, int attempt)
{
    int64_t ceiling = policy->backoff_base_ms;
    int64_t cap = policy->backoff_cap_ms;

    if (ceiling <= 0)
        return 0;
    for (int i = 1; i < attempt && ceiling < cap; i++)
        ceiling *= 2;
    return ceiling < cap ? ceiling : cap;
}

int64_t usher_retry_backoff_ms(const usher_kind_conf *policy, int attempt, uint32_t random_u32)
{
    int64_t ceiling = backoff_ceiling_ms(policy, attempt < 1 ? 1 : attempt);

    /* (ceiling + 1) values from 0 to ceiling inclusive, drawn by scaling. */
    return (int64_t)(((uint64_t)random_u32 * (uint64_t)(ceiling + 1)) >> 32);
}

usher_retry_decision usher_retry_decide(const usher_kind_conf *policy, int attempt,
                                        int max_attempts, usher_outcome outcome, int64_t delay_ms,
                                        uint32_t random_u32)
{
    usher_retry_decision d = { USHER_NEXT_DEAD, 0 };

    switch (outcome) {
    case USHER_OUTCOME_SNOOZE:
        d.next = USHER_NEXT_SNOOZE;
        d.delay_ms = delay_ms >= 0 ? delay_ms : SNOOZE_DEFAULT_MS;
        return d;
    case USHER_OUTCOME_RETRY:
        if (attempt >= max_attempts)
            return d;
        d.next = USHER_NEXT_RETRY;
        d.delay_ms = delay_ms >= 0 ? delay_ms : usher_retry_backoff_ms(policy, attempt, random_u32);
        return d;
    case USHER_OUTCOME_OK:
    case USHER_OUTCOME_PERMANENT:
        break;
    }
    return d;
}
