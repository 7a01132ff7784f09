/*
 * How many jobs a worker pool holds per child when [pool.NAME] leaves
 * prefetch and child_queue unset: a pure policy of the jobs' observed
 * service times, tested without a clock (the caller measures).
 *
 * The window is the number of jobs one child may have claimed for it at a
 * time: the one it runs, those queued in its socket (at most child_queue
 * of the window) and the rest ready in the supervisor. It is as many
 * jobs as the child finishes in USHER_HOLD_BUDGET_US:
 *
 *   window = clamp(floor(USHER_HOLD_BUDGET_US / estimate), 1, max)
 *
 * where the estimate follows the handlers' run times as the children
 * measure them (not the time a job spent queued or a child waited for a
 * CPU), so a job waits behind the others of its window for about the budget,
 * whatever the kind: no-op floods get the whole window (max, e.g. 256),
 * jobs of a millisecond two, jobs of 2 ms or more one (no prefetch, one
 * job per child: the behaviour of child_queue = 1, prefetch = 0).
 *
 * The estimate is an exponentially weighted mean (weight 1/16) of the
 * service times, each capped at USHER_HOLD_SAMPLE_CAP_US: a rare slow job
 * (1 s among no-ops) moves it by at most cap/16 (250 µs), so it cannot collapse the
 * window of a fast pool; a pool whose jobs are all slow still sees every
 * sample at the cap, above the budget, and gets a window of 1. Slow jobs
 * that arrive among fast ones are the supervisor's to handle: it hands
 * back the jobs queued behind a handler that has run longer than
 * USHER_HOLD_HAND_BACK_US, and queues none behind it (workers/children.h). The estimate starts at
 * the budget (a window of 1): a new pool behaves as one without prefetch until it has seen its jobs
 * are short.
 */
#ifndef USHER_HOLD_H
#define USHER_HOLD_H

#include <stddef.h>
#include <stdint.h>

#define USHER_HOLD_BUDGET_US     2000 /* a queued job's expected wait behind its window */
#define USHER_HOLD_SAMPLE_CAP_US 4000 /* samples above this count as this */
#define USHER_HOLD_HAND_BACK_US  4000 /* jobs queued behind a job older than this go back */

typedef struct usher_hold {
    double estimate_us; /* the weighted mean service time */
    size_t max;         /* the largest window */
} usher_hold;

/* A policy whose window never exceeds max (at least 1). */
void usher_hold_init(usher_hold *h, size_t max);

/* One job's service time: how long its handler ran, in µs (a batch's time shared). */
void usher_hold_observe(usher_hold *h, int64_t service_us);

/* Jobs per child, 1..max. */
size_t usher_hold_window(const usher_hold *h);

#endif
