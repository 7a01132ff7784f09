/*
 * Search on every API host through Xapian's own replication, with real
 * processes only: usher-worker serving the index queue (the indexer,
 * keeping changesets), usherctl search serve (xapian-replicate-server over
 * its index), usherctl search replicate (xapian-replicate into a replica
 * of each API host's own) and usher-api reading that replica. A session
 * created through API A is found through API B, which reads nothing but its
 * replica, within seconds (the median of several changes is printed); a
 * replica started later catches up and answers exactly as B does; and
 * usherctl search rebuild after the index directory was deleted restores
 * every document, counted against the database, on the indexer and on B.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "seed.h"
#include "testdb.h"
#include "testhttp.h"
#include "testproc.h"
#include "token.h"
#include "xapian_wrap.h"

#define CONF          USHER_SOURCE_DIR "/conf/usher.conf"
#define CHANGES       5     /* sessions whose propagation is timed */
#define DEADLINE_MS   30000 /* generous: the goal is a few seconds */
#define MEDIAN_MAX_MS 5000  /* the goal for a change to reach every API host */

TESTDB_SUITE(search_replication, "usher_test_search_replication");

/* One indexer host and its replication server, and the replicas of the API hosts. */
typedef struct cluster {
    char workdir[64]; /* the worker's: its index is workdir/search */
    char index_dir[128];
    pid_t worker, server;
    pid_t replicators[2];
    int port; /* xapian-replicate-server's */
} cluster;

/*
 * Every process a test started and has not stopped: a failed assertion ends
 * the test early, and an indexer left running would take the next test's
 * index jobs into its own index. The worker gets SIGTERM (its children
 * follow it), the others SIGKILL.
 */
static pid_t live[8];
static pid_t live_worker;

static void kill_leftovers(void)
{
    int status;

    if (live_worker > 0) {
        kill(live_worker, SIGTERM);
        if (!testproc_wait(live_worker, 30000, &status))
            testproc_kill(live_worker);
    }
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        if (live[i] > 0)
            testproc_kill(live[i]);
    }
}

static void track(pid_t pid)
{
    static bool registered;

    if (!registered)
        cr_assert_eq(atexit(kill_leftovers), 0);
    registered = true;
    for (size_t i = 0; pid > 0 && i < sizeof(live) / sizeof(live[0]); i++) {
        if (live[i] == 0) {
            live[i] = pid;
            return;
        }
    }
    cr_assert_eq(pid, 0, "more processes than live[] holds");
}

static void untrack(pid_t pid)
{
    for (size_t i = 0; pid > 0 && i < sizeof(live) / sizeof(live[0]); i++) {
        if (live[i] == pid)
            live[i] = 0;
    }
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A loopback port free right now (bound to port 0 and released). */
static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool accepts(void *arg)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t) * (int *)arg),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

/* The indexer host: usher-worker for the index queue, and the replication server. */
static void start_indexer(cluster *c)
{
    const char *serve[] = { USHERCTL_PATH, "search", "serve", NULL };
    char listen[64], log[128];

    memset(c, 0, sizeof(*c));
    cr_assert_eq(setenv("USHER_SEARCH_CHANGESETS", "10", 1), 0);
    c->worker = testproc_start_worker(USHER_WORKER_PATH, CONF, "standard", cfg.database_url,
                                      "searchrepl", c->workdir);
    track(0); /* registers the clean-up */
    live_worker = c->worker;
    snprintf(c->index_dir, sizeof(c->index_dir), "%s/search", c->workdir);
    c->port = free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", c->port);
    cr_assert_eq(setenv("USHER_SEARCH_REPLICATION_LISTEN", listen, 1), 0);
    snprintf(log, sizeof(log), "%s/serve.log", c->workdir);
    c->server = testproc_start(serve, log);
    cr_assert_gt(c->server, 0);
    track(c->server);
    cr_assert(testproc_wait_for(accepts, &c->port, DEADLINE_MS),
              "xapian-replicate-server does not listen (see %s)", log);
}

/* An API host's replicator, into replica (a path under the cluster's workdir). */
static pid_t start_replicator(cluster *c, const char *name, char replica[128])
{
    const char *replicate[] = { USHERCTL_PATH, "search", "replicate", NULL };
    char master[64], log[128];
    pid_t pid;

    snprintf(replica, 128, "%s/%s", c->workdir, name);
    snprintf(master, sizeof(master), "127.0.0.1:%d", c->port);
    snprintf(log, sizeof(log), "%s/%s.log", c->workdir, name);
    cr_assert_eq(setenv("USHER_SEARCH_MASTER", master, 1), 0);
    cr_assert_eq(setenv("USHER_SEARCH_REPLICA_DIR", replica, 1), 0);
    pid = testproc_start(replicate, log);
    cr_assert_gt(pid, 0);
    track(pid);
    return pid;
}

/* usher-api reading replica, or (NULL) the indexer's own index, as a single host does. */
static void start_api(testapi *api, const char *replica)
{
    if (replica != NULL)
        cr_assert_eq(setenv("USHER_SEARCH_REPLICA_DIR", replica, 1), 0);
    else
        cr_assert_eq(unsetenv("USHER_SEARCH_REPLICA_DIR"), 0);
    testapi_start(api, USHER_API_PATH, cfg.database_url, 1);
    track(api->pid);
}

static void stop_api(testapi *api)
{
    untrack(api->pid);
    testapi_stop(api);
}

static void stop_cluster(cluster *c)
{
    for (size_t i = 0; i < 2; i++) {
        if (c->replicators[i] > 0)
            testproc_kill(c->replicators[i]);
        untrack(c->replicators[i]);
    }
    testproc_kill(c->server);
    untrack(c->server);
    live_worker = 0;
    testproc_stop_cleanly(c->worker);
    remove_tree(c->workdir);
}

/* GET /v1/search through api; the hits' ids (at most max) in ids; returns "total". */
typedef struct found {
    long long total;
    size_t n;
    long long ids[USHER_SEARCH_MAX_LIMIT];
} found;

static found search(const testapi *api, const char *q, const char *type, const char *token)
{
    char path[256];
    testhttp_resp resp;
    found f = { 0 };
    json_t *hits;

    snprintf(path, sizeof(path), "/v1/search?q=%s&type=%s&limit=%d", q, type,
             USHER_SEARCH_MAX_LIMIT);
    cr_assert_eq(testhttp(api, &(testhttp_req){ "GET", path, token, NULL, NULL, NULL }, &resp), 200,
                 "%s: %s", path, resp.body);
    cr_assert_not_null(resp.json, "%s", resp.body);
    f.total = json_integer_value(json_object_get(resp.json, "total"));
    hits = json_object_get(resp.json, "hits");
    for (size_t i = 0; i < json_array_size(hits) && f.n < USHER_SEARCH_MAX_LIMIT; i++)
        f.ids[f.n++] = json_integer_value(json_object_get(json_array_get(hits, i), "id"));
    testhttp_resp_free(&resp);
    return f;
}

typedef struct expect {
    const testapi *api;
    const char *q, *type;
    long long total;
} expect;

static bool search_says(void *arg)
{
    const expect *e = arg;

    return search(e->api, e->q, e->type, NULL).total == e->total;
}

static void organizer_token(long long organizer, char out[USHER_TOKEN_MAX])
{
    int64_t id;

    cr_assert_eq(usher_token_create(st, USHER_ROLE_ORGANIZER, organizer, 0, "test", out, &id),
                 USHER_OK, "%s", usher_store_errstr(st));
}

/* POSTs a session titled title to event through api; answers 201. */
static void create_session(const testapi *api, const char *token, long long event,
                           const char *title)
{
    char path[64], body[256];
    testhttp_resp resp;

    snprintf(path, sizeof(path), "/v1/events/%lld/sessions", event);
    snprintf(body, sizeof(body),
             "{\"title\":\"%s\",\"starts_at\":\"2030-05-04T09:00:00Z\","
             "\"ends_at\":\"2030-05-04T10:00:00Z\"}",
             title);
    cr_assert_eq(testhttp(api, &(testhttp_req){ "POST", path, token, body, NULL, NULL }, &resp),
                 201, "%s", resp.body);
    testhttp_resp_free(&resp);
}

static int by_value(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return (x > y) - (x < y);
}

Test(search_replication, a_session_created_on_a_reaches_b_and_a_late_replica_catches_up,
     .timeout = 600)
{
    cluster c;
    testapi a, b, late;
    char token[USHER_TOKEN_MAX], replica_b[128], replica_late[128], word[32], title[64];
    long long took[CHANGES], indexed[CHANGES];
    usher_seed_result seed;
    found on_b, on_late;

    cr_assert_eq(usher_seed_demo(st, 1, &seed), USHER_OK, "%s", usher_store_errstr(st));
    organizer_token(seed.organizer_id, token);
    start_indexer(&c);
    c.replicators[0] = start_replicator(&c, "replica_b", replica_b);
    start_api(&a, NULL);
    start_api(&b, replica_b);

    for (int i = 0; i < CHANGES; i++) {
        long long created;

        snprintf(word, sizeof(word), "zebra%dquokka", i);
        snprintf(title, sizeof(title), "Propagation %s", word);
        create_session(&a, token, seed.event_id, title);
        created = testdb_now_ms();
        /* A reads the indexer's own index: the indexing part of the delay. */
        cr_assert(testproc_wait_for(search_says, &(expect){ &a, word, "session", 1 }, DEADLINE_MS),
                  "session %d was never indexed (see %s/worker.log)", i, c.workdir);
        indexed[i] = testdb_now_ms() - created;
        cr_assert(testproc_wait_for(search_says, &(expect){ &b, word, "session", 1 }, DEADLINE_MS),
                  "session %d never reached API B (see %s, %s/replica_b.log)", i, b.log, c.workdir);
        took[i] = testdb_now_ms() - created;
        cr_assert_eq(search(&b, word, "session", NULL).total, 1, "found twice");
    }
    qsort(took, CHANGES, sizeof(took[0]), by_value);
    qsort(indexed, CHANGES, sizeof(indexed[0]), by_value);
    fprintf(stderr,
            "search propagation A -> B: median %lld ms (min %lld, max %lld, %d changes);"
            " indexed (seen on A) after a median %lld ms\n",
            took[CHANGES / 2], took[0], took[CHANGES - 1], CHANGES, indexed[CHANGES / 2]);
    cr_assert_lt(took[CHANGES / 2], MEDIAN_MAX_MS);

    /* A host that joins late: its replica starts empty and catches up. */
    c.replicators[1] = start_replicator(&c, "replica_late", replica_late);
    start_api(&late, replica_late);
    on_b = search(&b, "propagation", "session", NULL);
    cr_assert_eq(on_b.total, CHANGES);
    cr_assert(testproc_wait_for(search_says, &(expect){ &late, "propagation", "session", CHANGES },
                                DEADLINE_MS),
              "the late replica never caught up (see %s)", late.log);
    on_late = search(&late, "propagation", "session", NULL);
    cr_assert_eq(on_late.n, on_b.n);
    for (size_t i = 0; i < on_b.n; i++)
        cr_assert_eq(on_late.ids[i], on_b.ids[i], "hit %zu differs", i);
    /* And every session of the database, on both. */
    on_b = search(&b, "%20", "session", NULL);
    cr_assert_eq(on_b.total, testdb_scalar(st, "SELECT count(*) FROM sessions WHERE title LIKE "
                                               "'Propagation %'"));
    cr_assert_eq(search(&late, "%20", "session", NULL).total, on_b.total);

    stop_api(&late);
    stop_api(&b);
    stop_api(&a);
    stop_cluster(&c);
}

/* Runs usherctl search rebuild to the end; its output in out. */
static void rebuild(cluster *c, char *out, size_t len)
{
    const char *argv[] = { USHERCTL_PATH, "search", "rebuild", NULL };
    char log[128];
    int status;
    FILE *f;
    pid_t pid;

    snprintf(log, sizeof(log), "%s/rebuild.log", c->workdir);
    unlink(log);
    pid = testproc_start(argv, log);
    cr_assert_gt(pid, 0);
    cr_assert(testproc_wait(pid, 120000, &status), "usherctl search rebuild did not end");
    f = fopen(log, "r");
    cr_assert_not_null(f);
    out[fread(out, 1, len - 1, f)] = '\0';
    fclose(f);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rebuild failed: %s", out);
}

/* Documents of type in the index (or replica) at dir, as a searcher opened there counts them. */
static long long documents(const char *dir, const char *type, long long event)
{
    usher_search *s = NULL;
    usher_search_hit hits[1];
    size_t n = 0, total = 0;
    char errbuf[256];

    cr_assert_eq(usher_search_open(dir, &s, errbuf, sizeof(errbuf)), USHER_OK, "%s", errbuf);
    cr_assert_eq(
        usher_search_query(s, "", type, event, 0, 1, hits, &n, &total, errbuf, sizeof(errbuf)),
        USHER_OK, "%s", errbuf);
    usher_search_close(s);
    return (long long)total; /* exact up to 1,000 */
}

Test(search_replication, a_rebuild_after_the_index_was_deleted_restores_every_document,
     .timeout = 600)
{
    cluster c;
    testapi b;
    char replica_b[128], said[512], counts[128], sql[160];
    usher_seed_result seed;
    long long events, sessions, attendees;

    cr_assert_eq(usher_seed_demo(st, 40, &seed), USHER_OK, "%s", usher_store_errstr(st));
    start_indexer(&c);
    c.replicators[0] = start_replicator(&c, "replica_b", replica_b);
    start_api(&b, replica_b);
    rebuild(&c, said, sizeof(said));
    events = testdb_scalar(st, "SELECT count(*) FROM events");
    cr_assert(testproc_wait_for(search_says, &(expect){ &b, "%20", "event", events }, DEADLINE_MS),
              "B never saw the first rebuild (see %s)", b.log);

    /* The index is lost; one more event exists that no job ever indexed. */
    remove_tree(c.index_dir);
    cr_assert_eq(access(c.index_dir, F_OK), -1);
    testdb_exec(st, "INSERT INTO events (organizer_id, name, venue, starts_at, ends_at)"
                    " SELECT organizer_id, 'Unindexed gathering', venue, starts_at, ends_at"
                    " FROM events ORDER BY id LIMIT 1");
    rebuild(&c, said, sizeof(said));
    events = testdb_scalar(st, "SELECT count(*) FROM events");
    sessions = testdb_scalar(st, "SELECT count(*) FROM sessions");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM registrations WHERE status = 'confirmed' AND event_id = %lld",
             (long long)seed.event_id);
    attendees = testdb_scalar(st, sql);
    cr_assert_eq(attendees, 40);
    snprintf(counts, sizeof(counts), "%lld event, %lld session, %lld attendee", events, sessions,
             testdb_scalar(st, "SELECT count(*) FROM registrations WHERE status = 'confirmed'"));
    cr_assert_not_null(strstr(said, counts), "rebuild said %s, the database has %s", said, counts);
    cr_assert_eq(documents(c.index_dir, "event", 0), events);
    cr_assert_eq(documents(c.index_dir, "session", 0), sessions);
    cr_assert_eq(documents(c.index_dir, "attendee", seed.event_id), attendees);

    /* B, which reads its replica only, gets the new index (a full copy: a new database). */
    cr_assert(testproc_wait_for(search_says, &(expect){ &b, "%20", "event", events }, DEADLINE_MS),
              "B never saw the rebuilt index (see %s)", b.log);
    cr_assert_eq(search(&b, "unindexed", "event", NULL).total, 1);
    cr_assert_eq(search(&b, "%20", "session", NULL).total, sessions);
    cr_assert_eq(documents(replica_b, "attendee", seed.event_id), attendees);
    stop_api(&b);
    stop_cluster(&c);
}
