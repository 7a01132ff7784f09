/*
 * The autoscaling policy of a worker pool; autoscale.h states its rules.
 * The state is two fixed rings and two timestamps: the samples of
 * (time, depth, busy), oldest first; the scale-outs of the last minute
 * (time, children added), which spend the per-minute budget; the time of the
 * last change and of the last scale-in. desired() reads them against the
 * pool's configuration and the time it is given, and never reads a clock,
 * so the whole policy runs under a simulated clock in the tests.
 */
#include "autoscale.h"

#include <stdlib.h>

#include "alloc.h"

#define MINUTE_MS 60000
#define OUTS      64 /* scale-outs remembered; more in one minute are merged */

typedef struct sample {
    int64_t at_ms;
    int64_t depth; /* jobs ready to run */
    int busy;      /* children running a job */
} sample;

typedef struct growth {
    int64_t at_ms;
    int64_t added; /* children */
} growth;

struct usher_autoscale {
    sample samples[USHER_AUTOSCALE_SAMPLES];
    size_t first, count; /* samples[first] is the oldest */
    growth outs[OUTS];
    size_t outs_first, outs_count; /* outs[outs_first] is the oldest */
    bool changed;                  /* last_change_ms is set */
    int64_t last_change_ms;        /* of any change passed to applied() */
    bool scaled_in;                /* last_scale_in_ms is set */
    int64_t last_scale_in_ms;      /* of the last change that shrank the pool */
    const char *reason;            /* of the last desired() */
};

static const char R_NEW[] = "hold: not asked yet";
static const char R_UNCOVERED[] = "hold: no sample covers sustain_ms yet";
static const char R_BETWEEN[] = "hold: depth between the thresholds";
static const char R_SETTLING[] = "hold: settling for sustain_ms after a change";
static const char R_OUT[] = "scale out: depth above scale_out_depth";
static const char R_BUDGET[] = "hold: scale_out_per_minute spent";
static const char R_IN[] = "scale in: depth below scale_in_depth";
static const char R_PROTECTED[] = "hold: protection window";
static const char R_INTERVAL[] = "hold: scale_in_interval_ms since the last scale-in";
static const char R_BUSY[] = "hold: every child busy";
static const char R_MAX[] = "bound: max";
static const char R_DOWNSTREAM[] = "bound: downstream slots";
static const char R_MIN[] = "bound: min";

usher_err usher_autoscale_new(usher_autoscale **out)
{
    usher_autoscale *a = usher_calloc(1, sizeof(*a));

    *out = a;
    a->reason = R_NEW;
    return USHER_OK;
}

void usher_autoscale_free(usher_autoscale *a)
{
    free(a);
}

const char *usher_autoscale_reason(const usher_autoscale *a)
{
    return a->reason;
}

bool usher_autoscale_protected(const usher_pool_conf *pool, int64_t now_ms)
{
    for (int i = 0; i < pool->protect.count; i++) {
        const usher_window *w = &pool->protect.window[i];

        if (w->start_ms <= now_ms && now_ms < w->end_ms)
            return true;
    }
    return false;
}

/* ---- samples ------------------------------------------------------------- */

/* The i-th sample, oldest first. */
static const sample *sample_at(const usher_autoscale *a, size_t i)
{
    return &a->samples[(a->first + i) % USHER_AUTOSCALE_SAMPLES];
}

static const sample *newest(const usher_autoscale *a)
{
    return sample_at(a, a->count - 1);
}

void usher_autoscale_observe(usher_autoscale *a, int64_t now_ms, int64_t depth, int busy)
{
    sample *s;

    if (a->count > 0 && now_ms < newest(a)->at_ms)
        a->count = 0; /* the clock stepped back: start the windows again */
    if (a->count == USHER_AUTOSCALE_SAMPLES) {
        a->first = (a->first + 1) % USHER_AUTOSCALE_SAMPLES;
        a->count--;
    }
    s = &a->samples[(a->first + a->count) % USHER_AUTOSCALE_SAMPLES];
    s->at_ms = now_ms;
    s->depth = depth > 0 ? depth : 0;
    s->busy = busy > 0 ? busy : 0;
    a->count++;
}

/* Drops the samples before the last one at or before start: no window needs them. */
static void drop_old_samples(usher_autoscale *a, int64_t start_ms)
{
    while (a->count >= 2 && sample_at(a, 1)->at_ms <= start_ms) {
        a->first = (a->first + 1) % USHER_AUTOSCALE_SAMPLES;
        a->count--;
    }
}

/*
 * The lowest and highest depth from start to the newest sample, counting the
 * last sample at or before start (its depth held at start). False when no
 * sample is that old: the window is not covered.
 */
static bool window_depths(const usher_autoscale *a, int64_t start_ms, int64_t *lowest,
                          int64_t *highest)
{
    size_t i = 0;

    if (a->count == 0 || sample_at(a, 0)->at_ms > start_ms)
        return false;
    while (i + 1 < a->count && sample_at(a, i + 1)->at_ms <= start_ms)
        i++;
    *lowest = *highest = sample_at(a, i)->depth;
    for (i++; i < a->count; i++) {
        int64_t depth = sample_at(a, i)->depth;

        if (depth < *lowest)
            *lowest = depth;
        if (depth > *highest)
            *highest = depth;
    }
    return true;
}

/* ---- history of changes -------------------------------------------------- */

void usher_autoscale_applied(usher_autoscale *a, int from, int to, int64_t now_ms)
{
    growth *o;

    if (from == to)
        return;
    a->changed = true;
    a->last_change_ms = now_ms;
    if (to < from) {
        a->scaled_in = true;
        a->last_scale_in_ms = now_ms;
        return;
    }
    if (a->outs_count == OUTS) {
        /* merge the oldest into the next, at the later time: the budget only gets stricter */
        size_t next = (a->outs_first + 1) % OUTS;

        a->outs[next].added += a->outs[a->outs_first].added;
        a->outs_first = next;
        a->outs_count--;
    }
    o = &a->outs[(a->outs_first + a->outs_count) % OUTS];
    o->at_ms = now_ms;
    o->added = (int64_t)to - from;
    a->outs_count++;
}

/* After the clock stepped back, history "in the future" happened now. */
static void rewind_history(usher_autoscale *a, int64_t now_ms)
{
    if (a->count > 0 && newest(a)->at_ms > now_ms)
        a->count = 0;
    for (size_t i = 0; i < a->outs_count; i++) {
        growth *o = &a->outs[(a->outs_first + i) % OUTS];

        if (o->at_ms > now_ms)
            o->at_ms = now_ms;
    }
    if (a->changed && a->last_change_ms > now_ms)
        a->last_change_ms = now_ms;
    if (a->scaled_in && a->last_scale_in_ms > now_ms)
        a->last_scale_in_ms = now_ms;
}

/* Children the pool may still add: scale_out_per_minute less those added in (now - 60 s, now]. */
static int64_t budget_left(usher_autoscale *a, const usher_pool_conf *pool, int64_t now_ms)
{
    int64_t added = 0;

    while (a->outs_count > 0 && a->outs[a->outs_first].at_ms <= now_ms - MINUTE_MS) {
        a->outs_first = (a->outs_first + 1) % OUTS;
        a->outs_count--;
    }
    for (size_t i = 0; i < a->outs_count; i++)
        added += a->outs[(a->outs_first + i) % OUTS].added;
    return added < pool->scale_out_per_minute ? pool->scale_out_per_minute - added : 0;
}

/* ---- the decision -------------------------------------------------------- */

/* lowest > scale_out_depth >= 1 (the config has 0 <= scale_in_depth < it), so step >= 1. */
static int64_t scale_out(usher_autoscale *a, const usher_pool_conf *pool, int current,
                         int64_t lowest, int64_t now_ms)
{
    int64_t step = lowest / (pool->scale_out_depth > 0 ? pool->scale_out_depth : 1);
    int64_t left = budget_left(a, pool, now_ms);

    if (left == 0) {
        a->reason = R_BUDGET;
        return current;
    }
    a->reason = R_OUT;
    return current + (step < left ? step : left);
}

static int64_t scale_in(usher_autoscale *a, const usher_pool_conf *pool, int current,
                        int64_t now_ms)
{
    if (usher_autoscale_protected(pool, now_ms)) {
        a->reason = R_PROTECTED;
    } else if (a->scaled_in && now_ms - a->last_scale_in_ms < pool->scale_in_interval_ms) {
        a->reason = R_INTERVAL;
    } else if (newest(a)->busy >= current) {
        a->reason = R_BUSY;
    } else {
        a->reason = R_IN;
        return (int64_t)current - 1;
    }
    return current;
}

/* The hard bounds: max, then the downstream slots, then min, which wins. */
static int bound(usher_autoscale *a, const usher_pool_conf *pool, int64_t target,
                 int downstream_slots)
{
    if (target > pool->max) {
        target = pool->max;
        a->reason = R_MAX;
    }
    if (downstream_slots >= 0 && target > downstream_slots) {
        target = downstream_slots;
        a->reason = R_DOWNSTREAM;
    }
    if (target < pool->min) {
        target = pool->min;
        a->reason = R_MIN;
    }
    return (int)target;
}

int usher_autoscale_desired(usher_autoscale *a, const usher_pool_conf *pool, int current,
                            int downstream_slots, int64_t now_ms)
{
    int64_t start_ms = now_ms - pool->sustain_ms;
    int64_t target = current, lowest, highest;

    rewind_history(a, now_ms);
    drop_old_samples(a, start_ms);
    if (a->changed && now_ms - a->last_change_ms < pool->sustain_ms)
        a->reason = R_SETTLING;
    else if (!window_depths(a, start_ms, &lowest, &highest))
        a->reason = R_UNCOVERED;
    else if (lowest > pool->scale_out_depth)
        target = scale_out(a, pool, current, lowest, now_ms);
    else if (highest < pool->scale_in_depth)
        target = scale_in(a, pool, current, now_ms);
    else
        a->reason = R_BETWEEN;
    return bound(a, pool, target, downstream_slots);
}
