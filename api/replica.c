/*
 * A loop's replica reader (replica.h). Every replica_check_ms a timer asks
 * the primary for pg_current_wal_lsn() (through the loop's primary pool,
 * into a history: api/replica_lag.h) and each replica connection for
 * pg_is_in_recovery(), pg_last_wal_replay_lsn() and
 * pg_is_wal_replay_paused(), one question at a time per connection. Each
 * answer judges its connection, which takes reads only while fresh: the
 * pool is gated (pgpool.h), so a connection that (re)connects, perhaps to
 * another host of a multi-host URL, takes none until judged again; one
 * not judged for SILENT_CHECKS checks is taken out too. Reads on a replica carry a copy of their
 * statement, which goes to the primary when the replica fails it.
 */
#include "replica.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "log.h"
#include "metrics.h"
#include "pgpool.h"
#include "replica_lag.h"
#include "request.h"

#define PRIMARY_SQL "SELECT pg_current_wal_lsn()::text"
#define PROBE_SQL                                                   \
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"   \
    " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused()" \
    " ELSE false END"

/*
 * A connection not judged for this many checks takes no reads: so a read
 * served by a replica sees data at most max_replica_lag_ms plus this many
 * checks old.
 */
#define SILENT_CHECKS 3u

/* What served the reads sent with api_read, over the process. */
enum { SERVED_REPLICA, SERVED_PRIMARY, SERVED_FALLBACK, SERVED_N };
static atomic_ullong served[SERVED_N];

/* One replica connection's checks. */
typedef struct probe {
    api_replica *rep;
    int index;
    bool asking;        /* a question is in flight */
    uint64_t asked_ms;  /* when it was sent */
    uint64_t judged_ms; /* when the last answer came (0: never) */
    api_replica_verdict verdict;
    int64_t lag_ms; /* -1: not measured */
} probe;

/* A call due once the replicas have replayed a change (api_replica_after_lag). */
typedef struct later {
    struct later *next;
    uint64_t due_ms;
    void (*fn)(api_loop *loop, const char *key);
    char *key;
} later;

struct api_replica {
    api_loop *loop;
    api_pgpool *pool;
    struct event *check;
    api_lag_history history;
    bool sampling; /* the primary's LSN is being asked */
    uint64_t sampling_since_ms;
    bool stopping;
    probe *probes;
    later *laters;       /* newest first */
    atomic_llong lag_ms; /* the worst of its connections' lags; -1: none measured */
    atomic_int up;       /* connections up */
    atomic_int in_use;   /* connections fresh now */
};

static uint64_t now_ms(void)
{
    return api_now_ns() / 1000000u;
}

static const usher_config *cfg_of(const api_replica *rep)
{
    return rep->loop->srv->cfg;
}

/* ---- the checker --------------------------------------------------------- */

static void sampled(PGresult *res, const char *errmsg, void *arg)
{
    api_replica *rep = arg;
    uint64_t lsn;

    rep->sampling = false;
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        !api_lsn_parse(PQgetvalue(res, 0, 0), &lsn)) {
        usher_log(USHER_LOG_DEBUG, "replica check: the primary's WAL position unknown: %s",
                  errmsg != NULL ? errmsg : "no answer");
        return;
    }
    api_lag_record(&rep->history, rep->sampling_since_ms, lsn);
}

static const char *verdict_text(api_replica_verdict v)
{
    return v == API_REPLICA_FRESH ? "fresh" : v == API_REPLICA_PAUSED ? "paused" : "lagging";
}

/* Marks p's connection usable or not, logging each change. */
static void judge(probe *p, api_replica_verdict verdict, int64_t lag_ms, const char *why)
{
    api_replica *rep = p->rep;
    bool was = api_pgpool_usable(rep->pool, p->index);
    bool fresh = verdict == API_REPLICA_FRESH;

    api_pgpool_set_usable(rep->pool, p->index, fresh);
    if (was != fresh || p->verdict != verdict)
        usher_log(fresh ? USHER_LOG_INFO : USHER_LOG_NOTICE,
                  "replica loop=%d conn=%d %s lag_ms=%lld%s%s", rep->loop->index, p->index,
                  why != NULL ? "unreachable" : verdict_text(verdict), (long long)lag_ms,
                  why != NULL ? ": " : "", why != NULL ? why : "");
    p->verdict = verdict;
    p->lag_ms = lag_ms;
}

static void probed(PGresult *res, const char *errmsg, void *arg)
{
    probe *p = arg;
    api_replica *rep = p->rep;
    api_replica_sample s = { .at_ms = now_ms() };
    api_replica_verdict verdict;
    int64_t lag_ms = -1;

    p->asking = false;
    if (rep->stopping)
        return;
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        judge(p, API_REPLICA_LAGGING, -1, errmsg != NULL ? errmsg : "no answer");
        return;
    }
    s.in_recovery = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    s.paused = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    if (s.in_recovery && !api_lsn_parse(PQgetvalue(res, 0, 1), &s.replay_lsn)) {
        judge(p, API_REPLICA_LAGGING, -1, "no replay position");
        return;
    }
    p->judged_ms = s.at_ms;
    verdict =
        api_replica_judge(&rep->history, &s, cfg_of(rep)->database_max_replica_lag_ms, &lag_ms);
    judge(p, verdict, lag_ms, NULL);
}

/* Asks connection p a question if it is up and has none in flight; expires a silent one. */
static void ask(probe *p, uint64_t now)
{
    api_replica *rep = p->rep;
    const usher_config *cfg = cfg_of(rep);
    uint64_t silent_ms = SILENT_CHECKS * (uint64_t)cfg->database_replica_check_ms;

    if (p->asking) {
        if (now - p->asked_ms > silent_ms && api_pgpool_usable(rep->pool, p->index))
            judge(p, API_REPLICA_LAGGING, -1, "the check is not answered");
        return;
    }
    if (p->judged_ms != 0 && now - p->judged_ms > silent_ms &&
        api_pgpool_usable(rep->pool, p->index))
        judge(p, API_REPLICA_LAGGING, -1, "not checked lately");
    /* Set first: probed may run within the call (a send that fails at once). */
    p->asking = true;
    p->asked_ms = now;
    if (api_pgpool_query_on(rep->pool, p->index, PROBE_SQL, 0, NULL, probed, p) != USHER_OK) {
        p->asking = false; /* down: it takes no reads; asked again once up */
        p->lag_ms = -1;
    }
}

static void publish(api_replica *rep)
{
    int64_t worst = -1;
    int size = api_pgpool_size(rep->pool);

    for (int i = 0; i < size; i++) {
        if (rep->probes[i].lag_ms > worst)
            worst = rep->probes[i].lag_ms;
    }
    atomic_store(&rep->lag_ms, worst);
    atomic_store(&rep->up, api_pgpool_connected(rep->pool));
    atomic_store(&rep->in_use, api_pgpool_usable_count(rep->pool));
}

/* Runs and frees the calls that are due. */
static void run_laters(api_replica *rep, uint64_t now)
{
    later **at = &rep->laters;

    while (*at != NULL) {
        later *l = *at;

        if (l->due_ms > now) {
            at = &l->next;
            continue;
        }
        *at = l->next;
        l->fn(rep->loop, l->key);
        free(l->key);
        free(l);
    }
}

static void check(evutil_socket_t fd, short what, void *arg)
{
    api_replica *rep = arg;
    uint64_t now = now_ms();
    int size = api_pgpool_size(rep->pool);

    (void)fd;
    (void)what;
    run_laters(rep, now);
    if (!rep->sampling) {
        rep->sampling = true; /* first: sampled may run within the call */
        rep->sampling_since_ms = now;
        if (api_pgpool_query(rep->loop->pg, PRIMARY_SQL, 0, NULL, sampled, rep) != USHER_OK)
            rep->sampling = false;
    }
    for (int i = 0; i < size; i++)
        ask(&rep->probes[i], now);
    publish(rep);
}

/* ---- set up -------------------------------------------------------------- */

static void timed(double queued_s, double ran_s, void *arg)
{
    api_metrics_statement(((api_replica *)arg)->loop->srv->metrics, queued_s, ran_s);
}

usher_err api_replica_new(api_loop *loop, api_replica **out)
{
    const usher_config *cfg = loop->srv->cfg;
    api_replica *rep;
    int ms = cfg->database_replica_check_ms;
    struct timeval every = { ms / 1000, ms % 1000 * 1000 };
    usher_err err;

    *out = NULL;
    if (!usher_config_has_read_url(cfg))
        return USHER_OK;
    rep = usher_calloc(1, sizeof(*rep));
    rep->loop = loop;
    atomic_store(&rep->lag_ms, -1);
    /* No wait: a read finds no replica up, it goes to the primary at once. */
    err = api_pgpool_new(loop->base, cfg->database_read_url, cfg->api_db_connections, 0,
                         &(usher_pgloop_hooks){ .timed = timed, .arg = rep }, &rep->pool);
    if (err != USHER_OK) {
        free(rep);
        return err;
    }
    api_pgpool_gate(rep->pool);
    rep->probes = usher_calloc((size_t)api_pgpool_size(rep->pool), sizeof(*rep->probes));
    for (int i = 0; i < api_pgpool_size(rep->pool); i++)
        rep->probes[i] = (probe){ .rep = rep, .index = i, .lag_ms = -1 };
    rep->check = usher_need(event_new(loop->base, -1, EV_PERSIST, check, rep));
    if (event_add(rep->check, &every) != 0) {
        api_replica_free(rep);
        return USHER_ERR_SYSTEM;
    }
    *out = rep;
    return USHER_OK;
}

void api_replica_free(api_replica *rep)
{
    if (rep == NULL)
        return;
    rep->stopping = true;
    if (rep->check != NULL)
        event_free(rep->check);
    api_pgpool_free(rep->pool); /* its pending callbacks see stopping */
    while (rep->laters != NULL) {
        later *l = rep->laters;

        rep->laters = l->next;
        free(l->key);
        free(l);
    }
    free(rep->probes);
    free(rep);
}

int api_replica_in_use(const api_replica *rep)
{
    return rep != NULL ? atomic_load(&rep->in_use) : 0;
}

void api_replica_after_lag(api_loop *loop, void (*fn)(api_loop *loop, const char *key),
                           const char *key)
{
    api_replica *rep = loop->replica;
    const usher_config *cfg;
    later *l;

    if (rep == NULL)
        return;
    cfg = cfg_of(rep);
    l = usher_calloc(1, sizeof(*l));
    l->due_ms = now_ms() + (uint64_t)cfg->database_max_replica_lag_ms +
                (SILENT_CHECKS + 1u) * (uint64_t)cfg->database_replica_check_ms;
    l->fn = fn;
    l->key = usher_strdup(key);
    l->next = rep->laters;
    rep->laters = l;
}

/* ---- reads --------------------------------------------------------------- */

/* A read sent to a replica, kept to be sent again to the primary. */
typedef struct reread {
    api_replica *rep;
    usher_pg_stmt stmt;
    usher_pg_result_fn done;
    void *arg;
} reread;

static void count(int what)
{
    atomic_fetch_add_explicit(&served[what], 1, memory_order_relaxed);
}

void api_replica_count_read(bool by_replica, bool fell_back)
{
    if (fell_back)
        count(SERVED_FALLBACK);
    count(by_replica ? SERVED_REPLICA : SERVED_PRIMARY);
}

static void replica_answered(PGresult *res, const char *errmsg, void *arg)
{
    reread *rr = arg;
    ExecStatusType status = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    usher_err err;

    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        count(SERVED_REPLICA);
        rr->done(res, errmsg, rr->arg);
    } else if (rr->rep->stopping) {
        rr->done(NULL, "usher-api is stopping", rr->arg);
    } else {
        usher_log(USHER_LOG_INFO, "replica read failed, sent to the primary: %s",
                  errmsg != NULL ? errmsg : "connection lost");
        count(SERVED_FALLBACK);
        count(SERVED_PRIMARY);
        err = api_pgpool_query(rr->rep->loop->pg, rr->stmt.sql, rr->stmt.nparams,
                               (const char *const *)rr->stmt.params, rr->done, rr->arg);
        if (err != USHER_OK)
            rr->done(NULL, usher_strerror(err), rr->arg);
    }
    usher_pg_stmt_release(&rr->stmt);
    free(rr);
}

usher_err api_read(api_loop *loop, const char *sql, int nparams, const char *const *params,
                   usher_pg_result_fn done, void *arg)
{
    api_replica *rep = loop->replica;
    reread *rr;

    if (rep != NULL && !rep->stopping && api_pgpool_usable_count(rep->pool) > 0) {
        rr = usher_calloc(1, sizeof(*rr));
        rr->rep = rep;
        rr->done = done;
        rr->arg = arg;
        usher_pg_stmt_copy(&rr->stmt, sql, nparams, params);
        if (api_pgpool_query(rep->pool, sql, nparams, params, replica_answered, rr) == USHER_OK)
            return USHER_OK;
        usher_pg_stmt_release(&rr->stmt);
        free(rr);
    }
    count(SERVED_PRIMARY);
    return api_pgpool_query(loop->pg, sql, nparams, params, done, arg);
}

/* ---- metrics ------------------------------------------------------------- */

int api_replica_render(api_loop *const *loops, int nloops, struct evbuffer *out)
{
    long long lag = -1;
    int configured = 0, up = 0, in_use = 0;

    for (int i = 0; i < nloops; i++) {
        const api_replica *rep = loops[i]->replica;

        if (rep == NULL)
            continue;
        if (atomic_load(&rep->lag_ms) > lag)
            lag = atomic_load(&rep->lag_ms);
        configured += api_pgpool_size(rep->pool);
        up += atomic_load(&rep->up);
        in_use += atomic_load(&rep->in_use);
    }
    return evbuffer_add_printf(
               out,
               "# HELP usher_db_reads_total Reads that may see a replica, by the server that"
               " answered them.\n"
               "# TYPE usher_db_reads_total counter\n"
               "usher_db_reads_total{server=\"replica\"} %llu\n"
               "usher_db_reads_total{server=\"primary\"} %llu\n"
               "# HELP usher_db_replica_fallbacks_total Reads a replica failed, answered by the"
               " primary instead.\n"
               "# TYPE usher_db_replica_fallbacks_total counter\n"
               "usher_db_replica_fallbacks_total %llu\n"
               "# HELP usher_db_replica_lag_ms How old the data of the API's replica"
               " connections is, the worst of them, in ms (-1: none measured).\n"
               "# TYPE usher_db_replica_lag_ms gauge\n"
               "usher_db_replica_lag_ms %lld\n"
               "# HELP usher_db_replica_in_use 1 while reads go to a replica.\n"
               "# TYPE usher_db_replica_in_use gauge\n"
               "usher_db_replica_in_use %d\n"
               "# HELP usher_db_replica_connections Replica connections of the API, by state"
               " (fresh: taking reads).\n"
               "# TYPE usher_db_replica_connections gauge\n"
               "usher_db_replica_connections{state=\"configured\"} %d\n"
               "usher_db_replica_connections{state=\"up\"} %d\n"
               "usher_db_replica_connections{state=\"fresh\"} %d\n",
               (unsigned long long)atomic_load(&served[SERVED_REPLICA]),
               (unsigned long long)atomic_load(&served[SERVED_PRIMARY]),
               (unsigned long long)atomic_load(&served[SERVED_FALLBACK]), lag, in_use > 0,
               configured, up, in_use) < 0
               ? -1
               : 0;
}
