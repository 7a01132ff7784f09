/*
 * The cache warm-up's round (cache_warm.h), one step at a time on loop 0:
 * list the sessions in the window, then for each: claim it, fill its
 * event's details, and read and store its door answers a batch at a time.
 * At most one statement or Redis call is outstanding, so the work never
 * competes with requests for more than one connection.
 */
#include "cache_warm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "cache.h"
#include "inttext.h"
#include "log.h"
#include "metrics.h"
#include "pgpool.h"
#include "redis.h"
#include "routes/routes.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

#define SESSIONS_MAX     1000 /* sessions in one round, soonest first */
#define CLAIM_TIMEOUT_MS 1000
#define WARM_LATE_MAX    3   /* reads of one batch answered too late, before it is skipped */
#define WARM_RETRY_MS    250 /* Redis or PostgreSQL not up yet (a cold start): look again soon */
#define STORE_TIMEOUT_MS 5000

#define SESSIONS_SQL                                                                   \
    "SELECT id, event_id FROM sessions WHERE cancelled_at IS NULL AND ends_at > now()" \
    " AND starts_at <= now() + make_interval(secs => $1::int)"                         \
    " ORDER BY starts_at, id LIMIT " STR(SESSIONS_MAX)

/* The session's answer for each registration of its event, from $2 on (the keyset). */
#define ANSWERS_SQL                                                                   \
    "SELECT g.id, g.status = 'confirmed', s.cancelled_at IS NOT NULL FROM sessions s" \
    " JOIN registrations g ON g.event_id = s.event_id WHERE s.id = $1 AND g.id > $2"  \
    " ORDER BY g.id LIMIT " STR(WARM_BATCH)

typedef struct session {
    int64_t id, event;
} session;

struct api_cache_warm {
    api_loop *loop;
    struct event *timer;
    bool busy;    /* a statement or Redis call is outstanding */
    bool closing; /* freed: the outstanding one frees it */
    session *sessions;
    size_t nsessions, at; /* this round's sessions, and the one being warmed */
    int64_t after;        /* the last registration stored (the keyset) */
    int64_t last;         /* the current batch's last registration */
    int late;             /* reads of the current batch answered too late to store */
    long long read_ms;    /* when the current batch's statement was sent */
    int rows;             /* the current batch's rows */
    char (*keys)[API_CACHE_KEY_MAX];
    char **values;
};

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void release(api_cache_warm *w)
{
    free(w->sessions);
    free(w->keys);
    free(w->values);
    free(w);
}

/* An answer arrived: false (and w is freed) when w was freed meanwhile. */
static bool answered(api_cache_warm *w)
{
    w->busy = false;
    if (w->closing) {
        release(w);
        return false;
    }
    return true;
}

/* Runs the next tick in ms milliseconds. */
static void arm(api_cache_warm *w, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    if (event_add(w->timer, &tv) != 0)
        usher_log(USHER_LOG_ERR, "cache warm-up: cannot arm its timer: it stops");
}

static void next_session(api_cache_warm *w);

static void free_values(api_cache_warm *w)
{
    for (int i = 0; i < w->rows; i++)
        free(w->values[i]);
    w->rows = 0;
}

/* Done with the current session (warmed through, or given up): on to the next. */
static void session_done(api_cache_warm *w, bool through)
{
    if (through)
        api_metrics_warm_session(w->loop->srv->metrics, false);
    w->at++;
    next_session(w);
}

static void read_batch(api_cache_warm *w);

static void stored(void *arg, long long n)
{
    api_cache_warm *w = arg;
    bool last = w->rows < WARM_BATCH;

    free_values(w);
    if (!answered(w))
        return;
    if (n < 0) {
        session_done(w, false); /* Redis went down or is slow: the next round tries again */
        return;
    }
    api_metrics_cache_warmed(w->loop->srv->metrics, "access", n);
    if (last)
        session_done(w, true);
    else
        read_batch(w);
}

/* The batch's keys and answers into w->keys and w->values; false when out of memory. */
static bool answers_of(api_cache_warm *w, PGresult *res)
{
    int64_t s = w->sessions[w->at].id;

    w->rows = PQntuples(res);
    for (int i = 0; i < w->rows; i++) {
        int64_t reg = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        const char *reason = strcmp(PQgetvalue(res, i, 1), "t") != 0   ? "cancelled"
                             : strcmp(PQgetvalue(res, i, 2), "t") == 0 ? "session_cancelled"
                                                                       : NULL;

        api_access_cache_key(s, reg, w->keys[i]);
        w->values[i] = api_access_answer_text(s, reason);
        if (w->values[i] == NULL) {
            w->rows = i;
            free_values(w);
            return false;
        }
        w->last = reg;
    }
    return true;
}

static void batch_read(PGresult *res, const char *errmsg, void *arg)
{
    api_cache_warm *w = arg;
    const usher_config *cfg;
    const char *key_at[WARM_BATCH];

    if (!answered(w))
        return;
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || !answers_of(w, res)) {
        usher_log(USHER_LOG_WARNING, "cache warm-up: session=%lld: %s",
                  (long long)w->sessions[w->at].id, errmsg != NULL ? errmsg : "out of memory");
        session_done(w, false);
        return;
    }
    if (w->rows == 0) {
        session_done(w, true);
        return;
    }
    /* A read this old may predate a cancellation whose hold ends before the store
     * lands: read the batch again (a loaded machine), WARM_LATE_MAX times, then skip it. */
    if (mono_ms() - w->read_ms > API_CACHE_HOLD_MS / 2) {
        bool last = w->rows < WARM_BATCH;

        free_values(w);
        if (++w->late <= WARM_LATE_MAX) {
            read_batch(w);
            return;
        }
        w->late = 0;
        w->after = w->last;
        if (last)
            session_done(w, false);
        else
            read_batch(w);
        return;
    }
    w->late = 0;
    w->after = w->last;
    cfg = w->loop->srv->cfg;
    for (int i = 0; i < w->rows; i++)
        key_at[i] = w->keys[i];
    w->busy = true;
    api_cache_put_many(w->loop, key_at, (const char *const *)w->values, (size_t)w->rows,
                       cfg->api_cache_access_ttl_s, cfg->api_cache_stale_s, STORE_TIMEOUT_MS,
                       stored, w);
}

static void read_batch(api_cache_warm *w)
{
    char s[USHER_INT_TEXT_MAX], after[USHER_INT_TEXT_MAX];
    const char *params[] = { s, after };

    usher_int_text(w->sessions[w->at].id, s);
    usher_int_text(w->after, after);
    w->read_ms = mono_ms();
    w->busy = true;
    if (api_pgpool_query(w->loop->pg, ANSWERS_SQL, 2, params, batch_read, w) != USHER_OK) {
        w->busy = false;
        session_done(w, false);
    }
}

static void claimed(redisReply *reply, void *arg)
{
    api_cache_warm *w = arg;

    if (!answered(w))
        return;
    if (reply == NULL) {
        w->at = w->nsessions; /* Redis is down or slow: this round ends */
        next_session(w);
        return;
    }
    if (reply->type != REDIS_REPLY_STATUS) {
        /* Another process (or this one) claimed it lately. */
        api_metrics_warm_session(w->loop->srv->metrics, true);
        session_done(w, false);
        return;
    }
    api_event_cache_fill(w->loop, w->sessions[w->at].event);
    api_metrics_cache_warmed(w->loop->srv->metrics, "event", 1);
    w->after = 0;
    w->late = 0;
    read_batch(w);
}

/* Claims the session at w->at for this round, or ends the round. */
static void next_session(api_cache_warm *w)
{
    const usher_config *cfg = w->loop->srv->cfg;
    char key[API_CACHE_KEY_MAX], px[USHER_INT_TEXT_MAX];
    const char *argv[] = { "SET", key, "1", "NX", "PX", px };

    if (w->at >= w->nsessions) {
        arm(w, WARM_TICK_S * 1000);
        return;
    }
    snprintf(key, sizeof(key), "usher:v1:warm:%lld", (long long)w->sessions[w->at].id);
    usher_int_text((cfg->api_cache_access_ttl_s + cfg->api_cache_stale_s / 2) * 1000LL, px);
    w->busy = true;
    if (!api_redis_call(w->loop->redis, CLAIM_TIMEOUT_MS, claimed, w, 6, argv, NULL)) {
        w->busy = false;
        arm(w, WARM_RETRY_MS); /* Redis is down */
    }
}

static void listed(PGresult *res, const char *errmsg, void *arg)
{
    api_cache_warm *w = arg;
    int n;

    if (!answered(w))
        return;
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        usher_log(USHER_LOG_WARNING, "cache warm-up: cannot list sessions: %s",
                  errmsg != NULL ? errmsg : "no answer");
        arm(w, WARM_TICK_S * 1000);
        return;
    }
    n = PQntuples(res);
    w->sessions = usher_realloc(w->sessions, ((size_t)n + 1) * sizeof(*w->sessions));
    for (int i = 0; i < n; i++)
        w->sessions[i] = (session){ strtoll(PQgetvalue(res, i, 0), NULL, 10),
                                    strtoll(PQgetvalue(res, i, 1), NULL, 10) };
    w->nsessions = (size_t)n;
    w->at = 0;
    next_session(w);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    api_cache_warm *w = arg;
    const usher_config *cfg = w->loop->srv->cfg;
    char window[USHER_INT_TEXT_MAX];
    const char *params[] = { window };

    (void)fd;
    (void)what;
    if (w->busy)
        return;
    if (cfg->api_cache_warm_window_s <= 0 || cfg->api_cache_access_ttl_s <= 0) {
        arm(w, WARM_TICK_S * 1000);
        return;
    }
    if (!api_redis_up(w->loop->redis)) {
        arm(w, WARM_RETRY_MS);
        return;
    }
    usher_int_text(cfg->api_cache_warm_window_s, window);
    w->busy = true;
    if (api_pgpool_query(w->loop->pg, SESSIONS_SQL, 1, params, listed, w) != USHER_OK) {
        w->busy = false;
        arm(w, WARM_RETRY_MS);
    }
}

usher_err api_cache_warm_start(api_loop *loop, api_cache_warm **out)
{
    api_cache_warm *w = usher_calloc(1, sizeof(*w));
    struct timeval now = { 0, 0 };

    w->loop = loop;
    w->keys = usher_calloc(WARM_BATCH, sizeof(*w->keys));
    w->values = usher_calloc(WARM_BATCH, sizeof(*w->values));
    w->timer = usher_need(evtimer_new(loop->base, tick, w));
    if (event_add(w->timer, &now) != 0) {
        api_cache_warm_free(w);
        return USHER_ERR_SYSTEM;
    }
    *out = w;
    return USHER_OK;
}

void api_cache_warm_free(api_cache_warm *w)
{
    if (w == NULL)
        return;
    if (w->timer != NULL)
        event_free(w->timer);
    w->timer = NULL;
    if (w->busy) {
        w->closing = true; /* the outstanding answer frees it */
        return;
    }
    release(w);
}
