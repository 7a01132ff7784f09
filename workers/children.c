/*
 * Children live on one list. Each has its socket wrapped in a bufferevent
 * (results arrive as frames), a deadline timer armed while it runs a job,
 * and the job itself. A child's death is noticed twice, as EOF on the
 * socket and as SIGCHLD; only the reap acts on it, because only waitpid
 * tells how it died. Children above the target are closed when idle:
 * closing the socket is how a child is told to exit. A reload renews the
 * children: each one forked before it is stale, takes no new job, and is
 * closed once idle, while a new one (forked with the new configuration)
 * takes its place.
 *
 * A child may hold several jobs (depth): the first runs, the others wait
 * in its socket. Each waits in a slot of a page the child shares with the
 * supervisor (child_io.h), so that the supervisor can take it back. With
 * usher_children_adapt, the depth follows the jobs' service times
 * (engine/hold.h), a job is queued only in a child whose handler has run
 * for less than USHER_HOLD_HAND_BACK_US (the child stamps the start of
 * each run in the shared page), and a sweep, running while any child has
 * jobs queued, takes back the jobs queued behind a longer run and returns
 * them through the returned hook: a slow job never holds fast ones.
 */
#define _GNU_SOURCE /* close_range */
#include "children.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "child.h"
#include "fork.h"
#include "hold.h"
#include "log.h"
#include "wire.h"

#define DEPTH_MAX USHER_CHILD_SLOTS
#define SWEEP_US  (USHER_HOLD_HAND_BACK_US / 2)

/* A job a child holds, and the slot it waits in. */
typedef struct held_job {
    usher_job *job;
    uint32_t slot;
    uint64_t token;
} held_job;

typedef struct child {
    TAILQ_ENTRY(child) link;
    usher_children *owner;
    pid_t pid;
    struct bufferevent *bev;  /* NULL once the socket is closed (retiring) */
    struct event *deadline;   /* of jobs[0] */
    held_job jobs[DEPTH_MAX]; /* jobs[0] runs; the rest wait in the child's socket */
    size_t njobs;             /* 0 when idle */
    usher_child_slots *slots; /* shared with the child */
    uint64_t slots_used;      /* bit i: slot i holds one of jobs[] */
    bool stale;               /* forked before a reload: no new job, closed once idle */
    const char *kill_reason;  /* why the supervisor killed it, if it did */
    usher_outcome kill_outcome;
} child;

TAILQ_HEAD(child_list, child);

struct usher_children {
    struct event_base *base;
    const usher_config *cfg; /* what children see at their fork */
    usher_children_hooks hooks;
    struct child_list list;
    size_t target;
    size_t count;        /* children alive (including retiring ones) */
    size_t open;         /* children with an open socket (not retiring, not stale) */
    size_t busy;         /* jobs held by children */
    size_t stale_busy;   /* of which by stale children */
    size_t depth;        /* jobs a child may hold at once */
    bool adaptive;       /* depth and hand-back follow service times (usher_children_adapt) */
    usher_hold hold;     /* the window policy, when adaptive */
    uint64_t tokens;     /* the last token given out */
    struct event *sweep; /* hand-back, while any child has jobs queued */
};

static void child_read(struct bufferevent *bev, void *arg);
static void child_event(struct bufferevent *bev, short what, void *arg);
static void deadline_passed(evutil_socket_t fd, short what, void *arg);
static void sweep_due(evutil_socket_t fd, short what, void *arg);

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* In the new child: keep only its own socket, then serve jobs. */
static void become_child(int fd, pid_t parent, const usher_config *cfg, usher_child_slots *slots)
{
    if (fd != 3 && dup2(fd, 3) < 0)
        _exit(1);
    close_range(4, ~0U, 0);
    usher_child_main(3, parent, cfg, slots);
}

static void child_release(child *ch)
{
    if (ch->slots != NULL)
        munmap(ch->slots, sizeof(*ch->slots));
    free(ch);
}

static USHER_MUSTCHECK usher_err fork_child(usher_children *c)
{
    int sv[2];
    pid_t parent = getpid(), pid;
    child *ch = usher_calloc(1, sizeof(*ch));
    void *page =
        mmap(NULL, sizeof(*ch->slots), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    ch->slots = page != MAP_FAILED ? page : NULL; /* zeroed: every slot empty */
    if (ch->slots == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        child_release(ch);
        return USHER_ERR_IO;
    }
    pid = usher_fork();
    if (pid == 0) {
        close(sv[0]);
        become_child(sv[1], parent, c->cfg, ch->slots);
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        child_release(ch);
        return USHER_ERR_IO;
    }
    evutil_make_socket_nonblocking(sv[0]);
    ch->owner = c;
    ch->pid = pid;
    ch->bev = usher_need(bufferevent_socket_new(c->base, sv[0], BEV_OPT_CLOSE_ON_FREE));
    ch->deadline = usher_need(evtimer_new(c->base, deadline_passed, ch));
    bufferevent_setcb(ch->bev, child_read, NULL, child_event, ch);
    bufferevent_enable(ch->bev, EV_READ);
    c->open++;
    TAILQ_INSERT_TAIL(&c->list, ch, link);
    c->count++;
    return USHER_OK;
}

/* Closes the socket of an idle child: it exits and is reaped later. */
static void retire(usher_children *c, child *ch)
{
    if (ch->bev == NULL)
        return;
    bufferevent_free(ch->bev);
    ch->bev = NULL;
    if (!ch->stale)
        c->open--;
}

/* Brings the open children to the target: fork, or retire idle ones. */
static void converge(usher_children *c)
{
    child *ch, *next;

    while (c->open < c->target) {
        usher_err err = fork_child(c);

        if (err != USHER_OK) {
            usher_log(USHER_LOG_ERR, "cannot start a child: %s (%s)", usher_strerror(err),
                      strerror(errno));
            break;
        }
    }
    for (ch = TAILQ_FIRST(&c->list); ch != NULL; ch = next) {
        next = TAILQ_NEXT(ch, link);
        if (ch->njobs == 0 && (ch->stale || c->open > c->target))
            retire(c, ch);
    }
}

void usher_children_renew(usher_children *c)
{
    child *ch;

    TAILQ_FOREACH(ch, &c->list, link) {
        if (ch->bev == NULL || ch->stale)
            continue;
        ch->stale = true;
        c->open--;
        c->stale_busy += ch->njobs;
    }
    converge(c);
}

usher_err usher_children_new(struct event_base *base, const usher_config *cfg, size_t depth,
                             const usher_children_hooks *hooks, usher_children **out)
{
    usher_children *c = usher_calloc(1, sizeof(*c));

    *out = NULL;
    c->base = base;
    c->cfg = cfg;
    c->hooks = *hooks;
    c->depth = depth;
    if (c->depth < 1 || c->depth > DEPTH_MAX)
        c->depth = 1;
    TAILQ_INIT(&c->list);
    c->sweep = usher_need(evtimer_new(base, sweep_due, c));
    *out = c;
    return USHER_OK;
}

void usher_children_adapt(usher_children *c, size_t prefetch)
{
    c->adaptive = true;
    usher_hold_init(&c->hold, c->depth + prefetch);
}

size_t usher_children_window(const usher_children *c)
{
    return c->adaptive ? usher_hold_window(&c->hold) : c->depth;
}

/* Jobs one child may hold now. */
static size_t depth_now(const usher_children *c)
{
    size_t window = usher_children_window(c);

    return window < c->depth ? window : c->depth;
}

void usher_children_set_target(usher_children *c, size_t target)
{
    c->target = target;
    converge(c);
}

size_t usher_children_target(const usher_children *c)
{
    return c->target;
}

size_t usher_children_count(const usher_children *c)
{
    return c->count;
}

size_t usher_children_open(const usher_children *c)
{
    return c->open;
}

size_t usher_children_pids(const usher_children *c, pid_t *out, size_t max)
{
    size_t n = 0;
    const child *ch;

    TAILQ_FOREACH(ch, &c->list, link) {
        if (n == max)
            break;
        out[n++] = ch->pid;
    }
    return n;
}

size_t usher_children_busy(const usher_children *c)
{
    return c->busy;
}

size_t usher_children_idle(const usher_children *c)
{
    size_t held = c->busy - c->stale_busy; /* by the open children */
    size_t depth = depth_now(c);

    return c->open * depth > held ? c->open * depth - held : 0;
}

/* Starts the deadline of the child's first job. */
static void arm(child *ch)
{
    int ms = ch->jobs[0].job->timeout_ms;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    evtimer_add(ch->deadline, &tv);
}

/* Forgets jobs[i] (its slot is free again); the caller accounts for the job. */
static void drop(usher_children *c, child *ch, size_t i)
{
    ch->slots_used &= ~(1ull << ch->jobs[i].slot);
    memmove(ch->jobs + i, ch->jobs + i + 1, (ch->njobs - i - 1) * sizeof(ch->jobs[0]));
    ch->njobs--;
    c->busy--;
    if (ch->stale)
        c->stale_busy--;
}

/*
 * Hands the first job back through the finished hook; the next one
 * starts. run_us: how long its handler ran, as the child measured it (-1
 * for an outcome made up here).
 */
static void job_done(usher_children *c, child *ch, const usher_handler_result *r, int64_t run_us)
{
    usher_job *job = ch->jobs[0].job;

    if (c->adaptive && run_us >= 0)
        usher_hold_observe(&c->hold, run_us);
    drop(c, ch, 0);
    evtimer_del(ch->deadline);
    if (ch->njobs > 0)
        arm(ch);
    c->hooks.finished(job, r, c->hooks.arg);
}

/* Whether the child has been running one handler (or batch) for the hand-back time. */
static bool running_long(const child *ch, int64_t now)
{
    int64_t since = atomic_load(&ch->slots->running_since_us);

    return since > 0 && now - since >= USHER_HOLD_HAND_BACK_US;
}

/* Whether ch may take one more job now. */
static bool can_take(const usher_children *c, const child *ch, size_t depth, int64_t now)
{
    if (ch->bev == NULL || ch->stale || ch->njobs >= depth)
        return false;
    /* Adaptive: never queue behind a job that may be a slow one. */
    return !c->adaptive || ch->njobs == 0 || !running_long(ch, now);
}

static uint32_t free_slot(const child *ch)
{
    return (uint32_t)__builtin_ctzll(~ch->slots_used); /* njobs < 64: one is free */
}

static void sweep_soon(usher_children *c)
{
    struct timeval tv = { 0, SWEEP_US };

    if (c->adaptive && !evtimer_pending(c->sweep, NULL))
        evtimer_add(c->sweep, &tv);
}

usher_err usher_children_dispatch(usher_children *c, usher_job *job)
{
    usher_buf frame = { 0 };
    child *ch, *best = NULL;
    size_t depth = depth_now(c);
    int64_t now = now_us();
    held_job h = { .job = job };

    /* The open child holding the fewest jobs. */
    TAILQ_FOREACH(ch, &c->list, link) {
        if (can_take(c, ch, depth, now) && (best == NULL || ch->njobs < best->njobs))
            best = ch;
        if (best != NULL && best->njobs == 0)
            break;
    }
    if ((ch = best) == NULL)
        return USHER_ERR_STATE;
    h.slot = free_slot(ch);
    h.token = ++c->tokens;
    atomic_store(&ch->slots->slot[h.slot], h.token);
    job->trace.sent_us = now;
    usher_wire_put_job(&frame, job, &(usher_wire_ticket){ h.slot, h.token, job->trace });
    if (usher_buf_failed(&frame) || bufferevent_write(ch->bev, frame.data, frame.len) != 0) {
        atomic_store(&ch->slots->slot[h.slot], 0);
        usher_buf_release(&frame);
        return USHER_ERR_NOMEM;
    }
    usher_buf_release(&frame);
    ch->slots_used |= 1ull << h.slot;
    ch->jobs[ch->njobs++] = h;
    c->busy++;
    if (ch->njobs == 1) {
        arm(ch);
    } else {
        sweep_soon(c);
    }
    return USHER_OK;
}

/*
 * Takes back the jobs queued behind a head older than the hand-back
 * threshold, into out (room for c->busy jobs); returns how many, and
 * whether any child still has jobs queued.
 */
static size_t hand_back(usher_children *c, usher_job **out, bool *queued)
{
    int64_t now = now_us();
    child *ch;
    size_t n = 0;

    *queued = false;
    TAILQ_FOREACH(ch, &c->list, link) {
        if (ch->njobs > 1 && running_long(ch, now)) {
            for (size_t i = ch->njobs - 1; i >= 1; i--) {
                if (!usher_child_slot_revoke(ch->slots, ch->jobs[i].slot, ch->jobs[i].token))
                    continue; /* started: the child is past the head, its results are coming */
                out[n++] = ch->jobs[i].job;
                drop(c, ch, i);
            }
        }
        *queued = *queued || ch->njobs > 1;
    }
    return n;
}

static void sweep_due(evutil_socket_t fd, short what, void *arg)
{
    usher_children *c = arg;
    usher_job **back = usher_malloc((c->busy + 1) * sizeof(*back));
    bool queued;
    size_t n = hand_back(c, back, &queued);

    (void)fd;
    (void)what;
    if (queued)
        sweep_soon(c);
    /* Taken in reverse per child: give them back oldest first. */
    for (size_t i = 0, j = n; i < j--; i++) {
        usher_job *t = back[i];

        back[i] = back[j];
        back[j] = t;
    }
    if (n > 0)
        c->hooks.returned(back, n, c->hooks.arg);
    free(back);
}

size_t usher_children_running_ids(const usher_children *c, int64_t *ids, size_t max)
{
    const child *ch;
    size_t n = 0;

    TAILQ_FOREACH(ch, &c->list, link) {
        for (size_t i = 0; i < ch->njobs && n < max; i++)
            ids[n++] = ch->jobs[i].job->id;
    }
    return n;
}

static void kill_child(child *ch, const char *reason, usher_outcome outcome)
{
    if (ch->kill_reason == NULL) {
        ch->kill_reason = reason;
        ch->kill_outcome = outcome;
    }
    kill(ch->pid, SIGKILL);
}

void usher_children_kill_busy(usher_children *c, const char *reason)
{
    child *ch;

    TAILQ_FOREACH(ch, &c->list, link) {
        if (ch->njobs > 0)
            kill_child(ch, reason, USHER_OUTCOME_SNOOZE);
    }
}

static void deadline_passed(evutil_socket_t fd, short what, void *arg)
{
    child *ch = arg;

    (void)fd;
    (void)what;
    if (ch->njobs > 0)
        kill_child(ch, "timeout", USHER_OUTCOME_RETRY);
}

/* One frame from a child: the outcome of its job. */
static int read_frame(usher_children *c, child *ch, struct evbuffer *in)
{
    uint32_t len;
    unsigned char *body;
    usher_handler_result r;
    int64_t id, run_us;

    if (evbuffer_get_length(in) < sizeof(len) || evbuffer_copyout(in, &len, 4) != 4)
        return 0;
    if (len > USHER_WIRE_MAX || evbuffer_get_length(in) < sizeof(len) + len)
        return len > USHER_WIRE_MAX ? -1 : 0;
    evbuffer_drain(in, sizeof(len));
    body = evbuffer_pullup(in, len);
    if (body == NULL || usher_wire_get_result(body, len, &id, &r, &run_us) != 0 || ch->njobs == 0 ||
        ch->jobs[0].job->id != id) {
        evbuffer_drain(in, len);
        return -1;
    }
    evbuffer_drain(in, len);
    job_done(c, ch, &r, run_us);
    return 1;
}

static void child_read(struct bufferevent *bev, void *arg)
{
    child *ch = arg;
    usher_children *c = ch->owner;
    int r;

    while ((r = read_frame(c, ch, bufferevent_get_input(bev))) > 0)
        ;
    if (r < 0) {
        usher_log(USHER_LOG_ERR, "child=%d sent a malformed frame; killing it", (int)ch->pid);
        kill_child(ch, "protocol error", USHER_OUTCOME_RETRY);
        return;
    }
    converge(c);
    if (ch->bev != NULL && ch->njobs < c->depth)
        c->hooks.idle(c->hooks.arg);
}

static void child_event(struct bufferevent *bev, short what, void *arg)
{
    child *ch = arg;

    (void)bev;
    (void)what;
    /* EOF or error: the child is gone or going; the reap says how. */
    bufferevent_disable(ch->bev, EV_READ);
}

/* How a child died, as the error kept on its job. */
static void describe_death(const child *ch, int status, usher_handler_result *r)
{
    *r = (usher_handler_result){ .outcome = USHER_OUTCOME_RETRY, .delay_ms = -1 };
    if (ch->kill_reason != NULL && strcmp(ch->kill_reason, "timeout") == 0)
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "timeout: killed after %d ms",
                           ch->jobs[0].job->timeout_ms);
    else if (ch->kill_reason != NULL)
        usher_handler_fail(r, ch->kill_outcome, "%s", ch->kill_reason);
    else if (WIFSIGNALED(status))
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "worker crashed: signal %d (%s)",
                           WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        usher_handler_fail(r, USHER_OUTCOME_RETRY, "worker exited with status %d mid-job",
                           WEXITSTATUS(status));
    if (ch->kill_outcome == USHER_OUTCOME_SNOOZE && ch->kill_reason != NULL)
        r->delay_ms = 0;
}

/* jobs[i]'s slot: its token, with the child's STARTED and DONE marks. */
static uint64_t slot_of(const child *ch, size_t i)
{
    return atomic_load(&ch->slots->slot[ch->jobs[i].slot]);
}

/*
 * A dead child's last words: the results it wrote before it died (the
 * socket holds them until read), so that a job it finished is not blamed
 * for its death.
 */
static void read_last_results(usher_children *c, child *ch)
{
    struct evbuffer *in;

    if (ch->bev == NULL)
        return;
    in = bufferevent_get_input(ch->bev);
    /* A child that died with frames unread resets the socket: the first read says so, then data. */
    for (int resets = 0;;) {
        int r = evbuffer_read(in, bufferevent_getfd(ch->bev), 65536);

        if (r > 0 || (r < 0 && errno == ECONNRESET && resets++ < 2))
            continue;
        break;
    }
    while (ch->njobs > 0 && read_frame(c, ch, in) > 0)
        ;
}

/*
 * A job the child finished whose frame was lost gets the outcome kept in
 * its slot. The first job the child had taken and not finished is the one
 * it died running: it fails (an attempt spent). The others never started,
 * or were part of its batch: they go back without spending one.
 */
static void remove_child(usher_children *c, child *ch, int status)
{
    usher_handler_result r;
    bool blamed = false;

    read_last_results(c, ch);
    while (ch->njobs > 0) {
        uint64_t token = ch->jobs[0].token, v = slot_of(ch, 0);

        if (v == (token | USHER_SLOT_STARTED | USHER_SLOT_DONE)) {
            r = ch->slots->results[ch->jobs[0].slot];
        } else if (!blamed && v == (token | USHER_SLOT_STARTED)) {
            blamed = true;
            describe_death(ch, status, &r);
            usher_log(USHER_LOG_WARNING, "child=%d job=%lld lost: %s", (int)ch->pid,
                      (long long)ch->jobs[0].job->id, r.error);
        } else {
            r = (usher_handler_result){ .outcome = USHER_OUTCOME_SNOOZE, .delay_ms = 0 };
            snprintf(r.error, sizeof(r.error), "returned: its child died before it started");
        }
        job_done(c, ch, &r, -1);
    }
    TAILQ_REMOVE(&c->list, ch, link);
    c->count--;
    retire(c, ch);
    event_free(ch->deadline);
    child_release(ch);
}

void usher_children_reap(usher_children *c)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        child *ch;

        TAILQ_FOREACH(ch, &c->list, link) {
            if (ch->pid == pid)
                break;
        }
        if (ch != NULL)
            remove_child(c, ch, status);
        else if (c->hooks.exited != NULL)
            c->hooks.exited(pid, status, c->hooks.arg);
    }
    converge(c);
    if (usher_children_idle(c) > 0)
        c->hooks.idle(c->hooks.arg);
}

void usher_children_free(usher_children *c)
{
    child *ch;

    if (c == NULL)
        return;
    TAILQ_FOREACH(ch, &c->list, link) {
        kill_child(ch, "supervisor exiting", USHER_OUTCOME_SNOOZE);
    }
    c->target = 0;
    while (!TAILQ_EMPTY(&c->list)) {
        int status;

        ch = TAILQ_FIRST(&c->list);
        if (waitpid(ch->pid, &status, 0) < 0)
            status = 0;
        remove_child(c, ch, status);
    }
    event_free(c->sweep);
    free(c);
}
