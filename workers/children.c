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
 */
#define _GNU_SOURCE /* close_range */
#include "children.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "child.h"
#include "fork.h"
#include "log.h"
#include "wire.h"

#define DEPTH_MAX 64

typedef struct child {
    TAILQ_ENTRY(child) link;
    usher_children *owner;
    pid_t pid;
    struct bufferevent *bev;    /* NULL once the socket is closed (retiring) */
    struct event *deadline;     /* of jobs[0] */
    usher_job *jobs[DEPTH_MAX]; /* jobs[0] runs; the rest wait in the child's socket */
    size_t njobs;               /* 0 when idle */
    bool stale;                 /* forked before a reload: no new job, closed once idle */
    const char *kill_reason;    /* why the supervisor killed it, if it did */
    usher_outcome kill_outcome;
} child;

TAILQ_HEAD(child_list, child);

struct usher_children {
    struct event_base *base;
    const usher_config *cfg; /* what children see at their fork */
    usher_children_hooks hooks;
    struct child_list list;
    size_t target;
    size_t count;      /* children alive (including retiring ones) */
    size_t open;       /* children with an open socket (not retiring, not stale) */
    size_t busy;       /* jobs held by children */
    size_t stale_busy; /* of which by stale children */
    size_t depth;      /* jobs a child may hold at once */
};

static void child_read(struct bufferevent *bev, void *arg);
static void child_event(struct bufferevent *bev, short what, void *arg);
static void deadline_passed(evutil_socket_t fd, short what, void *arg);

/* In the new child: keep only its own socket, then serve jobs. */
static void become_child(int fd, pid_t parent, const usher_config *cfg)
{
    if (fd != 3 && dup2(fd, 3) < 0)
        _exit(1);
    close_range(4, ~0U, 0);
    usher_child_main(3, parent, cfg);
}

static USHER_MUSTCHECK usher_err fork_child(usher_children *c)
{
    int sv[2];
    pid_t parent = getpid(), pid;
    child *ch = usher_calloc(1, sizeof(*ch));

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        free(ch);
        return USHER_ERR_IO;
    }
    pid = usher_fork();
    if (pid == 0) {
        close(sv[0]);
        become_child(sv[1], parent, c->cfg);
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        free(ch);
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
    *out = c;
    return USHER_OK;
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

    return c->open * c->depth > held ? c->open * c->depth - held : 0;
}

/* Starts the deadline of the child's first job. */
static void arm(child *ch)
{
    int ms = ch->jobs[0]->timeout_ms;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    evtimer_add(ch->deadline, &tv);
}

/* Hands the first job back through the finished hook; the next one starts. */
static void job_done(usher_children *c, child *ch, const usher_handler_result *r)
{
    usher_job *job = ch->jobs[0];

    memmove(ch->jobs, ch->jobs + 1, (ch->njobs - 1) * sizeof(ch->jobs[0]));
    ch->njobs--;
    c->busy--;
    if (ch->stale)
        c->stale_busy--;
    evtimer_del(ch->deadline);
    if (ch->njobs > 0)
        arm(ch);
    c->hooks.finished(job, r, c->hooks.arg);
}

usher_err usher_children_dispatch(usher_children *c, usher_job *job)
{
    usher_buf frame = { 0 };
    child *ch, *best = NULL;

    /* The open child holding the fewest jobs. */
    TAILQ_FOREACH(ch, &c->list, link) {
        if (ch->bev != NULL && !ch->stale && ch->njobs < c->depth &&
            (best == NULL || ch->njobs < best->njobs))
            best = ch;
        if (best != NULL && best->njobs == 0)
            break;
    }
    if ((ch = best) == NULL)
        return USHER_ERR_STATE;
    usher_wire_put_job(&frame, job);
    if (usher_buf_failed(&frame) || bufferevent_write(ch->bev, frame.data, frame.len) != 0) {
        usher_buf_release(&frame);
        return USHER_ERR_NOMEM;
    }
    usher_buf_release(&frame);
    ch->jobs[ch->njobs++] = job;
    c->busy++;
    if (ch->njobs == 1)
        arm(ch);
    return USHER_OK;
}

size_t usher_children_running_ids(const usher_children *c, int64_t *ids, size_t max)
{
    const child *ch;
    size_t n = 0;

    TAILQ_FOREACH(ch, &c->list, link) {
        for (size_t i = 0; i < ch->njobs && n < max; i++)
            ids[n++] = ch->jobs[i]->id;
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
    int64_t id;

    if (evbuffer_get_length(in) < sizeof(len) || evbuffer_copyout(in, &len, 4) != 4)
        return 0;
    if (len > USHER_WIRE_MAX || evbuffer_get_length(in) < sizeof(len) + len)
        return len > USHER_WIRE_MAX ? -1 : 0;
    evbuffer_drain(in, sizeof(len));
    body = evbuffer_pullup(in, len);
    if (body == NULL || usher_wire_get_result(body, len, &id, &r) != 0 || ch->njobs == 0 ||
        ch->jobs[0]->id != id) {
        evbuffer_drain(in, len);
        return -1;
    }
    evbuffer_drain(in, len);
    job_done(c, ch, &r);
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
                           ch->jobs[0]->timeout_ms);
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

static void remove_child(usher_children *c, child *ch, int status)
{
    usher_handler_result r;

    if (ch->njobs > 0) {
        describe_death(ch, status, &r);
        usher_log(USHER_LOG_WARNING, "child=%d job=%lld lost: %s", (int)ch->pid,
                  (long long)ch->jobs[0]->id, r.error);
        job_done(c, ch, &r);
    }
    while (ch->njobs > 0) {
        /* Jobs that waited behind the lost one never started: no attempt spent. */
        r = (usher_handler_result){ .outcome = USHER_OUTCOME_SNOOZE, .delay_ms = 0 };
        snprintf(r.error, sizeof(r.error), "returned: its child died before it started");
        job_done(c, ch, &r);
    }
    TAILQ_REMOVE(&c->list, ch, link);
    c->count--;
    retire(c, ch);
    event_free(ch->deadline);
    free(ch);
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
    free(c);
}
