/*
 * A pool's child process: reads jobs from its socket, runs each one's
 * handler, writes the outcome back, and exits when the supervisor closes
 * the socket (or dies).
 */
#ifndef USHER_CHILD_H
#define USHER_CHILD_H

#include <sys/types.h>

#include "child_io.h"
#include "config.h"

/*
 * Serves jobs on fd until EOF; never returns (exits the process). parent
 * is the supervisor; cfg is the configuration as it was at the fork;
 * slots (shared with the supervisor) decide which queued jobs are still
 * the child's to run.
 */
void usher_child_main(int fd, pid_t parent, const usher_config *cfg, usher_child_slots *slots)
    __attribute__((noreturn));

#endif
