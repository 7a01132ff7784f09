/*
 * The debounce table: one slot per queue name, each with the monotonic
 * time of this process's last NOTIFY for it. A handful of queues exist, so
 * a linear scan under a mutex is cheaper than anything cleverer. When the
 * table is full, every enqueue notifies: correct, only slower.
 */
#include "wake.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"

#define WAKE_SLOTS 256

typedef struct wake_slot {
    char queue[USHER_NAME_MAX];
    int64_t last_ns;
} wake_slot;

static wake_slot slots[WAKE_SLOTS];
static size_t nslots;
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

void usher_wake_channel(const char *queue, char *buf, size_t len)
{
    snprintf(buf, len, USHER_WAKE_PREFIX "%s", queue);
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static wake_slot *find_or_add(const char *queue)
{
    for (size_t i = 0; i < nslots; i++) {
        if (strcmp(slots[i].queue, queue) == 0)
            return &slots[i];
    }
    if (nslots == WAKE_SLOTS || strlen(queue) >= USHER_NAME_MAX)
        return NULL;
    snprintf(slots[nslots].queue, sizeof(slots[nslots].queue), "%s", queue);
    slots[nslots].last_ns = INT64_MIN;
    return &slots[nslots++];
}

bool usher_wake_due(const char *queue, int debounce_ms)
{
    int64_t now = monotonic_ns();
    bool due = true;
    wake_slot *slot;

    if (debounce_ms <= 0)
        return true;
    pthread_mutex_lock(&slots_lock);
    slot = find_or_add(queue);
    if (slot != NULL) {
        due = slot->last_ns == INT64_MIN || now - slot->last_ns >= (int64_t)debounce_ms * 1000000;
        if (due)
            slot->last_ns = now;
    }
    pthread_mutex_unlock(&slots_lock);
    return due;
}
