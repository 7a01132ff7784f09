/*
 * The retry policy: given how an attempt ended, the kind's policy and a
 * random number, decide what becomes of the job. Pure functions: no clock,
 * no I/O, so the tests drive them directly.
 */
#ifndef USHER_RETRY_H
#define USHER_RETRY_H

#include <stdint.h>

#include "config.h"

/* How a handler says an attempt ended. */
typedef enum usher_outcome {
    USHER_OUTCOME_OK = 0,
    USHER_OUTCOME_RETRY,     /* failed; retry after backoff (or the handler's delay) */
    USHER_OUTCOME_PERMANENT, /* failed for good; straight to dead */
    USHER_OUTCOME_SNOOZE,    /* not now; run again after the delay, no attempt spent */
} usher_outcome;

/* What becomes of a job after an attempt that did not succeed. */
typedef enum usher_next {
    USHER_NEXT_RETRY = 0, /* available again at now + delay_ms; the attempt is spent */
    USHER_NEXT_DEAD,      /* into the dead-letter queue */
    USHER_NEXT_SNOOZE,    /* available again at now + delay_ms; the attempt is given back */
} usher_next;

typedef struct usher_retry_decision {
    usher_next next;
    int64_t delay_ms;
} usher_retry_decision;

/*
 * Exponential backoff with full jitter: a uniform draw from
 * [0, min(cap, base * 2^(attempt-1))], using random_u32 as the draw.
 * attempt counts from 1 (the attempt that just failed).
 */
int64_t usher_retry_backoff_ms(const usher_kind_conf *policy, int attempt, uint32_t random_u32);

/*
 * Decides the fate of a job whose attempt number `attempt` (1-based) of
 * max_attempts ended with outcome (not OK). delay_ms >= 0 is the handler's
 * own delay for RETRY or SNOOZE; -1 means "use the policy".
 */
usher_retry_decision usher_retry_decide(const usher_kind_conf *policy, int attempt,
                                        int max_attempts, usher_outcome outcome, int64_t delay_ms,
                                        uint32_t random_u32);

#endif
