/*
 * The one way usher-worker forks. A process may fork only while it runs a
 * single thread: the child of a threaded process gets a copy of every lock
 * that another thread held at that instant (malloc arenas, libpq, OpenSSL,
 * stdio) and no thread that will ever release it, so its first call into
 * that library can hang for good. The supervisor therefore starts no
 * thread at all (maintenance is a process of its own, see maintenance.h),
 * and usher_fork checks that this still holds before each fork.
 */
#ifndef USHER_FORK_H
#define USHER_FORK_H

#include <sys/types.h>

/*
 * fork(), after counting this process's threads (/proc/self/task): one
 * is logged at debug level ("fork: threads=1"), more at error level,
 * and the fork goes ahead either way. Returns what fork() returns.
 */
pid_t usher_fork(void);

/* How many threads this process runs now (0 if /proc cannot tell). */
int usher_fork_threads(void);

#endif
