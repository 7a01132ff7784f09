/*
 * Backups that a restore can trust with mail (issue 16). A dump is a
 * snapshot of one instant; a mail is an effect outside the database. What
 * must not happen is a mail accepted by the relay before that instant
 * whose record the snapshot lacks: a restored system would send it again.
 *
 * The send barrier closes that gap: a sender holds the barrier (a shared
 * advisory lock, USHER_SEND_BARRIER_KEY) from before it asks the relay until
 * it has committed a "mail:JOBID" row in usher_effects, and skips a job whose
 * row exists; a backup takes the barrier exclusively, so no send is half
 * recorded, and exports the snapshot that pg_dump --snapshot reads. Sends
 * wait only while the snapshot is taken (milliseconds), or for as long as
 * the caller holds the barrier.
 */
#ifndef USHER_BACKUP_H
#define USHER_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

#define USHER_SEND_BARRIER_KEY 0x7573686572424BLL /* "usherBK" */
#define USHER_SNAPSHOT_MAX     64

/*
 * Takes the barrier exclusively (waiting for senders to record what they
 * sent), opens a REPEATABLE READ transaction on st and exports its
 * snapshot's name into snapshot. The barrier stays held: release it with
 * usher_backup_barrier_release; the snapshot lives until
 * usher_backup_snapshot_close.
 */
USHER_MUSTCHECK usher_err usher_backup_snapshot_open(usher_store *st,
                                                     char snapshot[USHER_SNAPSHOT_MAX]);
USHER_MUSTCHECK usher_err usher_backup_barrier_release(usher_store *st);
USHER_MUSTCHECK usher_err usher_backup_snapshot_close(usher_store *st);

/*
 * A sender before it sends jobs[0..n): holds the barrier (shared) and sets
 * sent[i] when job ids[i]'s mail is recorded as sent already.
 */
USHER_MUSTCHECK usher_err usher_send_barrier_enter(usher_store *st, const int64_t *ids, size_t n,
                                                   bool *sent);

/* Records the mails of ids[0..n) as sent (committed), then lets go of the barrier. */
USHER_MUSTCHECK usher_err usher_send_barrier_leave(usher_store *st, const int64_t *ids, size_t n);

#endif
