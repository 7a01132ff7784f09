/*
 * The supervisor's side of the maintenance process: fork it, read the
 * leadership bytes it writes after each round that changed it, notice its
 * death (the caller reaps it: waitpid(-1) in children.c) and fork another.
 * A new process starts at once, unless the previous one lived less than
 * RESTART_MIN_MS: then it starts that long after the previous start, so a
 * process that cannot live does not turn the supervisor into a fork loop.
 * A reload renews the process the way it renews the children: the old one
 * is told to go (EOF) and ends its round, the new one is forked with the
 * reloaded configuration (a fork copies it: there is nothing to send).
 */
#include "maintenance.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "fork.h"
#include "log.h"
#include "maint_process.h"

#define RESTART_MIN_MS 1000

struct usher_maintenance {
    struct event_base *base;
    const usher_config *cfg;
    int interval_ms;
    pid_t pid;             /* the process; 0 between its death and the next start */
    int fd;                /* our end of its socket; -1 when closed */
    struct event *reader;  /* on fd */
    struct event *restart; /* the next start */
    int64_t started_ms;
    bool leader;
    bool renewing; /* told to go by a reload: its exit is expected, the next starts at once */
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_socket(usher_maintenance *m)
{
    if (m->reader != NULL)
        event_free(m->reader);
    m->reader = NULL;
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    m->leader = false;
}

/* Leadership bytes; the last one read is the latest round's. EOF: the process is going. */
static void readable(evutil_socket_t fd, short what, void *arg)
{
    usher_maintenance *m = arg;
    char bytes[64];
    ssize_t n;

    (void)what;
    while ((n = read(fd, bytes, sizeof(bytes))) > 0)
        m->leader = bytes[n - 1] == USHER_MAINT_LEADER;
    if (n == 0 || (errno != EAGAIN && errno != EINTR))
        close_socket(m); /* its exit comes through usher_maintenance_exited */
}

static USHER_MUSTCHECK usher_err watch(usher_maintenance *m, int fd)
{
    m->fd = fd;
    if (evutil_make_socket_nonblocking(fd) != 0)
        return USHER_ERR_IO;
    m->reader = usher_need(event_new(m->base, fd, EV_READ | EV_PERSIST, readable, m));
    if (event_add(m->reader, NULL) != 0)
        return USHER_ERR_IO;
    return USHER_OK;
}

static USHER_MUSTCHECK usher_err spawn(usher_maintenance *m)
{
    int sv[2];
    pid_t parent = getpid(), pid;
    usher_err err;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return USHER_ERR_IO;
    pid = usher_fork();
    if (pid == 0) {
        close(sv[0]);
        usher_maint_process_main(sv[1], parent, m->cfg, m->interval_ms);
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return USHER_ERR_IO;
    }
    m->pid = pid;
    m->started_ms = monotonic_ms();
    err = watch(m, sv[0]);
    if (err != USHER_OK)
        close_socket(m); /* the process sees EOF and exits; the next one may do better */
    usher_log(USHER_LOG_INFO, "maintenance: process=%d started", (int)pid);
    return err;
}

static void restart_due(evutil_socket_t fd, short what, void *arg)
{
    usher_maintenance *m = arg;
    struct timeval tv = { RESTART_MIN_MS / 1000, (RESTART_MIN_MS % 1000) * 1000 };
    usher_err err;

    (void)fd;
    (void)what;
    if (m->pid > 0)
        return;
    err = spawn(m);
    if (err != USHER_OK)
        usher_log(USHER_LOG_ERR, "maintenance: cannot start the process: %s (%s)",
                  usher_strerror(err), strerror(errno));
    if (m->pid == 0) /* no process to wait for: try again later */
        evtimer_add(m->restart, &tv);
}

usher_err usher_maintenance_start(struct event_base *base, const usher_config *cfg, int interval_ms,
                                  usher_maintenance **out)
{
    usher_maintenance *m = usher_calloc(1, sizeof(*m));
    usher_err err;

    *out = NULL;
    *m = (usher_maintenance){ .base = base, .cfg = cfg, .interval_ms = interval_ms, .fd = -1 };
    m->restart = usher_need(evtimer_new(base, restart_due, m));
    err = spawn(m);
    if (err != USHER_OK) {
        usher_maintenance_stop(m);
        return err;
    }
    *out = m;
    return USHER_OK;
}

void usher_maintenance_reload(usher_maintenance *m, const usher_config *cfg)
{
    m->cfg = cfg;
    if (m->pid > 0 && !m->renewing) {
        m->renewing = true;
        close_socket(m); /* EOF: the process ends after its round */
    }
    /* With no process running, the pending start forks with cfg. */
}

bool usher_maintenance_is_leader(const usher_maintenance *m)
{
    return m != NULL && m->leader;
}

bool usher_maintenance_exited(usher_maintenance *m, pid_t pid, int status)
{
    int64_t wait_ms;
    struct timeval tv, now = { 0, 0 };

    if (m == NULL || m->pid <= 0 || pid != m->pid)
        return false;
    m->pid = 0;
    close_socket(m);
    if (m->renewing && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        m->renewing = false;
        usher_log(USHER_LOG_INFO, "maintenance: process=%d ended for the reload", (int)pid);
        evtimer_add(m->restart, &now);
        return true;
    }
    m->renewing = false;
    if (WIFSIGNALED(status))
        usher_log(USHER_LOG_WARNING, "maintenance: process=%d killed by signal %d (%s)", (int)pid,
                  WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        usher_log(USHER_LOG_WARNING, "maintenance: process=%d exited with status %d", (int)pid,
                  WEXITSTATUS(status));
    wait_ms = m->started_ms + RESTART_MIN_MS - monotonic_ms();
    wait_ms = wait_ms > 0 ? wait_ms : 0;
    tv = (struct timeval){ (time_t)(wait_ms / 1000), (suseconds_t)(wait_ms % 1000) * 1000 };
    evtimer_add(m->restart, &tv);
    return true;
}

void usher_maintenance_stop(usher_maintenance *m)
{
    int status;

    if (m == NULL)
        return;
    if (m->restart != NULL)
        event_free(m->restart);
    close_socket(m); /* EOF: the process ends after its round */
    while (m->pid > 0 && waitpid(m->pid, &status, 0) < 0 && errno == EINTR)
        ;
    free(m);
}
