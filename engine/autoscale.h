/*
 * The autoscaling policy of a worker pool: how many children it should
 * have, as a pure function of the pool's configuration ([pool.NAME]), the
 * recent samples of queue depth and busy children, the size changes the
 * supervisor applied, and the clock. No I/O and no clock reads: every time
 * is a parameter, in ms since the epoch (CLOCK_REALTIME), because the
 * protection windows of the configuration are dates. Tests drive it with a
 * simulated clock; the supervisor samples, asks, and applies.
 *
 * One usher_autoscale per pool, used by one thread. The supervisor, say once
 * a second:
 *
 *   usher_autoscale_observe(a, now, depth, busy);
 *   want = usher_autoscale_desired(a, pool, size, slots, now);
 *   ...fork or retire idle children towards want...
 *   usher_autoscale_applied(a, size, new_size, now);
 *
 * The rules, in the order desired() applies them:
 *
 * 1. Samples. observe() records (now, depth, busy); a sample's depth is taken
 *    to hold until the next sample. "Depth stayed above X for sustain_ms"
 *    means: some sample is at or before now - sustain_ms (the window is
 *    covered), and the last such sample and every later one have depth > X.
 *    "Below" likewise. A pool that has not been sampled for a whole window
 *    therefore never acts on a single fresh sample, unless the sample
 *    before the gap agrees with it.
 * 2. Settling. Within sustain_ms of the last change passed to applied(),
 *    the policy neither scales out nor in: the new size gets a full window
 *    to show its effect.
 * 3. Scale out when depth stayed above scale_out_depth for sustain_ms. Add
 *    lowest / scale_out_depth children, at least 1, where lowest is the
 *    lowest depth of the window (the backlog that held all along; 4 for
 *    2000 jobs at a threshold of 500), but no more than what is left of
 *    scale_out_per_minute: the children applied() added in (now - 60 s, now]
 *    count against it.
 * 4. Scale in by 1 when depth stayed below scale_in_depth for sustain_ms,
 *    and the last scale-in (an applied() that shrank the pool) is at least
 *    scale_in_interval_ms old, and now is in no protection window of the
 *    pool ([start, end), see usher_autoscale_protected), and the latest
 *    sample had fewer busy children than the current size: a busy child is
 *    never the one retired, so the pool never shrinks below its busy count.
 * 5. Bounds, hard and not rate-limited (they also correct a size that a
 *    reload left out of range): at most max; at most downstream_slots when
 *    that is >= 0; at least min. The floor wins over the downstream cap: a
 *    pool below its floor would stop serving its queues' other jobs and lose
 *    the redundancy min is for, so the size is only a soft cap on downstream
 *    use, and the hard one (at most downstream_limit jobs using the resource
 *    on all hosts) belongs where jobs are claimed. The ceiling and the
 *    downstream cap may go below the busy count: the supervisor retires
 *    children as they become idle.
 *
 * Memory is fixed: a ring of USHER_AUTOSCALE_SAMPLES samples (the oldest are
 * overwritten; desired() also drops those its window no longer needs) and a
 * ring of recent scale-outs. Sample no faster than the ring allows: a window
 * that the ring cannot cover is never sustained, so the pool holds. At one
 * sample per second the ring covers 68 minutes, more than the longest
 * sustain_ms (1 hour). A clock that steps back (a sample or now before the
 * newest sample) restarts the windows rather than stalling them.
 */
#ifndef USHER_AUTOSCALE_H
#define USHER_AUTOSCALE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "error.h"

#define USHER_AUTOSCALE_SAMPLES 4096 /* about 96 KiB per pool */

/* USHER_AUTOSCALE_DEPTH_CAP (config.h): how far the supervisor counts a depth. */

typedef struct usher_autoscale usher_autoscale;

/* A policy with no samples and no history. The caller frees *out. */
USHER_MUSTCHECK usher_err usher_autoscale_new(usher_autoscale **out);

/* Accepts NULL. */
void usher_autoscale_free(usher_autoscale *a);

/*
 * Records a sample: depth = jobs ready to run in the pool's queues, busy =
 * children running a job. now_ms should not decrease (see above).
 */
void usher_autoscale_observe(usher_autoscale *a, int64_t now_ms, int64_t depth, int busy);

/*
 * The size the pool should have now, given pool (a configuration that
 * usher_config_load accepted), its current size, and the downstream slots
 * it may use (-1 = uncapped): the jobs using pool->downstream that this pool
 * may run at once, counting those it runs now. Returns current when nothing
 * should change. It only drops samples that no window needs any more and
 * records its reason, so it may be called as often as needed.
 */
int usher_autoscale_desired(usher_autoscale *a, const usher_pool_conf *pool, int current,
                            int downstream_slots, int64_t now_ms);

/*
 * Tells the policy that the supervisor changed the size from `from` to `to`
 * at now_ms, so that the rate limits and the settling count real changes.
 * Call it for every change made to follow desired(), not for replacing a
 * crashed child, nor for the children forked at start.
 */
void usher_autoscale_applied(usher_autoscale *a, int from, int to, int64_t now_ms);

/*
 * Why the last desired() returned what it did, for logs and STATUS=: a
 * static string such as "scale out: depth above scale_out_depth" or
 * "hold: protection window". Never NULL.
 */
const char *usher_autoscale_reason(const usher_autoscale *a);

/* True when now_ms is inside one of pool's protection windows [start, end). */
bool usher_autoscale_protected(const usher_pool_conf *pool, int64_t now_ms);

#endif
