/*
 * The window policy of engine/hold.h: a capped moving mean and a
 * division. Kept apart from the supervisor so that it is tested alone.
 */
#include "hold.h"

#define WEIGHT (1.0 / 16)

void usher_hold_init(usher_hold *h, size_t max)
{
    h->estimate_us = USHER_HOLD_BUDGET_US;
    h->max = max > 0 ? max : 1;
}

void usher_hold_observe(usher_hold *h, int64_t service_us)
{
    double sample = service_us < 0                          ? 0
                    : service_us > USHER_HOLD_SAMPLE_CAP_US ? USHER_HOLD_SAMPLE_CAP_US
                                                            : (double)service_us;

    h->estimate_us += (sample - h->estimate_us) * WEIGHT;
}

size_t usher_hold_window(const usher_hold *h)
{
    double fits = h->estimate_us > 0 ? USHER_HOLD_BUDGET_US / h->estimate_us : (double)h->max;

    if (fits < 1)
        return 1;
    return fits >= (double)h->max ? h->max : (size_t)fits;
}
