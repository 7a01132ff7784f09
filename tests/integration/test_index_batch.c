/*
 * index.document in batches against a real Xapian index: the batch
 * function called directly (several documents under one commit, a bad job
 * failing alone, the whole batch retried while another writer holds the
 * index), and a real usher-worker whose children hold 64 jobs each, also
 * with analytics.rollup jobs interleaved, so that each child's queue
 * alternates between two batch kinds.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <criterion/criterion.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "enqueue.h"
#include "handler.h"
#include "job_handlers.h"
#include "seed.h"
#include "testdb.h"
#include "testproc.h"
#include "xapian_wrap.h"

__attribute__((constructor)) static void use_batch_config(void)
{
    setenv("USHER_CONFIG", ANALYTICS_TEST_CONF, 1);
}

TESTDB_SUITE(index_batch, "usher_test_index_batch");

#define MAX_JOBS 64

static char workdir[64];
static char search_dir[128];

static void make_search_dir(void)
{
    snprintf(workdir, sizeof(workdir), "/tmp/usher-index-batch-XXXXXX");
    cr_assert_not_null(mkdtemp(workdir));
    snprintf(search_dir, sizeof(search_dir), "%s/search", workdir);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_workdir(void)
{
    nftw(workdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* How many of type's documents of event match query (all of them for ""). */
static size_t count_hits(const char *query, const char *type, int64_t event)
{
    char errbuf[256];
    usher_search *s = NULL;
    usher_search_hit hits[USHER_SEARCH_MAX_LIMIT];
    size_t n = 0, total = 0;

    cr_assert_eq(usher_search_open(search_dir, &s, errbuf, sizeof(errbuf)), USHER_OK, "%s", errbuf);
    cr_assert_eq(usher_search_query(s, query, type, event, 0, USHER_SEARCH_MAX_LIMIT, hits, &n,
                                    &total, errbuf, sizeof(errbuf)),
                 USHER_OK, "%s", errbuf);
    usher_search_close(s);
    return total; /* exact up to 1,000 */
}

/* Ids of the rows sql returns (at most max), in *ids; returns how many. */
static size_t ids_of(const char *sql, long long *ids, size_t max)
{
    PGresult *res;
    size_t n;

    cr_assert_eq(usher_store_exec(st, sql, 0, NULL, &res), USHER_OK, "%s", usher_store_errstr(st));
    n = (size_t)PQntuples(res) < max ? (size_t)PQntuples(res) : max;
    for (size_t i = 0; i < n; i++)
        ids[i] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
    PQclear(res);
    return n;
}

/* Seeds the demo event (one registration); its sessions' ids (at most 16) into sessions. */
static size_t seed_sessions(usher_seed_result *seed, long long sessions[16])
{
    char sql[128];

    cr_assert_eq(usher_seed_demo(st, 1, seed), USHER_OK, "%s", usher_store_errstr(st));
    snprintf(sql, sizeof(sql), "SELECT id FROM sessions WHERE event_id = %lld ORDER BY id",
             (long long)seed->event_id);
    return ids_of(sql, sessions, 16);
}

/* A batch of index.document jobs, run through the batch function as a child would. */
typedef struct batch {
    size_t n;
    char payload[MAX_JOBS][256];
    usher_handler_result results[MAX_JOBS];
} batch;

static void add(batch *b, const char *type, long long id, bool remove)
{
    cr_assert_lt(b->n, MAX_JOBS);
    snprintf(b->payload[b->n++], sizeof(b->payload[0]), "{\"type\":\"%s\",\"id\":%lld%s}", type, id,
             remove ? ",\"delete\":true" : "");
}

static void run(batch *b)
{
    usher_handler_ctx *ctx = usher_handler_ctx_new(&cfg);
    usher_job jobs[MAX_JOBS];
    json_t *payloads[MAX_JOBS];

    cr_assert_not_null(ctx);
    for (size_t i = 0; i < b->n; i++) {
        jobs[i] = (usher_job){
            .id = (int64_t)i + 1, .attempt = 1, .timeout_ms = 1000, .payload = b->payload[i]
        };
        snprintf(jobs[i].kind, sizeof(jobs[i].kind), "index.document");
        payloads[i] = json_loads(b->payload[i], 0, NULL);
        cr_assert_not_null(payloads[i]);
        b->results[i] = (usher_handler_result){ .outcome = USHER_OUTCOME_OK, .delay_ms = -1 };
    }
    usher_batch_index_document(ctx, jobs, payloads, b->n, b->results);
    for (size_t i = 0; i < b->n; i++)
        json_decref(payloads[i]);
    usher_handler_ctx_free(ctx);
}

/* Points the configuration the batch function sees at a fresh index directory. */
static void use_fresh_index(void)
{
    make_search_dir();
    free(cfg.search_index_dir);
    cfg.search_index_dir = strdup(search_dir);
    cr_assert_not_null(cfg.search_index_dir);
}

Test(index_batch, one_commit_indexes_every_document_of_the_batch)
{
    static batch b;
    usher_seed_result seed;
    long long sessions[16], attendee;
    size_t nsessions;
    char sql[128];

    use_fresh_index();
    nsessions = seed_sessions(&seed, sessions);
    cr_assert_eq(nsessions, 6);
    snprintf(sql, sizeof(sql), "SELECT id FROM registrations WHERE event_id = %lld",
             (long long)seed.event_id);
    cr_assert_eq(ids_of(sql, &attendee, 1), 1);
    add(&b, "event", seed.event_id, false);
    for (size_t i = 0; i < nsessions; i++)
        add(&b, "session", sessions[i], false);
    add(&b, "attendee", attendee, false);
    run(&b);
    for (size_t i = 0; i < b.n; i++)
        cr_assert_eq(b.results[i].outcome, USHER_OUTCOME_OK, "job %zu: %s", i, b.results[i].error);
    cr_assert_eq(count_hits("", "session", seed.event_id), 6);
    cr_assert_eq(count_hits("summit", "event", 0), 1);
    cr_assert_eq(count_hits("speaker:hopper", "session", 0), 1);
    cr_assert_eq(count_hits("attendee1", "attendee", seed.event_id), 1);

    /* Deletes, a missing row (deleted too), and a bad job that fails alone. */
    b.n = 0;
    add(&b, "session", sessions[0], true);
    add(&b, "venue", 1, false);
    add(&b, "session", sessions[1], true);
    add(&b, "session", 999999999, false);
    run(&b);
    cr_assert_eq(b.results[1].outcome, USHER_OUTCOME_PERMANENT);
    cr_assert(strstr(b.results[1].error, "payload.type must be") != NULL, "%s", b.results[1].error);
    cr_assert_eq(b.results[0].outcome, USHER_OUTCOME_OK, "%s", b.results[0].error);
    cr_assert_eq(b.results[2].outcome, USHER_OUTCOME_OK, "%s", b.results[2].error);
    cr_assert_eq(b.results[3].outcome, USHER_OUTCOME_OK, "%s", b.results[3].error);
    cr_assert_eq(count_hits("", "session", seed.event_id), 4);
    remove_workdir();
}

/* A job of several rows of one type ("ids", as a registration batch's sales share one, 0038). */
static void add_ids(batch *b, const char *type, const long long *ids, size_t n, const char *extra)
{
    char *p = b->payload[b->n], *end = p + sizeof(b->payload[0]);

    cr_assert_lt(b->n, MAX_JOBS);
    p += snprintf(p, (size_t)(end - p), "{\"type\":\"%s\",\"ids\":[", type);
    for (size_t i = 0; i < n; i++)
        p += snprintf(p, (size_t)(end - p), "%s%lld", i > 0 ? "," : "", ids[i]);
    snprintf(p, (size_t)(end - p), "]%s}", extra);
    cr_assert_lt(strlen(b->payload[b->n]), sizeof(b->payload[0]) - 1, "the payload fits");
    b->n++;
}

/*
 * A job with "ids" brings every row it names into the index under the
 * batch's one commit, and takes out those that are gone; a bad job of that
 * form (a bad id, both id and ids, an empty list) fails alone and
 * permanently, and its good neighbours' rows are all indexed.
 */
Test(index_batch, a_job_with_ids_indexes_every_row_it_names)
{
    static batch b;
    usher_seed_result seed;
    long long sessions[16], some[3];
    size_t nsessions;

    use_fresh_index();
    nsessions = seed_sessions(&seed, sessions);
    cr_assert_eq(nsessions, 6);
    add_ids(&b, "session", sessions, 4, "");
    add_ids(&b, "session", sessions + 4, 2, ",\"id\":1"); /* both forms */
    snprintf(b.payload[b.n++], sizeof(b.payload[0]), "{\"type\":\"session\",\"ids\":[%lld,0]}",
             sessions[4]); /* a bad id */
    snprintf(b.payload[b.n++], sizeof(b.payload[0]), "{\"type\":\"session\",\"ids\":[]}");
    add_ids(&b, "session", sessions + 5, 1, "");
    run(&b);
    cr_assert_eq(b.results[0].outcome, USHER_OUTCOME_OK, "%s", b.results[0].error);
    cr_assert_eq(b.results[4].outcome, USHER_OUTCOME_OK, "%s", b.results[4].error);
    for (size_t i = 1; i <= 3; i++)
        cr_assert_eq(b.results[i].outcome, USHER_OUTCOME_PERMANENT, "job %zu", i);
    cr_assert(strstr(b.results[2].error, "payload.ids") != NULL, "%s", b.results[2].error);
    cr_assert_eq(count_hits("", "session", seed.event_id), 4 + 1,
                 "the first job's four sessions and the last one's");

    /* Deletes and a row that is gone, in one job. */
    b.n = 0;
    some[0] = sessions[0];
    some[1] = sessions[1];
    some[2] = 999999999;
    add_ids(&b, "session", some, 3, ",\"delete\":true");
    run(&b);
    cr_assert_eq(b.results[0].outcome, USHER_OUTCOME_OK, "%s", b.results[0].error);
    cr_assert_eq(count_hits("", "session", seed.event_id), 3);
    remove_workdir();
}

/* Busy (another writer, e.g. a rebuild): every job snoozes, spending no attempt. */
Test(index_batch, a_busy_index_snoozes_the_whole_batch_and_commits_nothing)
{
    static batch b;
    usher_seed_result seed;
    usher_index *other = NULL;
    char errbuf[256];
    long long sessions[16];
    size_t nsessions;

    use_fresh_index();
    nsessions = seed_sessions(&seed, sessions);
    for (size_t i = 0; i < nsessions; i++)
        add(&b, "session", sessions[i], false);
    cr_assert_eq(
        usher_index_open_writer(search_dir, cfg.search_language, &other, errbuf, sizeof(errbuf)),
        USHER_OK, "%s", errbuf);
    run(&b);
    for (size_t i = 0; i < b.n; i++) {
        cr_assert_eq(b.results[i].outcome, USHER_OUTCOME_SNOOZE, "job %zu", i);
        cr_assert_eq(b.results[i].delay_ms, 1000);
        cr_assert(strstr(b.results[i].error, "index busy") != NULL &&
                      strstr(b.results[i].error, "already locked") != NULL,
                  "%s", b.results[i].error);
    }
    cr_assert_eq(usher_index_close(other, errbuf, sizeof(errbuf)), USHER_OK, "%s", errbuf);
    cr_assert_eq(count_hits("", "session", 0), 0, "a refused batch left documents behind");
    run(&b);
    for (size_t i = 0; i < b.n; i++)
        cr_assert_eq(b.results[i].outcome, USHER_OUTCOME_OK, "job %zu: %s", i, b.results[i].error);
    cr_assert_eq(count_hits("", "session", 0), nsessions);
    remove_workdir();
}

static bool jobs_done(void *arg)
{
    (void)arg;
    return testdb_scalar(st, "SELECT count(*) FROM usher_jobs"
                             " WHERE state IN ('available', 'running')") == 0;
}

Test(index_batch, a_worker_indexes_a_backlog_in_batches, .timeout = 300)
{
    enum { ATTENDEES = 200 };
    static usher_enqueue_opts opts[ATTENDEES + 8];
    static char payloads[ATTENDEES + 8][96];
    usher_enqueued out[ATTENDEES + 8];
    const char *argv[] = { USHER_WORKER_PATH, "--config", ANALYTICS_TEST_CONF,
                           "--pool",          "batch",    NULL };
    usher_seed_result seed;
    long long ids[ATTENDEES + 8];
    char sql[160], log[128];
    size_t n;
    int status;
    pid_t pid;

    make_search_dir();
    cr_assert_eq(usher_seed_demo(st, ATTENDEES, &seed), USHER_OK, "%s", usher_store_errstr(st));
    snprintf(sql, sizeof(sql), "SELECT id FROM registrations WHERE event_id = %lld ORDER BY id",
             (long long)seed.event_id);
    n = ids_of(sql, ids, ATTENDEES);
    cr_assert_eq(n, ATTENDEES);
    for (size_t i = 0; i < n; i++)
        snprintf(payloads[i], sizeof(payloads[i]), "{\"type\":\"attendee\",\"id\":%lld}", ids[i]);
    snprintf(payloads[n++], sizeof(payloads[0]), "{\"type\":\"event\",\"id\":%lld}",
             (long long)seed.event_id);
    for (size_t i = 0; i < n; i++)
        opts[i] = (usher_enqueue_opts){ .queue = "index",
                                        .kind = "index.document",
                                        .payload = payloads[i] };
    cr_assert_eq(usher_enqueue_batch(st, opts, n, out), USHER_OK, "%s", usher_store_errstr(st));

    snprintf(log, sizeof(log), "%s/worker.log", workdir);
    cr_assert_eq(setenv("USHER_SEARCH_DIR", search_dir, 1), 0);
    cr_assert_eq(setenv("USHER_DATABASE_URL", cfg.database_url, 1), 0);
    pid = testproc_start(argv, log);
    cr_assert_gt(pid, 0);
    cr_assert(testproc_wait_for(jobs_done, NULL, 120000), "indexing did not finish (see %s)", log);
    kill(pid, SIGTERM);
    cr_assert(testproc_wait(pid, 60000, &status), "usher-worker did not stop");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "usher-worker exit %d", status);
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0, "jobs failed");
    cr_assert_eq(count_hits("", "attendee", seed.event_id), ATTENDEES,
                 "not every attendee is indexed");
    cr_assert_eq(count_hits("summit", "event", seed.event_id), 1);
    remove_workdir();
}

Test(index_batch, interleaved_kinds_each_run_in_their_own_batches_first_time, .timeout = 300)
{
    enum { ATTENDEES = 100, JOBS = 4 * ATTENDEES };
    static usher_enqueue_opts opts[JOBS];
    static char payloads[JOBS][128];
    usher_enqueued out[JOBS];
    const char *argv[] = { USHER_WORKER_PATH, "--config", ANALYTICS_TEST_CONF,
                           "--pool",          "batch",    NULL };
    usher_seed_result seed;
    long long ids[ATTENDEES];
    char sql[160], log[128];
    int status;
    pid_t pid;

    make_search_dir();
    testdb_exec(st, "TRUNCATE analytics_minute, analytics_folded");
    cr_assert_eq(usher_seed_demo(st, ATTENDEES, &seed), USHER_OK, "%s", usher_store_errstr(st));
    snprintf(sql, sizeof(sql), "SELECT id FROM registrations WHERE event_id = %lld ORDER BY id",
             (long long)seed.event_id);
    cr_assert_eq(ids_of(sql, ids, ATTENDEES), ATTENDEES);
    /* Three roll-ups, then an index job, and again: each child's queue alternates kinds. */
    for (size_t i = 0; i < JOBS; i++) {
        bool index = i % 4 == 3;

        if (index)
            snprintf(payloads[i], sizeof(payloads[i]), "{\"type\":\"attendee\",\"id\":%lld}",
                     ids[i / 4]);
        else
            snprintf(payloads[i], sizeof(payloads[i]),
                     "{\"event_id\":%lld,\"metric\":\"checkin\",\"at\":\"2026-05-04T09:30:00Z\"}",
                     (long long)seed.event_id);
        opts[i] = (usher_enqueue_opts){ .queue = index ? "index" : "analytics",
                                        .kind = index ? "index.document" : "analytics.rollup",
                                        .payload = payloads[i] };
    }
    cr_assert_eq(usher_enqueue_batch(st, opts, JOBS, out), USHER_OK, "%s", usher_store_errstr(st));

    snprintf(log, sizeof(log), "%s/worker.log", workdir);
    cr_assert_eq(setenv("USHER_SEARCH_DIR", search_dir, 1), 0);
    cr_assert_eq(setenv("USHER_DATABASE_URL", cfg.database_url, 1), 0);
    pid = testproc_start(argv, log);
    cr_assert_gt(pid, 0);
    cr_assert(testproc_wait_for(jobs_done, NULL, 120000), "the jobs did not finish (see %s)", log);
    kill(pid, SIGTERM);
    cr_assert(testproc_wait(pid, 60000, &status), "usher-worker did not stop");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "usher-worker exit %d", status);
    /* Every job succeeded at its first attempt: no result came back out of order. */
    cr_assert_eq(testdb_scalar(st, "SELECT count(*) FROM usher_jobs"), 0, "jobs failed");
    cr_assert_eq(testdb_scalar(st, "SELECT sum(completed) FROM usher_queue_stats"), JOBS);
    cr_assert_eq(testdb_scalar(st, "SELECT sum(failed) FROM usher_queue_stats"), 0,
                 "some attempts failed (see %s)", log);
    cr_assert_eq(testdb_scalar(st, "SELECT sum(count) FROM analytics_minute"), JOBS - ATTENDEES);
    cr_assert_eq(count_hits("", "attendee", seed.event_id), ATTENDEES);
    remove_workdir();
}
