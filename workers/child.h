/*
 * A pool's child process: reads jobs from its socket, runs each one's
 * handler, writes the outcome back, and exits when the supervisor closes
 * the socket (or dies).
 */
#ifndef USHER_CHILD_H
#define USHER_CHILD_H

#include <sys/types.h>

#include "config.h"

/*
 * Serves jobs on fd until EOF; never returns (exits the process). parent
 * is the supervisor; cfg is the configuration as it was at the fork.
 */
void usher_child_main(int fd, pid_t parent, const usher_config *cfg) __attribute__((noreturn));

#endif
