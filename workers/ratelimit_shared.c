/*
 * The shared GCRA (see ratelimit_shared.h). The page holds two atomics and
 * no lock: a process killed mid-way cannot leave it held. A process-shared
 * atomic needs the type to be lock-free, which static_assert checks.
 */
#include "ratelimit_shared.h"

#include <assert.h>
#include <errno.h>
#include <sys/mman.h>
#include <time.h>

#define NS_PER_S  1000000000ULL
#define NS_PER_MS 1000000ULL

static_assert(ATOMIC_LONG_LOCK_FREE == 2 && sizeof(unsigned long) == sizeof(uint64_t),
              "the shared page needs lock-free 64-bit atomics");

void usher_gcra_set_rate(usher_gcra *g, int per_second)
{
    atomic_store(&g->interval_ns, per_second > 0 ? NS_PER_S / (uint64_t)per_second : 0);
}

bool usher_gcra_limited(usher_gcra *g)
{
    return g != NULL && atomic_load(&g->interval_ns) > 0;
}

bool usher_gcra_take(usher_gcra *g, uint64_t now_ns, uint64_t max_wait_ns, uint64_t *wait_ns)
{
    uint64_t interval = atomic_load(&g->interval_ns);
    uint64_t tat = atomic_load(&g->tat_ns);
    uint64_t slot;

    if (interval == 0) {
        *wait_ns = 0;
        return true;
    }
    do {
        slot = tat > now_ns ? tat : now_ns;
        if (slot - now_ns > max_wait_ns) {
            *wait_ns = slot - now_ns - max_wait_ns;
            return false;
        }
        /* on failure tat is reloaded with the value another process stored */
    } while (!atomic_compare_exchange_weak(&g->tat_ns, &tat, slot + interval));
    *wait_ns = slot - now_ns;
    return true;
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

bool usher_gcra_wait(usher_gcra *g, int max_wait_ms, int64_t *retry_ms)
{
    uint64_t wait_ns;
    struct timespec left;

    *retry_ms = 0;
    if (g == NULL)
        return true;
    if (!usher_gcra_take(g, monotonic_ns(), (uint64_t)max_wait_ms * NS_PER_MS, &wait_ns)) {
        *retry_ms = (int64_t)((wait_ns + NS_PER_MS - 1) / NS_PER_MS);
        return false;
    }
    left.tv_sec = (time_t)(wait_ns / NS_PER_S);
    left.tv_nsec = (long)(wait_ns % NS_PER_S);
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        continue; /* the slot is ours: finish the wait */
    return true;
}

usher_err usher_gcra_shared_new(int per_second, usher_gcra **out)
{
    void *page =
        mmap(NULL, sizeof(usher_gcra), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    *out = NULL;
    if (page == MAP_FAILED)
        return USHER_ERR_NOMEM;
    *out = page; /* zero-filled: TAT 0 is in the past */
    usher_gcra_set_rate(*out, per_second);
    return USHER_OK;
}

void usher_gcra_shared_free(usher_gcra *g)
{
    if (g != NULL)
        munmap(g, sizeof(*g));
}
