#include "blocking.h"

#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "offload.h"
#include "replica.h"
#include "replica_reader.h"
#include "reply.h"

typedef struct call {
    api_req *r;
    const usher_config *cfg;
    api_blocking_fn fn;
    api_blocking_done done;
    void *arg;
    bool read; /* fn only reads: a replica caught up with the primary may serve it */
    usher_err err;
    json_t *out;
    char why[512];
} call;

static void *open_store(const void *cfg, usher_err *err, char *why, size_t whylen)
{
    usher_store *st = NULL;

    *err = usher_store_open(cfg, &st, why, whylen);
    return st;
}

static void close_store(void *st)
{
    usher_store_free(st);
}

/* One connection per worker thread, closed when the thread ends. */
static const api_offload_slot stores = { open_store, close_store };

static void *open_replicas(const void *cfg, usher_err *err, char *why, size_t whylen)
{
    (void)why;
    (void)whylen;
    *err = USHER_OK;
    return usher_replica_reader_new(cfg);
}

static void close_replicas(void *rd)
{
    usher_replica_reader_free(rd);
}

/* And its reader of [database] read_url, which opens the replica's connection when used. */
static const api_offload_slot replicas = { open_replicas, close_replicas };

/*
 * Runs a read on a replica that has everything the primary has now (so it
 * sees the caller's own last change), else on the primary; a read the
 * replica fails runs again on the primary.
 */
static usher_err run_read(call *c, usher_store *primary, usher_store **used)
{
    usher_replica_reader *rd =
        api_offload_resource(&replicas, c->cfg, &c->err, c->why, sizeof(c->why));
    usher_err err = usher_replica_reader_pick(rd, primary, used);
    bool fell_back = false;

    if (err != USHER_OK)
        return err;
    err = c->fn(*used, c->arg, &c->out);
    if (err != USHER_OK && usher_replica_reader_failed(rd, *used)) {
        json_decref(c->out);
        c->out = NULL;
        fell_back = true;
        *used = primary;
        err = c->fn(primary, c->arg, &c->out);
    }
    api_replica_count_read(*used != primary, fell_back);
    return err;
}

static void work(void *arg)
{
    call *c = arg;
    usher_store *st = api_offload_resource(&stores, c->cfg, &c->err, c->why, sizeof(c->why));

    usher_store *used = st;

    if (st == NULL)
        return;
    c->err = c->read ? run_read(c, st, &used) : c->fn(st, c->arg, &c->out);
    if (c->err != USHER_OK)
        snprintf(c->why, sizeof(c->why), "%s", usher_store_errstr(used));
    if (c->err == USHER_ERR_DB || !usher_store_usable(st)) {
        /* The connection may be broken, or on a standby now after a failover:
         * the next call opens a fresh one, which finds the primary. */
        api_offload_drop(&stores);
    }
}

static void finished(void *arg)
{
    call *c = arg;

    c->done(c->r, c->err, c->why, c->out, c->arg);
    free(c);
}

static void offload(api_req *r, api_blocking_fn fn, api_blocking_done done, void *arg, bool read)
{
    call *c = usher_calloc(1, sizeof(*c));

    *c = (call){
        .r = r, .cfg = r->loop->srv->cfg, .fn = fn, .done = done, .arg = arg, .read = read
    };
    if (!api_offload(r->loop, work, finished, c)) {
        free(c);
        done(r, USHER_ERR_TIMEOUT, "the server is too busy; retry", NULL, arg);
    }
}

void api_blocking(api_req *r, api_blocking_fn fn, api_blocking_done done, void *arg)
{
    offload(r, fn, done, arg, false);
}

void api_blocking_read(api_req *r, api_blocking_fn fn, api_blocking_done done, void *arg)
{
    offload(r, fn, done, arg, true);
}

void api_blocking_reply(api_req *r, usher_err err, const char *why, json_t *out, void *arg)
{
    free(arg);
    if (err != USHER_OK) {
        json_decref(out);
        api_reply_engine_error(r, err, why);
        return;
    }
    api_add_header(r, "Cache-Control", "no-store");
    api_reply_json(r, 200, out);
}

void api_reply_engine_error(api_req *r, usher_err err, const char *why)
{
    switch (err) {
    case USHER_ERR_NOT_FOUND:
    case USHER_ERR_UNKNOWN_QUEUE:
        api_reply_error(r, 404, "not_found", "%s", why);
        return;
    case USHER_ERR_STATE:
    case USHER_ERR_CONFLICT:
        api_reply_error(r, 409, "conflict", "%s", why);
        return;
    case USHER_ERR_INVALID:
    case USHER_ERR_PAYLOAD:
    case USHER_ERR_TOO_LARGE:
        api_reply_error(r, 422, "invalid", "%s", why);
        return;
    case USHER_ERR_DB:
        api_reply_error(r, 503, "unavailable", "the database is not reachable: %s", why);
        return;
    case USHER_ERR_TIMEOUT:
        api_reply_error(r, 503, "unavailable", "%s", why);
        return;
    default:
        api_reply_error(r, 500, "internal", "%s", why);
    }
}
