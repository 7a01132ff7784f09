/*
 * The thread count comes from /proc/self/task, one entry per thread: a
 * directory read costs microseconds, nothing next to a fork, so the check
 * runs before every fork and not only in debug builds.
 */
#include "fork.h"

#include <dirent.h>
#include <unistd.h>

#include "log.h"

int usher_fork_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n;
}

pid_t usher_fork(void)
{
    int threads = usher_fork_threads();

    if (threads == 1)
        usher_log(USHER_LOG_DEBUG, "fork: threads=1");
    else
        usher_log(USHER_LOG_ERR,
                  "fork: forking with threads=%d: the child may inherit a lock another thread "
                  "holds",
                  threads);
    return fork();
}
