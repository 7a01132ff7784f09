/*
 * The API fleet's scaling policy; api_scale.h states its rules. The state
 * is a ring of the fleet's samples (oldest first), the ring of the last
 * minute's increases of the figure, the figure itself and the times of its
 * last change and last decrease. Nothing here reads a clock.
 */
#include "api_scale.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "alloc.h"

#define MINUTE_MS 60000
#define UPS       64 /* increases remembered within a minute */

typedef struct increase {
    int64_t at_ms;
    int added;
} increase;

struct usher_api_scale {
    usher_api_scale_sample samples[USHER_API_SCALE_SAMPLES];
    size_t first, count; /* samples[first] is the oldest */
    increase ups[UPS];
    size_t ups_first, ups_count;
    int desired; /* 0: not asked yet */
    bool changed, scaled_in;
    int64_t last_change_ms, last_in_ms;
    const char *reason;
};

static const char R_NEW[] = "hold: not asked yet";
static const char R_HOLD[] = "hold: within the thresholds";
static const char R_SETTLING[] = "hold: settling after a change";
static const char R_OUT_CPU[] = "scale out: CPU above its threshold";
static const char R_OUT_MEM[] = "scale out: memory above its threshold";
static const char R_OUT_QUEUE[] = "scale out: requests waiting above their threshold";
static const char R_BUDGET[] = "hold: scale-outs of this minute spent";
static const char R_IN[] = "scale in: CPU below its threshold";
static const char R_LAUNCH[] = "hold: registration launch";
static const char R_INTERVAL[] = "hold: in_interval_ms since the last scale-in";
static const char R_MAX[] = "bound: max";
static const char R_MIN[] = "bound: min";

usher_api_scale_conf usher_api_scale_seed(int max)
{
    return (usher_api_scale_conf){ .cpu_out = 0.70,
                                   .mem_out = 0.80,
                                   .cpu_in = 0.40,
                                   .queue_out = 100,
                                   .cpu_out_ms = 5 * MINUTE_MS,
                                   .mem_out_ms = 5 * MINUTE_MS,
                                   .queue_out_ms = 3 * MINUTE_MS,
                                   .cpu_in_ms = 15 * MINUTE_MS,
                                   .out_per_minute = 5,
                                   .in_interval_ms = 5 * MINUTE_MS,
                                   .settle_ms = MINUTE_MS,
                                   .min = 2,
                                   .max = max };
}

usher_err usher_api_scale_new(usher_api_scale **out)
{
    usher_api_scale *s = usher_calloc(1, sizeof(*s));

    s->reason = R_NEW;
    *out = s;
    return USHER_OK;
}

void usher_api_scale_free(usher_api_scale *s)
{
    free(s);
}

static const usher_api_scale_sample *sample_at(const usher_api_scale *s, size_t i)
{
    return &s->samples[(s->first + i) % USHER_API_SCALE_SAMPLES];
}

void usher_api_scale_observe(usher_api_scale *s, const usher_api_scale_sample *sample)
{
    if (s->count > 0 && sample->at_ms < sample_at(s, s->count - 1)->at_ms)
        s->count = 0; /* the clock stepped back: the windows start again */
    if (s->count == USHER_API_SCALE_SAMPLES) {
        s->first = (s->first + 1) % USHER_API_SCALE_SAMPLES;
        s->count--;
    }
    s->samples[(s->first + s->count) % USHER_API_SCALE_SAMPLES] = *sample;
    s->count++;
}

enum field { CPU, MEM, QUEUE };

static double value(const usher_api_scale_sample *x, enum field f)
{
    return f == CPU ? x->cpu : f == MEM ? x->mem : x->queue;
}

/*
 * Whether field stayed above (or below) threshold for window_ms at now_ms;
 * *extreme gets the window's lowest value when above, its highest when below.
 */
static bool sustained(const usher_api_scale *s, enum field f, bool above, double threshold,
                      int64_t window_ms, int64_t now_ms, double *extreme)
{
    size_t start = s->count;

    /* The last sample at or before the window's start holds at the start. */
    for (size_t i = s->count; i-- > 0;) {
        if (sample_at(s, i)->at_ms <= now_ms - window_ms) {
            start = i;
            break;
        }
    }
    if (start == s->count)
        return false; /* the window is not covered */
    *extreme = value(sample_at(s, start), f);
    for (size_t i = start; i < s->count; i++) {
        double v = value(sample_at(s, i), f);

        if (above ? v <= threshold : v >= threshold)
            return false;
        if (above ? v < *extreme : v > *extreme)
            *extreme = v;
    }
    return true;
}

/* Increases within the minute before now_ms; older ones are forgotten. */
static int added_last_minute(usher_api_scale *s, int64_t now_ms)
{
    int added = 0;

    while (s->ups_count > 0 && s->ups[s->ups_first].at_ms <= now_ms - MINUTE_MS) {
        s->ups_first = (s->ups_first + 1) % UPS;
        s->ups_count--;
    }
    for (size_t i = 0; i < s->ups_count; i++)
        added += s->ups[(s->ups_first + i) % UPS].added;
    return added;
}

static void remember_increase(usher_api_scale *s, int added, int64_t now_ms)
{
    if (s->ups_count == UPS) { /* more than UPS in a minute: merge into the newest */
        s->ups[(s->ups_first + UPS - 1) % UPS].added += added;
        return;
    }
    s->ups[(s->ups_first + s->ups_count) % UPS] = (increase){ now_ms, added };
    s->ups_count++;
}

/* The instances that bring value back under threshold at current, at least current + 1. */
static int wanted(int current, double lowest, double threshold)
{
    double n = ceil((double)current * lowest / threshold);

    if (n > 1e6)
        n = 1e6;
    return (int)n > current ? (int)n : current + 1;
}

/* The scale-out the rules ask for (0: none), and which rule asked for the most. */
static int scale_out_target(const usher_api_scale *s, const usher_api_scale_conf *c, int current,
                            int64_t now_ms, const char **why)
{
    static const struct {
        enum field f;
        size_t threshold, window;
        const char *reason;
    } rules[] = {
        { CPU, offsetof(usher_api_scale_conf, cpu_out), offsetof(usher_api_scale_conf, cpu_out_ms),
          R_OUT_CPU },
        { MEM, offsetof(usher_api_scale_conf, mem_out), offsetof(usher_api_scale_conf, mem_out_ms),
          R_OUT_MEM },
        { QUEUE, offsetof(usher_api_scale_conf, queue_out),
          offsetof(usher_api_scale_conf, queue_out_ms), R_OUT_QUEUE },
    };
    int target = 0;

    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        double threshold = *(const double *)((const char *)c + rules[i].threshold);
        int64_t window = *(const int64_t *)((const char *)c + rules[i].window);
        double lowest;

        if (sustained(s, rules[i].f, true, threshold, window, now_ms, &lowest) &&
            wanted(current, lowest, threshold) > target) {
            target = wanted(current, lowest, threshold);
            *why = rules[i].reason;
        }
    }
    return target;
}

static int bounded(usher_api_scale *s, const usher_api_scale_conf *c, int n)
{
    if (n > c->max) {
        s->reason = R_MAX;
        return c->max;
    }
    if (n < c->min) {
        s->reason = R_MIN;
        return c->min;
    }
    return n;
}

static int change(usher_api_scale *s, const usher_api_scale_conf *c, int to, int64_t now_ms)
{
    to = bounded(s, c, to);
    if (to > s->desired)
        remember_increase(s, to - s->desired, now_ms);
    if (to < s->desired) {
        s->scaled_in = true;
        s->last_in_ms = now_ms;
    }
    if (to != s->desired) {
        s->changed = true;
        s->last_change_ms = now_ms;
    }
    s->desired = to;
    return to;
}

int usher_api_scale_desired(usher_api_scale *s, const usher_api_scale_conf *c, int current,
                            bool launch, int64_t now_ms)
{
    const char *why = R_HOLD;
    int target, budget;
    double highest;

    if (s->desired == 0)
        s->desired = current; /* bounded below: a start outside them is corrected at once */
    s->reason = R_HOLD;
    if (s->desired > c->max || s->desired < c->min)
        return change(s, c, s->desired, now_ms);
    if (s->changed && now_ms - s->last_change_ms < c->settle_ms) {
        s->reason = R_SETTLING;
        return s->desired;
    }
    target = scale_out_target(s, c, current > s->desired ? current : s->desired, now_ms, &why);
    if (target > s->desired) {
        budget = c->out_per_minute - added_last_minute(s, now_ms);
        if (budget <= 0) {
            s->reason = R_BUDGET;
            return s->desired;
        }
        s->reason = why;
        return change(s, c, target - s->desired > budget ? s->desired + budget : target, now_ms);
    }
    if (!sustained(s, CPU, false, c->cpu_in, c->cpu_in_ms, now_ms, &highest))
        return s->desired;
    if (launch) {
        s->reason = R_LAUNCH;
        return s->desired;
    }
    if (s->scaled_in && now_ms - s->last_in_ms < c->in_interval_ms) {
        s->reason = R_INTERVAL;
        return s->desired;
    }
    s->reason = R_IN;
    return change(s, c, s->desired - 1, now_ms);
}

const char *usher_api_scale_reason(const usher_api_scale *s)
{
    return s->reason;
}
