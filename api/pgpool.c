#include "pgpool.h"

#include <stdlib.h>

struct api_pgpool {
    int size;
    usher_pgloop **conns;
};

usher_err api_pgpool_new(struct event_base *base, const char *conninfo, int size,
                         const usher_pgloop_hooks *hooks, api_pgpool **out)
{
    api_pgpool *pool = calloc(1, sizeof(*pool));
    const usher_pgloop_hooks none = { 0 };

    *out = NULL;
    if (pool == NULL || (pool->conns = calloc((size_t)size, sizeof(*pool->conns))) == NULL) {
        free(pool);
        return USHER_ERR_NOMEM;
    }
    for (int i = 0; i < size; i++) {
        usher_err err =
            usher_pgloop_new(base, conninfo, hooks != NULL ? hooks : &none, &pool->conns[i]);

        if (err != USHER_OK) {
            pool->size = i;
            api_pgpool_free(pool);
            return err;
        }
    }
    pool->size = size;
    *out = pool;
    return USHER_OK;
}

void api_pgpool_free(api_pgpool *pool)
{
    if (pool == NULL)
        return;
    for (int i = 0; i < pool->size; i++)
        usher_pgloop_free(pool->conns[i]);
    free(pool->conns);
    free(pool);
}

usher_err api_pgpool_query(api_pgpool *pool, const char *sql, int nparams,
                           const char *const *params, usher_pg_result_fn done, void *arg)
{
    usher_pgloop *best = NULL;
    int best_pending = 0;

    for (int i = 0; i < pool->size; i++) {
        int pending = usher_pgloop_pending(pool->conns[i]);

        if (!usher_pgloop_connected(pool->conns[i]))
            continue;
        if (best == NULL || pending < best_pending) {
            best = pool->conns[i];
            best_pending = pending;
        }
    }
    if (best == NULL)
        return USHER_ERR_DB;
    return usher_pgloop_query(best, sql, nparams, params, done, arg);
}

int api_pgpool_connected(const api_pgpool *pool)
{
    int n = 0;

    for (int i = 0; i < pool->size; i++)
        n += usher_pgloop_connected(pool->conns[i]);
    return n;
}

int api_pgpool_busy(const api_pgpool *pool)
{
    int n = 0;

    for (int i = 0; i < pool->size; i++)
        n += usher_pgloop_pending(pool->conns[i]) > 0;
    return n;
}

int api_pgpool_size(const api_pgpool *pool)
{
    return pool->size;
}
