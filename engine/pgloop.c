/*
 * The event-driven connection. States: connecting (PQconnectPoll driven
 * by one-shot socket events), ready (a persistent read event; statements
 * go out one at a time from a FIFO), and down (a timer waits out the
 * backoff, then connecting again). Losing the connection fails every
 * queued statement with res NULL, so callers always hear back.
 */
#include "pgloop.h"

#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "sqlstate.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
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
    char *conninfo;
    usher_pgloop_hooks hooks;
    PGconn *conn;
    pg_state state;
    struct event *io;    /* socket readiness: one-shot while connecting, persistent when ready */
    struct event *flush; /* one-shot write readiness while libpq has unsent data */
    struct event *retry; /* reconnect timer */
    int backoff_ms;
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

static void connection_lost(usher_pgloop *pg, const char *what)
{
    char why[512];
    struct timeval tv;

    snprintf(why, sizeof(why), "%s: %s", what,
             pg->conn != NULL ? PQerrorMessage(pg->conn) : "no connection");
    why[strcspn(why, "\n")] = '\0';
    drop_events(pg);
    PQclear(pg->result);
    pg->result = NULL;
    PQfinish(pg->conn);
    pg->conn = NULL;
    pg->state = PG_DOWN;
    pg->sent = false;
    forget_prepared(pg);
    usher_log(USHER_LOG_WARNING, "postgres connection lost: %s; retry in %d ms", why,
              pg->backoff_ms);
    fail_all(pg, why);
    if (pg->hooks.disconnected != NULL)
        pg->hooks.disconnected(why, pg->hooks.arg);
    tv.tv_sec = pg->backoff_ms / 1000;
    tv.tv_usec = (pg->backoff_ms % 1000) * 1000;
    evtimer_add(pg->retry, &tv);
    pg->backoff_ms = pg->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : pg->backoff_ms * 2;
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

static void became_ready(usher_pgloop *pg)
{
    evutil_socket_t fd = PQsocket(pg->conn);

    drop_events(pg);
    pg->io = usher_need(event_new(pg->base, fd, EV_READ | EV_PERSIST, on_readable, pg));
    pg->flush = usher_need(event_new(pg->base, fd, EV_WRITE, on_writable, pg));
    if (event_add(pg->io, NULL) != 0 || PQsetnonblocking(pg->conn, 1) != 0) {
        connection_lost(pg, "event setup");
        return;
    }
    pg->state = PG_READY;
    pg->backoff_ms = BACKOFF_MIN_MS;
    usher_log(USHER_LOG_INFO, "postgres connected");
    if (pg->hooks.connected != NULL)
        pg->hooks.connected(pg, pg->hooks.arg);
    send_next(pg);
}

static void poll_connect(evutil_socket_t fd, short what, void *arg);

static void wait_connect(usher_pgloop *pg, short what)
{
    drop_events(pg);
    pg->io = usher_need(event_new(pg->base, PQsocket(pg->conn), what, poll_connect, pg));
    if (event_add(pg->io, NULL) != 0)
        connection_lost(pg, "event setup");
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
        connection_lost(pg, "connect");
        break;
    }
}

/* Server notices ("terminating connection...") go to the log, not to stderr raw. */
static void route_notice(void *arg, const char *message)
{
    (void)arg;
    usher_log(USHER_LOG_INFO, "postgres: %.*s", (int)strcspn(message, "\n"), message);
}

static void start_connect(usher_pgloop *pg)
{
    pg->state = PG_CONNECTING;
    pg->conn = PQconnectStart(pg->conninfo);
    if (pg->conn == NULL || PQstatus(pg->conn) == CONNECTION_BAD) {
        connection_lost(pg, "connect");
        return;
    }
    PQsetNoticeProcessor(pg->conn, route_notice, NULL);
    wait_connect(pg, EV_WRITE);
}

usher_err usher_pgloop_new(struct event_base *base, const char *conninfo,
                           const usher_pgloop_hooks *hooks, usher_pgloop **out)
{
    usher_pgloop *pg = usher_calloc(1, sizeof(*pg));

    *out = NULL;
    pg->base = base;
    pg->hooks = *hooks;
    pg->backoff_ms = BACKOFF_MIN_MS;
    pg->conninfo = usher_strdup(conninfo);
    pg->retry = usher_need(evtimer_new(base, retry_due, pg));
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
    PQclear(pg->result);
    PQfinish(pg->conn);
    forget_prepared(pg);
    free(pg->conninfo);
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
