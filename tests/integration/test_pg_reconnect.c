/*
 * How fast a process finds its database again (engine/pgconnect.h,
 * engine/pgloop.c, /readyz). A "host that does not answer" is a loopback
 * listener with a backlog of 0 whose accept queue is full: Linux drops the
 * SYNs that come after (tcp_abort_on_overflow 0), as it does for a peer
 * whose link is cut, so a connect waits for the kernel's SYN retries
 * (about two minutes) unless the client gives up first. It comes first in
 * a multi-host URL, before private PostgreSQL servers (tests/support/testpg.h):
 * - the event-driven connection (pgloop) and the blocking one
 *   (usher_pg_connectdb) pass it over at connect_timeout (2 s by default);
 * - after the primary is killed and its standby promoted, pgloops behind
 *   such a URL are connected again within about a second of the promotion;
 * - /readyz answers 503 within its probe's deadline when the server
 *   stops answering on connections that stay open (SIGSTOP).
 * The figures are printed.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pgconnect.h"
#include "pgloop.h"
#include "testdb.h"
#include "testhttp.h"
#include "testpg.h"
#include "testproc.h"

#define DEADLINE_MS 60000
#define LOOPS       8 /* pgloops behind one URL, as a worker host's or an API loop's */

static char root[96];
static testpg primary, standby;
static testapi server;

/* ---- a host that does not answer ---- */

typedef struct blackhole {
    int listener;
    int clients[8];
    int nclients;
    int port;
} blackhole;

static blackhole hole = { .listener = -1 };

/* A non-blocking connect to port; true when it completed within wait_ms. */
static bool connect_within(int fd, int port, int wait_ms)
{
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };

    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0)
        return true;
    cr_assert_eq(errno, EINPROGRESS, "connect: %s", strerror(errno));
    return poll(&pfd, 1, wait_ms) == 1;
}

/* Listens with backlog 0 and fills the accept queue until a SYN goes unanswered. */
static void blackhole_open(blackhole *b)
{
    struct sockaddr_in at = { .sin_family = AF_INET };
    socklen_t len = sizeof(at);

    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    b->listener = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(b->listener, 0);
    cr_assert_eq(bind(b->listener, (struct sockaddr *)&at, sizeof(at)), 0);
    cr_assert_eq(listen(b->listener, 0), 0);
    cr_assert_eq(getsockname(b->listener, (struct sockaddr *)&at, &len), 0);
    b->port = ntohs(at.sin_port);
    for (b->nclients = 0; b->nclients < 8;) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        cr_assert_geq(fd, 0);
        b->clients[b->nclients++] = fd;
        if (!connect_within(fd, b->port, 500))
            return; /* this SYN was dropped: so will the next ones be */
    }
    cr_assert_fail("8 connections to a backlog of 0 all completed: SYNs are not dropped");
}

static void blackhole_close(blackhole *b)
{
    for (int i = 0; i < b->nclients; i++)
        close(b->clients[i]);
    if (b->listener >= 0)
        close(b->listener);
    *b = (blackhole){ .listener = -1 };
}

/* ---- pgloops on a loop thread ---- */

typedef struct slot {
    struct loops *loops;
    usher_pgloop *pg;
    atomic_bool up;
    atomic_llong connected_ms; /* the last connect (testdb_now_ms) */
    atomic_int connects;
    atomic_llong answer; /* the last probe's inet_server_port(), 0 before */
} slot;

typedef struct loops {
    struct event_base *base;
    struct event *tick;
    slot slots[LOOPS];
    int n;
    atomic_bool stop;
    pthread_t thread;
} loops;

static void on_port(PGresult *res, const char *errmsg, void *arg)
{
    slot *s = arg;

    (void)errmsg;
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        atomic_store(&s->answer, atoll(PQgetvalue(res, 0, 0)));
}

static void on_connected(usher_pgloop *pg, void *arg)
{
    slot *s = arg;

    atomic_store(&s->connected_ms, testdb_now_ms());
    atomic_store(&s->up, true);
    atomic_fetch_add(&s->connects, 1);
    if (usher_pgloop_query(pg, "SELECT inet_server_port()", 0, NULL, on_port, s) != USHER_OK)
        atomic_store(&s->answer, -1);
}

static void on_disconnected(const char *why, void *arg)
{
    slot *s = arg;

    (void)why;
    atomic_store(&s->up, false);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    loops *l = arg;

    (void)fd;
    (void)what;
    if (atomic_load(&l->stop))
        event_base_loopbreak(l->base);
}

static void *run_loops(void *arg)
{
    loops *l = arg;

    event_base_dispatch(l->base);
    return NULL;
}

/* n pgloops on url, their loop running on a thread of its own. */
static void loops_start(loops *l, int n, const char *url)
{
    struct timeval every = { 0, 10000 };

    l->base = event_base_new();
    cr_assert_not_null(l->base);
    l->n = n;
    for (int i = 0; i < n; i++) {
        slot *s = &l->slots[i];
        usher_pgloop_hooks hooks = { .connected = on_connected,
                                     .disconnected = on_disconnected,
                                     .arg = s };

        s->loops = l;
        cr_assert_eq(usher_pgloop_new(l->base, url, &hooks, &s->pg), USHER_OK);
    }
    l->tick = event_new(l->base, -1, EV_PERSIST, tick, l);
    cr_assert_not_null(l->tick);
    cr_assert_eq(event_add(l->tick, &every), 0);
    cr_assert_eq(pthread_create(&l->thread, NULL, run_loops, l), 0);
}

static void loops_stop(loops *l)
{
    if (l->base == NULL)
        return;
    atomic_store(&l->stop, true);
    cr_assert_eq(pthread_join(l->thread, NULL), 0);
    for (int i = 0; i < l->n; i++)
        usher_pgloop_free(l->slots[i].pg);
    event_free(l->tick);
    event_base_free(l->base);
    memset(l, 0, sizeof(*l));
}

static int count_up(loops *l)
{
    int n = 0;

    for (int i = 0; i < l->n; i++)
        n += atomic_load(&l->slots[i].up);
    return n;
}

static bool all_up(void *arg)
{
    return count_up(arg) == ((loops *)arg)->n;
}

static bool none_up(void *arg)
{
    return count_up(arg) == 0;
}

static bool all_answered(void *arg)
{
    loops *l = arg;

    for (int i = 0; i < l->n; i++) {
        if (atomic_load(&l->slots[i].answer) == 0)
            return false;
    }
    return true;
}

static loops pgloops;

/* Sends sig to the server's postmaster and every backend (its children); false without one. */
static bool signal_server(const testpg *pg, int sig)
{
    pid_t pm = testpg_postmaster(pg), children[256];
    size_t n;

    if (pm <= 0 || kill(pm, sig) != 0)
        return false;
    n = testproc_children(pm, children, 256);
    for (size_t i = 0; i < n; i++)
        (void)kill(children[i], sig); /* one may have exited meanwhile */
    return true;
}

static void stop_all(void)
{
    testpg *servers[] = { &primary, &standby };

    loops_stop(&pgloops);
    (void)signal_server(&primary, SIGCONT); /* the /readyz test stops it */
    if (server.pid > 0)
        testapi_stop(&server);
    server.pid = 0;
    testpg_cleanup(root, servers, 2);
    blackhole_close(&hole);
}

static int compare_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return (x > y) - (x < y);
}

/* ---- the tests ---- */

Test(pg_reconnect, a_host_that_does_not_answer_is_passed_over_at_connect_timeout, .fini = stop_all,
     .timeout = 300)
{
    char url[300];
    long long started, took_async, took_blocking;
    PGconn *conn;

    testpg_root(root, "reconnect-hole");
    testpg_primary(&primary, root, "primary", testpg_port(0));
    blackhole_open(&hole);
    snprintf(url, sizeof(url),
             "postgresql://postgres@127.0.0.1:%d,127.0.0.1:%d/usher"
             "?target_session_attrs=read-write",
             hole.port, primary.port);

    started = testdb_now_ms();
    loops_start(&pgloops, 1, url);
    cr_assert(testproc_wait_for(all_answered, &pgloops, DEADLINE_MS),
              "the pgloop did not reach the primary behind the blackhole in %d ms", DEADLINE_MS);
    took_async = atomic_load(&pgloops.slots[0].connected_ms) - started;
    cr_assert_eq(atomic_load(&pgloops.slots[0].answer), primary.port);
    loops_stop(&pgloops);

    started = testdb_now_ms();
    conn = usher_pg_connectdb(url);
    took_blocking = testdb_now_ms() - started;
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
    cr_assert_eq(atoi(PQport(conn)), primary.port);
    PQfinish(conn);

    fprintf(stderr,
            "pg_reconnect: blackholed first host, connect_timeout unset (2 s):"
            " pgloop connected in %lld ms, blocking connect in %lld ms\n",
            took_async, took_blocking);
    /* It did wait for the first host (so the test saw a blackhole), and no longer. */
    cr_assert_geq(took_async, 1900, "connected in %lld ms: the first host answered?", took_async);
    cr_assert_lt(took_async, 2000 + 1500, "pgloop took %lld ms", took_async);
    cr_assert_lt(took_blocking, 2000 + 1500, "the blocking connect took %lld ms", took_blocking);

    /* connect_timeout in the URL is what the deadline follows. */
    snprintf(url, sizeof(url),
             "postgresql://postgres@127.0.0.1:%d,127.0.0.1:%d/usher"
             "?target_session_attrs=read-write&connect_timeout=3",
             hole.port, primary.port);
    started = testdb_now_ms();
    loops_start(&pgloops, 1, url);
    cr_assert(testproc_wait_for(all_answered, &pgloops, DEADLINE_MS), "no connection");
    took_async = atomic_load(&pgloops.slots[0].connected_ms) - started;
    fprintf(stderr, "pg_reconnect: connect_timeout=3: pgloop connected in %lld ms\n", took_async);
    cr_assert_geq(took_async, 2900, "connected in %lld ms", took_async);
    cr_assert_lt(took_async, 3000 + 1500, "pgloop took %lld ms", took_async);
}

Test(pg_reconnect, pgloops_find_a_promoted_standby_within_about_a_second, .fini = stop_all,
     .timeout = 600)
{
    char url[300];
    long long promoting_at, promoted_at, after_issue[LOOPS], after_done[LOOPS];

    testpg_root(root, "reconnect-failover");
    testpg_primary(&primary, root, "primary", testpg_port(1));
    testpg_standby(&standby, &primary, root, "standby1", testpg_port(2));
    blackhole_open(&hole);
    /* The dead-link host first, the standby next (libpq-style order), the primary last. */
    snprintf(url, sizeof(url),
             "postgresql://postgres@127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/usher"
             "?target_session_attrs=read-write",
             hole.port, standby.port, primary.port);
    loops_start(&pgloops, LOOPS, url);
    cr_assert(testproc_wait_for(all_answered, &pgloops, DEADLINE_MS), "not all connected");
    for (int i = 0; i < LOOPS; i++)
        cr_assert_eq(atomic_load(&pgloops.slots[i].answer), primary.port);

    testpg_kill9(&primary);
    cr_assert(testproc_wait_for(none_up, &pgloops, DEADLINE_MS),
              "%d pgloops still think they are connected", count_up(&pgloops));
    for (int i = 0; i < LOOPS; i++)
        atomic_store(&pgloops.slots[i].answer, 0);
    promoting_at = testdb_now_ms();
    testpg_promote(&standby);
    promoted_at = testdb_now_ms();
    cr_assert(testproc_wait_for(all_up, &pgloops, DEADLINE_MS), "only %d of %d pgloops reconnected",
              count_up(&pgloops), LOOPS);
    cr_assert(testproc_wait_for(all_answered, &pgloops, DEADLINE_MS), "no answer");
    for (int i = 0; i < LOOPS; i++) {
        long long at = atomic_load(&pgloops.slots[i].connected_ms);

        cr_assert_eq(atomic_load(&pgloops.slots[i].answer), standby.port);
        cr_assert_eq(atomic_load(&pgloops.slots[i].connects), 2, "pgloop %d connected %d times", i,
                     atomic_load(&pgloops.slots[i].connects));
        after_issue[i] = at - promoting_at;
        after_done[i] = at > promoted_at ? at - promoted_at : 0;
    }
    qsort(after_issue, LOOPS, sizeof(after_issue[0]), compare_ll);
    qsort(after_done, LOOPS, sizeof(after_done[0]), compare_ll);
    fprintf(stderr,
            "pg_reconnect: %d pgloops behind a blackholed host; pg_ctl promote took %lld ms;"
            " reconnected after the promotion was issued: median %lld ms, max %lld ms;"
            " after it completed: median %lld ms, max %lld ms\n",
            LOOPS, promoted_at - promoting_at, after_issue[LOOPS / 2], after_issue[LOOPS - 1],
            after_done[LOOPS / 2], after_done[LOOPS - 1]);
    /* Backoff at most 1 s (jittered), and a blackholed host's 2 s at worst. */
    cr_assert_lt(after_done[LOOPS - 1], 3500, "a pgloop took %lld ms after the promotion",
                 after_done[LOOPS - 1]);
}

static long readyz(long long *took_ms)
{
    testhttp_resp resp;
    long long started = testdb_now_ms();
    long status =
        testhttp(&server, &(testhttp_req){ "GET", "/readyz", NULL, NULL, NULL, NULL }, &resp);

    *took_ms = testdb_now_ms() - started;
    testhttp_resp_free(&resp);
    return status;
}

static bool ready_again(void *arg)
{
    long long took;

    (void)arg;
    return readyz(&took) == 200;
}

Test(pg_reconnect, readyz_says_not_ready_in_bounded_time_when_the_database_hangs, .fini = stop_all,
     .timeout = 300)
{
    char url[200];
    long long took;
    long status;
    usher_config cfg = { 0 };

    testpg_root(root, "reconnect-ready");
    testpg_primary(&primary, root, "primary", testpg_port(3));
    testpg_migrate(&primary, &cfg);
    usher_config_free(&cfg);
    snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%d/usher", primary.port);
    testapi_start(&server, USHER_API_PATH, url, 2);
    cr_assert_eq(readyz(&took), 200);

    cr_assert(signal_server(&primary, SIGSTOP)); /* connections stay open; nothing answers */
    status = readyz(&took);
    fprintf(stderr, "pg_reconnect: /readyz with the database stopped: %ld in %lld ms\n", status,
            took);
    cr_assert_eq(status, 503, "/readyz answered %ld in %lld ms", status, took);
    cr_assert_lt(took, 2000 + 2000, "/readyz took %lld ms", took);
    cr_assert_eq(readyz(&took), 503, "a second probe answered otherwise");

    cr_assert(signal_server(&primary, SIGCONT));
    cr_assert(testproc_wait_for(ready_again, NULL, DEADLINE_MS), "not ready again; see %s",
              server.log);
}
