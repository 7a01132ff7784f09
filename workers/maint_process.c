/*
 * The maintenance process's loop: a round (lead, rescue, prune, fire the
 * periodic jobs, the retention pass when due), a report of leadership when it changed, then a pause
 * of interval_ms spent in poll() on the supervisor's socket, so that the supervisor's stop (it
 * closes its end) ends the pause at once. A broken connection is dropped and reopened on the next
 * round; losing it also loses the lock, which is right: another supervisor may take over meanwhile.
 *
 * Signals: SIGTERM, SIGINT and SIGHUP are ignored like the children do,
 * because stopping is the supervisor's call (systemd signals the whole
 * control group, and maintenance keeps going while the pool drains, as
 * it did when it was a thread); the kernel sends SIGKILL when the
 * supervisor dies, so no orphan keeps the leader lock.
 */
#define _GNU_SOURCE /* close_range */
#include "maint_process.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "maint.h"
#include "periodic.h"
#include "retention.h"
#include "store.h"

/*
 * The data lifecycle's pass (platform/retention.h), every [retention]
 * interval_minutes while this process leads; the first round of a process
 * (a start, a reload) runs it at once. A failure (a table locked past the
 * pass's lock wait, say) is logged and tried again a minute later (the
 * interval's least value): the pass is idempotent, and retrying every
 * round would keep the leader's connection queued behind the same lock.
 */
#define RETENTION_RETRY_S 60

static void retention_round(const usher_config *cfg, usher_store *st)
{
    static time_t next;
    usher_retention_report r;
    time_t now = time(NULL);

    if (now < next)
        return;
    if (usher_retention_run(cfg, st, (int64_t)now, &r) != USHER_OK) {
        usher_log(USHER_LOG_WARNING, "maintenance: retention: %s (next try in %d s)",
                  usher_store_errstr(st), RETENTION_RETRY_S);
        next = now + RETENTION_RETRY_S;
        return;
    }
    next = now + (time_t)cfg->retention_interval_minutes * 60;
    if (usher_retention_total(&r) > 0)
        usher_log(USHER_LOG_NOTICE,
                  "maintenance: retention partitions_created=%zu partitions_dropped=%zu"
                  " scans=%zu notifications=%zu documents=%zu blobs=%zu effects=%zu",
                  r.partitions_created, r.partitions_dropped, r.scans, r.notifications, r.documents,
                  r.blobs, r.effects);
}

/* One round; *leader says whether this session holds the lock afterwards. */
static void round_once(const usher_config *cfg, usher_store **st, bool *leader)
{
    char errbuf[256];
    size_t rescued = 0, pruned = 0, fired = 0;
    bool was_leader = *leader, lead = false;
    usher_err err = USHER_OK;

    *leader = false;
    if (*st == NULL && usher_store_open(cfg, st, errbuf, sizeof(errbuf)) != USHER_OK) {
        usher_log(USHER_LOG_WARNING, "maintenance: %s", errbuf);
        return;
    }
    err = usher_maint_lead(*st, &lead);
    if (err == USHER_OK && lead)
        err = usher_maint_rescue(*st, usher_maint_settle_ms(cfg), &rescued);
    if (err == USHER_OK && lead)
        err = usher_maint_prune(*st, &pruned);
    /*
     * A periodic that cannot fire (its queue not migrated yet, say) is
     * logged, not treated as a broken connection: that would make the
     * leader resign every round.
     */
    if (err == USHER_OK && lead &&
        usher_periodic_fire(*st, (int64_t)time(NULL), &fired) != USHER_OK)
        usher_log(USHER_LOG_WARNING, "maintenance: periodic: %s", usher_store_errstr(*st));
    if (err == USHER_OK && lead)
        retention_round(cfg, *st);
    if (err == USHER_OK && lead && !was_leader)
        usher_log(USHER_LOG_NOTICE, "maintenance: this supervisor is the leader now");
    if (rescued > 0 || pruned > 0 || fired > 0)
        usher_log(USHER_LOG_NOTICE, "maintenance: rescued=%zu pruned=%zu periodic_fired=%zu",
                  rescued, pruned, fired);
    if (err != USHER_OK) {
        usher_log(USHER_LOG_WARNING, "maintenance: %s: %s", usher_strerror(err),
                  usher_store_errstr(*st));
        usher_store_free(*st); /* also ends the session, so the lock is released */
        *st = NULL;
        return;
    }
    *leader = lead;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits interval_ms; false as soon as the supervisor's end is closed. */
static bool pause_round(int fd, int interval_ms)
{
    int64_t until = monotonic_ms() + interval_ms;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char junk[16];

    for (int64_t left = interval_ms; left > 0; left = until - monotonic_ms()) {
        int r = poll(&p, 1, (int)left);

        ssize_t got;

        if (r < 0 && errno != EINTR)
            return false;
        if (r <= 0)
            continue;
        got = read(fd, junk, sizeof(junk));
        if (got == 0 || (got < 0 && errno != EINTR))
            return false; /* EOF: the supervisor stops or is gone */
    }
    return true;
}

/* Tells the supervisor; false if it is gone. */
static bool report(int fd, bool leader)
{
    char byte = leader ? USHER_MAINT_LEADER : USHER_MAINT_NOT_LEADER;

    return send(fd, &byte, 1, MSG_NOSIGNAL) == 1;
}

static void prepare(int fd, pid_t parent)
{
    if (fd != 3 && dup2(fd, 3) < 0)
        _exit(1);
    /* The supervisor's connections, listeners and children's sockets are not ours to touch. */
    close_range(4, ~0U, 0);
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    prctl(PR_SET_NAME, "usher-maint");
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0); /* the supervisor died before PDEATHSIG was set */
}

void usher_maint_process_main(int fd, pid_t parent, const usher_config *cfg, int interval_ms)
{
    usher_store *st = NULL;
    bool leader = false, reported = false, alive = true;

    prepare(fd, parent);
    while (alive) {
        bool was_leader = leader;

        round_once(cfg, &st, &leader);
        if (!reported || leader != was_leader)
            alive = report(3, leader);
        reported = true;
        alive = alive && pause_round(3, interval_ms);
    }
    usher_store_free(st); /* ends the session: the lock goes to the next supervisor that asks */
    _exit(0);
}
