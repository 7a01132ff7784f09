/*
 * A rate limit shared by the processes of one pool: the generic cell rate
 * algorithm (GCRA) over one 64-bit "theoretical arrival time" (TAT) that
 * lives in an anonymous MAP_SHARED page. The supervisor creates the page
 * before it forks, so every child of the pool sees the same TAT and the
 * pool as a whole sends at most `rate` messages per second to the relay
 * (per host: each host's pool has its own page).
 *
 * The algorithm, with T = 1 s / rate and no burst allowance: a caller at
 * time now takes the slot max(TAT, now) and moves TAT to that slot + T,
 * with one compare-and-swap, then waits until its slot. So n callers that
 * arrive together leave at now, now + T, ..., now + (n-1)T whatever
 * process they run in; an idle limiter never saves up a burst.
 *
 * usher_gcra_take is the pure algorithm (time is a parameter, so tests can
 * drive it with a simulated clock); usher_gcra_wait reads CLOCK_MONOTONIC,
 * which all processes of a host share, and sleeps.
 */
#ifndef USHER_RATELIMIT_SHARED_H
#define USHER_RATELIMIT_SHARED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

typedef struct usher_gcra {
    _Atomic uint64_t tat_ns;      /* the next free slot, in ns of CLOCK_MONOTONIC */
    _Atomic uint64_t interval_ns; /* T = 1e9 / rate; 0 = no limit */
} usher_gcra;

/* Sets the rate (messages per second; 0 = no limit). Safe while others take slots. */
void usher_gcra_set_rate(usher_gcra *g, int per_second);

/* True when g limits the rate (not NULL, and a rate was set). */
bool usher_gcra_limited(usher_gcra *g);

/*
 * Takes the next slot at time now_ns unless it lies more than max_wait_ns
 * ahead. Returns true with *wait_ns = how long to wait for the slot taken
 * (0: go now); false with *wait_ns = how long until a slot would be within
 * reach, and nothing taken.
 */
USHER_MUSTCHECK bool usher_gcra_take(usher_gcra *g, uint64_t now_ns, uint64_t max_wait_ns,
                                     uint64_t *wait_ns);

/*
 * usher_gcra_take at the current time, then sleeps until the slot. Returns
 * true when the caller may send now; false, having taken nothing, when the
 * slot is more than max_wait_ms away: *retry_ms says when to come back.
 * A NULL g never waits.
 */
USHER_MUSTCHECK bool usher_gcra_wait(usher_gcra *g, int max_wait_ms, int64_t *retry_ms);

/* A limiter in a fresh anonymous shared page (children forked later share it), at rate. */
USHER_MUSTCHECK usher_err usher_gcra_shared_new(int per_second, usher_gcra **out);

/* Unmaps it (accepts NULL). */
void usher_gcra_shared_free(usher_gcra *g);

#endif
