/*
 * The maintenance process: what the supervisor's maintenance.c forks. It
 * runs the leader's duties round after round with a blocking connection
 * of its own, which is why it is a process: a round that waits on the
 * database stalls nothing but itself, and the supervisor stays a single
 * thread that may fork (see fork.h).
 */
#ifndef USHER_MAINT_PROCESS_H
#define USHER_MAINT_PROCESS_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

/* A byte the process writes to its socket after a round whose leadership changed. */
#define USHER_MAINT_LEADER     '1'
#define USHER_MAINT_NOT_LEADER '0'

/*
 * Runs in the newly forked process and never returns. fd is its end of
 * the socketpair to the supervisor: leadership goes out on it, and EOF on
 * it (the supervisor stopping or gone) ends the process after its current
 * round. cfg is the supervisor's configuration as this fork copied it;
 * interval_ms is the pause between rounds. Every other descriptor the
 * fork inherited is closed first.
 */
__attribute__((noreturn)) void usher_maint_process_main(int fd, pid_t parent,
                                                        const usher_config *cfg, int interval_ms);

#endif
