/*
 * How many usher-api instances the fleet should have: the seed's
 * application-tier rules as a pure function of the fleet's recent averages
 * (CPU and memory use, requests waiting), the live instance count, whether
 * a registration launch is near, and the clock. Usher starts no machine; an
 * outside autoscaler (Kubernetes HPA, a cloud group, a script) follows the
 * figure usher-api exports as usher_api_desired_instances. No I/O and no
 * clock reads, as engine/autoscale.h for worker pools: tests drive it with a
 * simulated clock.
 *
 * The rules, in the order usher_api_scale_desired applies them, where a
 * value "stayed above X for W" means, as for pools, that some sample is at
 * or before now - W and that sample and every later one are above X:
 *
 * 1. Scale out when CPU stayed above cpu_out (70%) for 5 minutes, memory
 *    above mem_out (80%) for 5 minutes, or the waiting requests per instance
 *    above queue_out (100) for 3 minutes. The figure grows to what brings
 *    the lowest value of each such window back under its threshold at the
 *    current instance count (ceil(current * lowest / threshold)), at least
 *    one more than now, by at most out_per_minute (5) in any minute.
 * 2. Settling: within settle_ms (1 minute) of its last change the figure
 *    holds, so new instances get to take load before the next step.
 * 3. Scale in by 1 when CPU stayed below cpu_in (40%) for 15 minutes, no
 *    scale-out rule holds, the last scale-in is at least in_interval_ms (5
 *    minutes) old, and no registration launch is near (launch: the caller's
 *    answer, from the events' launch times and the [api] windows).
 * 4. Bounds: at least min (2, for availability), at most max (the event
 *    tier's 10/50/200/500).
 *
 * The figure starts at the live instance count, within the bounds, and
 * moves only by these rules: when the autoscaler is slower than the policy
 * the figure does not run ahead of it by more than the rates allow.
 */
#ifndef USHER_API_SCALE_H
#define USHER_API_SCALE_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

#define USHER_API_SCALE_SAMPLES 1024 /* at one sample each 5 s: 85 minutes */

typedef struct usher_api_scale_conf {
    double cpu_out, mem_out, cpu_in; /* fractions of the instance: 0.70, 0.80, 0.40 */
    double queue_out;                /* waiting requests per instance: 100 */
    int64_t cpu_out_ms, mem_out_ms, queue_out_ms, cpu_in_ms; /* 5, 5, 3, 15 minutes */
    int out_per_minute;                                      /* 5 */
    int64_t in_interval_ms;                                  /* 5 minutes */
    int64_t settle_ms;                                       /* 1 minute */
    int min, max;                                            /* 2, the tier's maximum */
} usher_api_scale_conf;

/* The seed's numbers, with max = the event tier's ceiling (10/50/200/500). */
usher_api_scale_conf usher_api_scale_seed(int max);

/* The fleet's averages over its live instances at one moment. */
typedef struct usher_api_scale_sample {
    int64_t at_ms;
    double cpu;   /* CPU use, 0..1 of the instance */
    double mem;   /* memory use, 0..1 of the instance */
    double queue; /* requests waiting (in flight) per instance */
} usher_api_scale_sample;

typedef struct usher_api_scale usher_api_scale;

USHER_MUSTCHECK usher_err usher_api_scale_new(usher_api_scale **out);
void usher_api_scale_free(usher_api_scale *s); /* accepts NULL */

/* Records a sample; at_ms should not decrease (a step back restarts the windows). */
void usher_api_scale_observe(usher_api_scale *s, const usher_api_scale_sample *sample);

/*
 * The instances the fleet should have now (see the rules above), given the
 * live count and whether a launch holds scale-in.
 */
int usher_api_scale_desired(usher_api_scale *s, const usher_api_scale_conf *conf, int current,
                            bool launch, int64_t now_ms);

/* Why the last desired() answered what it did: a static string, never NULL. */
const char *usher_api_scale_reason(const usher_api_scale *s);

#endif
