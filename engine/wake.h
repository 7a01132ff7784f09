/*
 * Wake-ups. Enqueue NOTIFYs the channel of each queue it added runnable
 * jobs to; claimers LISTEN and claim at once, polling as a fallback.
 *
 * PostgreSQL serialises the commits of all transactions that NOTIFY (a
 * database-wide lock from the NOTIFY to the end of commit), so a NOTIFY in
 * every enqueue would cap enqueue throughput at one commit flush at a time.
 * Instead each process notifies a queue at most once per
 * notify_debounce_ms; a claimer that wakes keeps claiming until the queue
 * is empty and re-checks once more after the debounce window, which picks
 * up the jobs whose NOTIFY was skipped.
 */
#ifndef USHER_WAKE_H
#define USHER_WAKE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The prefix of every queue's NOTIFY channel. SQL has the same in
 * usher_wake_channel() (schemas/migrations/0012_job_writes.sql), which every
 * statement that notifies calls through usher_wake(); test_enqueue checks
 * that the two agree.
 */
#define USHER_WAKE_PREFIX "usher:"

/* The NOTIFY channel of a queue, written into buf (USHER_WAKE_PREFIX + name). */
void usher_wake_channel(const char *queue, char *buf, size_t len);

/*
 * True when this process should NOTIFY queue now, i.e. it has not done so
 * in the last debounce_ms; records the time when it answers true.
 * Thread-safe.
 */
bool usher_wake_due(const char *queue, int debounce_ms);

#endif
