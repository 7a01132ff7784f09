/*
 * The event-driven connection. States: connecting (PQconnectPoll driven
 * by one-shot socket events), ready (a persistent read event; statements
 * go out one at a time from a FIFO), and down (a timer waits out the
 * backoff, then connecting again). Losing the connection fails every
 * queued statement with res NULL, so callers always hear back.
 *
 * Connecting is a round of attempts, one per host of the URL in order
 * (engine/pgconnect.h), each abandoned at its deadline (connect_timeout):
 * libpq enforces none in asynchronous mode, and a host whose link is cut
 * would otherwise hold the round for the kernel's SYN retries. A host that
 * ran out its deadline sits out the next rounds for SIT_OUT_MS (unless
 * every host does), so that after a failover the survivors are polled at
 * the backoff's pace rather than behind the dead host's timeout. A round
 * that finds nothing waits 100 ms, doubling to 1 s, jittered.
 */
#include "pgloop.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "log.h"
#include "pgconnect.h"
#include "sqlstate.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
#define SIT_OUT_MS     5000
#define PREPARED_MAX   64 /* statements with parameters prepared per connection */

typedef enum pg_state { PG_CONNECTING, PG_READY, PG_DOWN } pg_state;

typedef struct pg_query {
    struct pg_query *next;
    usher_pg_stmt stmt;
    usher_pg_result_fn done;
    void *arg;
    bool unprepared;                    /* preparing it failed: send it as it is */
    struct timespec queued_at, sent_at; /* CLOCK_MONOTONIC; sent_at zero until sent */
} pg_query;

struct usher_pgloop {
    struct event_base *base;
    usher_pg_attempts *attempts; /* the URL, host by host */
    usher_pgloop_hooks hooks;
    PGconn *conn;
    pg_state state;
    struct event *io;       /* socket readiness: one-shot while connecting, persistent when ready */
    struct event *flush;    /* one-shot write readiness while libpq has unsent data */
    struct event *retry;    /* reconnect timer */
    struct event *deadline; /* abandons the attempt in progress */
    int backoff_ms;
    size_t attempt;            /* of the round in progress */
    int64_t round_started_ms;  /* CLOCK_MONOTONIC */
    bool skip_sitting_out;     /* some host of this round does not sit out */
    int64_t *sit_out_until_ms; /* per host of the URL */
    char why[512];             /* what the round's attempts met */
    pg_query *head, *tail;
    bool sent;                    /* head is on the wire */
    PGresult *result;             /* head's result so far */
    bool preparing;               /* what is on the wire is the PREPARE of head */
    char *prepared[PREPARED_MAX]; /* statement i is named usher_pI on this connection */
    size_t nprepared;
};

static void start_connect(usher_pgloop *pg);
static void send_next(usher_pgloop *pg);
static void prepared(usher_pgloop *pg);

void usher_pg_stmt_release(usher_pg_stmt *s)
{
    for (int i = 0; s->params != NULL && i < s->nparams; i++)
        free(s->params[i]);
    free(s->params);
    free(s->sql);
    *s = (usher_pg_stmt){ 0 };
}

void usher_pg_stmt_copy(usher_pg_stmt *s, const char *sql, int nparams, const char *const *params)
{
    *s = (usher_pg_stmt){ .sql = usher_strdup(sql),
                          .params =
                              usher_calloc((size_t)(nparams > 0 ? nparams : 1), sizeof(char *)),
                          .nparams = nparams };
    for (int i = 0; i < nparams; i++) {
        if (params[i] != NULL)
            s->params[i] = usher_strdup(params[i]);
    }
}

static void query_free(pg_query *q)
{
    usher_pg_stmt_release(&q->stmt);
    free(q);
}

static pg_query *pop(usher_pgloop *pg)
{
    pg_query *q = pg->head;

    pg->head = q->next;
    if (pg->head == NULL)
        pg->tail = NULL;
    return q;
}

static void drop_events(usher_pgloop *pg)
{
    if (pg->io != NULL)
        event_free(pg->io);
    if (pg->flush != NULL)
        event_free(pg->flush);
    pg->io = pg->flush = NULL;
}

/* Fails every queued statement; callbacks may queue more, which fail too. */
static void fail_all(usher_pgloop *pg, const char *why)
{
    while (pg->head != NULL) {
        pg_query *q = pop(pg);

        q->done(NULL, why, q->arg);
        query_free(q);
    }
}

static void retry_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_connect(arg);
}

static void forget_prepared(usher_pgloop *pg)
{
    for (size_t i = 0; i < pg->nprepared; i++)
        free(pg->prepared[i]);
    pg->nprepared = 0;
    pg->preparing = false;
}

/* Between half the backoff and all of it, so that processes cut off together spread out. */
static int jittered(int ms)
{
    return ms / 2 + (int)randombytes_uniform((uint32_t)(ms - ms / 2) + 1);
}

/* The connection (or the round of attempts) is gone: fail what waits, retry later. */
static void go_down(usher_pgloop *pg, const char *why)
{
    int delay_ms = jittered(pg->backoff_ms);
    struct timeval tv = { .tv_sec = delay_ms / 1000, .tv_usec = delay_ms % 1000 * 1000 };

    drop_events(pg);
    evtimer_del(pg->deadline);
    PQclear(pg->result);
    pg->result = NULL;
    PQfinish(pg->conn);
    pg->conn = NULL;
    pg->state = PG_DOWN;
    pg->sent = false;
    forget_prepared(pg);
    usher_log(USHER_LOG_WARNING, "postgres connection lost: %s; retry in %d ms", why, delay_ms);
    fail_all(pg, why);
    if (pg->hooks.disconnected != NULL)
        pg->hooks.disconnected(why, pg->hooks.arg);
    if (evtimer_add(pg->retry, &tv) != 0)
        usher_log(USHER_LOG_ERR, "cannot arm the postgres reconnect timer");
    pg->backoff_ms = pg->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : pg->backoff_ms * 2;
}

static void connection_lost(usher_pgloop *pg, const char *what)
{
    char why[512];

    snprintf(why, sizeof(why), "%s: %s", what,
             pg->conn != NULL ? PQerrorMessage(pg->conn) : "no connection");
    why[strcspn(why, "\n")] = '\0';
    go_down(pg, why);
}

static void deliver_notifies(usher_pgloop *pg)
{
    PGnotify *note;

    while (pg->conn != NULL && (note = PQnotifies(pg->conn)) != NULL) {
        if (pg->hooks.notified != NULL)
            pg->hooks.notified(note->relname, pg->hooks.arg);
        PQfreemem(note);
    }
}

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* The head statement finished: hand its result over and send the next one. */
static void finish_head(usher_pgloop *pg)
{
    pg_query *q = pop(pg);
    PGresult *res = pg->result;
    ExecStatusType status = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    const char *msg = status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK
                          ? ""
                          : (res != NULL ? PQresultErrorMessage(res) : "no result");

    pg->result = NULL;
    pg->sent = false;
    if (pg->hooks.timed != NULL) {
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        pg->hooks.timed(seconds_between(&q->queued_at, &q->sent_at),
                        seconds_between(&q->sent_at, &now), pg->hooks.arg);
    }
    q->done(res, msg, q->arg);
    PQclear(res);
    query_free(q);
}

/*
 * The statement on the wire failed with a SQLSTATE that says this
 * connection is no good (engine/sqlstate.h: the server shutting down, or
 * a standby now): it is dropped like a broken one, its callers hear res
 * NULL, and the reconnect finds the primary (target_session_attrs).
 */
static bool server_gave_up(usher_pgloop *pg)
{
    const char *state =
        pg->result != NULL ? PQresultErrorField(pg->result, PG_DIAG_SQLSTATE) : NULL;
    char what[32];

    if (!usher_sqlstate_conn_lost(state))
        return false;
    snprintf(what, sizeof(what), "SQLSTATE %s", state);
    connection_lost(pg, what);
    return true;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    usher_pgloop *pg = arg;

    (void)fd;
    (void)what;
    if (PQconsumeInput(pg->conn) == 0) {
        connection_lost(pg, "read");
        return;
    }
    while (pg->state == PG_READY && pg->sent && !PQisBusy(pg->conn)) {
        PGresult *res = PQgetResult(pg->conn);

        if (res != NULL) {
            PQclear(pg->result); /* keep the last result of a multi-result statement */
            pg->result = res;
            continue;
        }
        if (server_gave_up(pg))
            return;
        if (pg->preparing)
            prepared(pg);
        else
            finish_head(pg);
        send_next(pg);
    }
    deliver_notifies(pg);
}

static void flush_out(usher_pgloop *pg);

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_out(arg);
}

static void flush_out(usher_pgloop *pg)
{
    int r = PQflush(pg->conn);

    if (r < 0)
        connection_lost(pg, "write");
    else if (r == 1)
        event_add(pg->flush, NULL);
}

/* The PREPARE of head is done: remember it, or send head unprepared. */
static void prepared(usher_pgloop *pg)
{
    ExecStatusType status = pg->result != NULL ? PQresultStatus(pg->result) : PGRES_FATAL_ERROR;

    PQclear(pg->result);
    pg->result = NULL;
    pg->sent = false;
    pg->preparing = false;
    if (status == PGRES_COMMAND_OK)
        pg->prepared[pg->nprepared++] = usher_strdup(pg->head->stmt.sql);
    else
        pg->head->unprepared = true;
}

/* The index of sql among the prepared statements, or -1. */
static int find_prepared(const usher_pgloop *pg, const char *sql)
{
    for (size_t i = 0; i < pg->nprepared; i++) {
        if (strcmp(pg->prepared[i], sql) == 0)
            return (int)i;
    }
    return -1;
}

/*
 * Sends q: prepared when it has parameters (PREPARE first if this
 * connection has not seen its text, the statement itself after that).
 */
static int send_query(usher_pgloop *pg, pg_query *q)
{
    const usher_pg_stmt *st = &q->stmt;
    const char *const *params = (const char *const *)st->params;
    int at = st->nparams > 0 && !q->unprepared ? find_prepared(pg, st->sql) : -1;
    char name[32];

    if (at < 0 && st->nparams > 0 && !q->unprepared && pg->nprepared < PREPARED_MAX) {
        snprintf(name, sizeof(name), "usher_p%zu", pg->nprepared);
        pg->preparing = true;
        return PQsendPrepare(pg->conn, name, st->sql, st->nparams, NULL);
    }
    if (at < 0)
        return PQsendQueryParams(pg->conn, st->sql, st->nparams, NULL, params, NULL, NULL, 0);
    snprintf(name, sizeof(name), "usher_p%d", at);
    return PQsendQueryPrepared(pg->conn, name, st->nparams, params, NULL, NULL, 0);
}

static void send_next(usher_pgloop *pg)
{
    pg_query *q = pg->head;

    if (pg->state != PG_READY || pg->sent || q == NULL)
        return;
    if (q->sent_at.tv_sec == 0 && q->sent_at.tv_nsec == 0)
        clock_gettime(CLOCK_MONOTONIC, &q->sent_at); /* before its PREPARE, if any */
    if (!send_query(pg, q)) {
        connection_lost(pg, "send");
        return;
    }
    pg->sent = true;
    flush_out(pg);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t attempt_host(const usher_pgloop *pg)
{
    return usher_pg_attempts_host_index(pg->attempts, pg->attempt);
}

static void became_ready(usher_pgloop *pg)
{
    evutil_socket_t fd = PQsocket(pg->conn);

    drop_events(pg);
    evtimer_del(pg->deadline);
    pg->sit_out_until_ms[attempt_host(pg)] = 0;
    pg->io = usher_need(event_new(pg->base, fd, EV_READ | EV_PERSIST, on_readable, pg));
    pg->flush = usher_need(event_new(pg->base, fd, EV_WRITE, on_writable, pg));
    if (event_add(pg->io, NULL) != 0 || PQsetnonblocking(pg->conn, 1) != 0) {
        connection_lost(pg, "event setup");
        return;
    }
    pg->state = PG_READY;
    pg->backoff_ms = BACKOFF_MIN_MS;
    usher_log(USHER_LOG_INFO, "postgres connected host=%s port=%s", PQhost(pg->conn),
              PQport(pg->conn));
    if (pg->hooks.connected != NULL)
        pg->hooks.connected(pg, pg->hooks.arg);
    send_next(pg);
}

static void try_attempt(usher_pgloop *pg);

/*
 * Attempt pg->attempt failed: what says why, or NULL when libpq's message
 * does. Notes it for the round's message and moves on to the next host.
 */
static void attempt_failed(usher_pgloop *pg, const char *what)
{
    const usher_pg_attempts *a = pg->attempts;
    const char *host = usher_pg_attempts_param(a, pg->attempt, "host");
    const char *port = usher_pg_attempts_param(a, pg->attempt, "port");
    const char *detail = pg->conn != NULL ? PQerrorMessage(pg->conn) : "out of memory";
    size_t used = strlen(pg->why);

    if (what != NULL || *detail == '\0')
        detail = what != NULL ? what : "failed";
    snprintf(pg->why + used, sizeof(pg->why) - used, "%s%s:%s: %.*s", used > 0 ? "; " : "",
             host != NULL ? host : "", port != NULL ? port : "", (int)strcspn(detail, "\n"),
             detail);
    usher_log(USHER_LOG_DEBUG, "postgres attempt %zu failed: %s", pg->attempt, detail);
    drop_events(pg);
    evtimer_del(pg->deadline);
    PQfinish(pg->conn);
    pg->conn = NULL;
    pg->attempt++;
    try_attempt(pg);
}

static void poll_connect(evutil_socket_t fd, short what, void *arg);

static void wait_connect(usher_pgloop *pg, short what)
{
    drop_events(pg);
    pg->io = usher_need(event_new(pg->base, PQsocket(pg->conn), what, poll_connect, pg));
    if (event_add(pg->io, NULL) != 0)
        attempt_failed(pg, "event setup failed");
}

static void poll_connect(evutil_socket_t fd, short what, void *arg)
{
    usher_pgloop *pg = arg;

    (void)fd;
    (void)what;
    switch (PQconnectPoll(pg->conn)) {
    case PGRES_POLLING_READING:
        wait_connect(pg, EV_READ);
        break;
    case PGRES_POLLING_WRITING:
        wait_connect(pg, EV_WRITE);
        break;
    case PGRES_POLLING_OK:
        became_ready(pg);
        break;
    case PGRES_POLLING_FAILED:
    case PGRES_POLLING_ACTIVE:
        pg->sit_out_until_ms[attempt_host(pg)] = 0; /* it answered */
        attempt_failed(pg, NULL);
        break;
    }
}

/* The attempt ran out its connect_timeout: the host sits out the next rounds. */
static void deadline_due(evutil_socket_t fd, short what, void *arg)
{
    usher_pgloop *pg = arg;
    char what_s[48];

    (void)fd;
    (void)what;
    snprintf(what_s, sizeof(what_s), "no answer within %d ms",
             usher_pg_attempts_timeout_ms(pg->attempts));
    pg->sit_out_until_ms[attempt_host(pg)] = now_ms() + SIT_OUT_MS;
    attempt_failed(pg, what_s);
}

/* Server notices ("terminating connection...") go to the log, not to stderr raw. */
static void route_notice(void *arg, const char *message)
{
    (void)arg;
    usher_log(USHER_LOG_INFO, "postgres: %.*s", (int)strcspn(message, "\n"), message);
}

static bool sits_out(const usher_pgloop *pg, size_t i)
{
    return pg->sit_out_until_ms[usher_pg_attempts_host_index(pg->attempts, i)] >
           pg->round_started_ms;
}

/* Starts pg->attempt, or the next one that does not sit out; the round fails past the last. */
static void try_attempt(usher_pgloop *pg)
{
    size_t n = usher_pg_attempts_count(pg->attempts);
    int timeout_ms = usher_pg_attempts_timeout_ms(pg->attempts);
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000 };

    while (pg->attempt < n && pg->skip_sitting_out && sits_out(pg, pg->attempt))
        pg->attempt++;
    if (pg->attempt >= n) {
        char why[sizeof(pg->why) + 16];

        snprintf(why, sizeof(why), "connect: %s", pg->why[0] != '\0' ? pg->why : "no host");
        go_down(pg, why);
        return;
    }
    pg->conn = usher_pg_attempts_start(pg->attempts, pg->attempt);
    if (pg->conn == NULL || PQstatus(pg->conn) == CONNECTION_BAD) {
        attempt_failed(pg, NULL);
        return;
    }
    PQsetNoticeProcessor(pg->conn, route_notice, NULL);
    if (timeout_ms > 0 && evtimer_add(pg->deadline, &tv) != 0)
        usher_log(USHER_LOG_ERR, "cannot arm the postgres connect deadline");
    wait_connect(pg, EV_WRITE);
}

static void start_connect(usher_pgloop *pg)
{
    size_t n = usher_pg_attempts_count(pg->attempts);

    pg->state = PG_CONNECTING;
    pg->attempt = 0;
    pg->why[0] = '\0';
    pg->round_started_ms = now_ms();
    pg->skip_sitting_out = false;
    for (size_t i = 0; i < n; i++)
        pg->skip_sitting_out |= !sits_out(pg, i);
    try_attempt(pg);
}

usher_err usher_pgloop_new(struct event_base *base, const char *conninfo,
                           const usher_pgloop_hooks *hooks, usher_pgloop **out)
{
    usher_pgloop *pg;
    usher_pg_attempts *attempts;
    char errbuf[256];

    *out = NULL;
    if (usher_pg_attempts_new(conninfo, &attempts, errbuf, sizeof(errbuf)) != USHER_OK) {
        usher_log(USHER_LOG_ERR, "%s", errbuf);
        return USHER_ERR_CONFIG;
    }
    pg = usher_calloc(1, sizeof(*pg));
    pg->base = base;
    pg->hooks = *hooks;
    pg->backoff_ms = BACKOFF_MIN_MS;
    pg->attempts = attempts;
    pg->sit_out_until_ms =
        usher_calloc(usher_pg_attempts_count(attempts), sizeof(*pg->sit_out_until_ms));
    pg->retry = usher_need(evtimer_new(base, retry_due, pg));
    pg->deadline = usher_need(evtimer_new(base, deadline_due, pg));
    start_connect(pg);
    *out = pg;
    return USHER_OK;
}

void usher_pgloop_free(usher_pgloop *pg)
{
    if (pg == NULL)
        return;
    pg->state = PG_DOWN;
    fail_all(pg, "connection closed");
    drop_events(pg);
    if (pg->retry != NULL)
        event_free(pg->retry);
    if (pg->deadline != NULL)
        event_free(pg->deadline);
    PQclear(pg->result);
    PQfinish(pg->conn);
    forget_prepared(pg);
    usher_pg_attempts_free(pg->attempts);
    free(pg->sit_out_until_ms);
    free(pg);
}

bool usher_pgloop_connected(const usher_pgloop *pg)
{
    return pg->state == PG_READY;
}

int usher_pgloop_pending(const usher_pgloop *pg)
{
    int n = 0;

    for (const pg_query *q = pg->head; q != NULL; q = q->next)
        n++;
    return n;
}

static pg_query *query_new(const char *sql, int nparams, const char *const *params)
{
    pg_query *q = usher_calloc(1, sizeof(*q));

    usher_pg_stmt_copy(&q->stmt, sql, nparams, params);
    return q;
}

usher_err usher_pgloop_query(usher_pgloop *pg, const char *sql, int nparams,
                             const char *const *params, usher_pg_result_fn done, void *arg)
{
    pg_query *q;

    if (pg->state != PG_READY)
        return USHER_ERR_DB;
    q = query_new(sql, nparams, params);
    q->done = done;
    q->arg = arg;
    clock_gettime(CLOCK_MONOTONIC, &q->queued_at);
    if (pg->tail != NULL)
        pg->tail->next = q;
    else
        pg->head = q;
    pg->tail = q;
    send_next(pg);
    return USHER_OK;
}
