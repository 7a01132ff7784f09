/*
 * The maintenance thread sleeps on a condition variable between rounds so
 * that stop() wakes it at once. A broken connection is dropped and
 * reopened on the next round; losing it also loses the lock, which is
 * right: another supervisor may take over meanwhile. A reload hands the
 * thread a copy of the new configuration, which it takes between rounds,
 * so only the thread ever reads its own.
 */
#include "maintenance.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config_reload.h"
#include "log.h"
#include "maint.h"
#include "periodic.h"
#include "store.h"

struct usher_maintenance {
    usher_config cfg;      /* the thread's own: the store reads it */
    usher_config *pending; /* a reload's, under lock until the thread takes it */
    int interval_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    atomic_bool leader;
};

static void round_once(usher_maintenance *m, usher_store **st)
{
    char errbuf[256];
    size_t rescued = 0, pruned = 0, fired = 0;
    bool leader = false;
    usher_err err = USHER_OK;

    if (*st == NULL && usher_store_open(&m->cfg, st, errbuf, sizeof(errbuf)) != USHER_OK) {
        usher_log(USHER_LOG_WARNING, "maintenance: %s", errbuf);
        m->leader = false;
        return;
    }
    err = usher_maint_lead(*st, &leader);
    if (err == USHER_OK && leader)
        err = usher_maint_rescue(*st, &rescued);
    if (err == USHER_OK && leader)
        err = usher_maint_prune(*st, &pruned);
    /*
     * A periodic that cannot fire (its queue not migrated yet, say) is
     * logged, not treated as a broken connection: that would make the
     * leader resign every round.
     */
    if (err == USHER_OK && leader &&
        usher_periodic_fire(*st, (int64_t)time(NULL), &fired) != USHER_OK)
        usher_log(USHER_LOG_WARNING, "maintenance: periodic: %s", usher_store_errstr(*st));
    if (err == USHER_OK && leader && !m->leader)
        usher_log(USHER_LOG_NOTICE, "maintenance: this supervisor is the leader now");
    if (rescued > 0 || pruned > 0 || fired > 0)
        usher_log(USHER_LOG_NOTICE, "maintenance: rescued=%zu pruned=%zu periodic_fired=%zu",
                  rescued, pruned, fired);
    if (err != USHER_OK) {
        usher_log(USHER_LOG_WARNING, "maintenance: %s: %s", usher_strerror(err),
                  usher_store_errstr(*st));
        usher_store_free(*st); /* also ends the session, so the lock is released */
        *st = NULL;
        leader = false;
    }
    m->leader = leader;
}

/* With m->lock held: the reload's configuration replaces the thread's (same address). */
static void take_reload(usher_maintenance *m)
{
    if (m->pending == NULL)
        return;
    usher_config_free(&m->cfg);
    m->cfg = *m->pending;
    free(m->pending);
    m->pending = NULL;
}

static void *maintenance_main(void *arg)
{
    usher_maintenance *m = arg;
    usher_store *st = NULL;

    pthread_mutex_lock(&m->lock);
    while (!m->stopping) {
        struct timespec until;

        take_reload(m);
        pthread_mutex_unlock(&m->lock);
        round_once(m, &st);
        pthread_mutex_lock(&m->lock);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += m->interval_ms / 1000;
        until.tv_nsec += (long)(m->interval_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        if (!m->stopping)
            pthread_cond_timedwait(&m->wake, &m->lock, &until);
    }
    pthread_mutex_unlock(&m->lock);
    usher_store_free(st);
    m->leader = false;
    return NULL;
}

usher_err usher_maintenance_start(const char *config_path, int interval_ms, usher_maintenance **out)
{
    usher_maintenance *m = calloc(1, sizeof(*m));
    char errbuf[512];

    *out = NULL;
    if (m == NULL)
        return USHER_ERR_NOMEM;
    if (usher_config_load(&m->cfg, config_path, errbuf, sizeof(errbuf)) != USHER_OK) {
        usher_log(USHER_LOG_ERR, "maintenance: %s", errbuf);
        free(m);
        return USHER_ERR_CONFIG;
    }
    m->interval_ms = interval_ms;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->wake, NULL);
    if (pthread_create(&m->thread, NULL, maintenance_main, m) != 0) {
        usher_config_free(&m->cfg);
        free(m);
        return USHER_ERR_IO;
    }
    *out = m;
    return USHER_OK;
}

usher_err usher_maintenance_reload(usher_maintenance *m, const usher_config *cfg)
{
    usher_config *copy = malloc(sizeof(*copy));

    if (copy == NULL || usher_config_copy(cfg, copy) != USHER_OK) {
        free(copy);
        return USHER_ERR_NOMEM;
    }
    pthread_mutex_lock(&m->lock);
    if (m->pending != NULL)
        usher_config_free(m->pending);
    free(m->pending);
    m->pending = copy;
    pthread_mutex_unlock(&m->lock);
    return USHER_OK;
}

bool usher_maintenance_is_leader(const usher_maintenance *m)
{
    return m != NULL && m->leader;
}

void usher_maintenance_stop(usher_maintenance *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    pthread_cond_destroy(&m->wake);
    pthread_mutex_destroy(&m->lock);
    usher_config_free(m->pending);
    free(m->pending);
    usher_config_free(&m->cfg);
    free(m);
}
