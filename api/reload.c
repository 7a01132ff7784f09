/*
 * usher-api's reload. The main thread re-reads and merges the file
 * (engine/config_reload.h); when a reloadable key changed, it builds a new
 * snapshot, the merged configuration and the webhook template derived
 * from it, and publishes both with atomic stores into the server (request.h).
 * Loop threads and offload threads read the new values at their next use;
 * a request under way may finish with the values it already read.
 *
 * A snapshot is never freed before exit: a request, a cache refresh or an
 * offloaded call may still hold a pointer into an older one, and nothing
 * tells when the last of them lets go. A reload that applies nothing
 * publishes nothing, so this costs a few kilobytes per effective reload.
 */
#include "reload.h"

#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "alloc.h"
#include "config_reload.h"
#include "jobs.h"
#include "log.h"

struct api_reloaded {
    usher_config cfg;
    char *webhook_template;
    api_reloaded *older;
};

/* systemd 253+ pairs the reload with its request by the clock (Type=notify-reload). */
static void notify_reloading(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)now.tv_sec * 1000000u + (unsigned long long)now.tv_nsec / 1000u);
}

/* A snapshot of the merged configuration, or NULL when nothing applies (or on failure). */
static api_reloaded *reread(const api_server *srv, size_t *napplied)
{
    api_reloaded *next = usher_calloc(1, sizeof(*next));

    if (usher_config_reread(srv->cfg, &next->cfg, napplied) == USHER_OK && *napplied > 0) {
        next->webhook_template = api_webhook_template(&next->cfg);
        if (next->webhook_template != NULL)
            return next;
        usher_log(USHER_LOG_ERR, "reload refused: out of memory");
    }
    usher_config_free(&next->cfg);
    free(next);
    return NULL;
}

void api_reload(api_server *srv, api_reloaded **published)
{
    api_reloaded *next;
    size_t napplied = 0;

    notify_reloading();
    next = reread(srv, &napplied);
    if (next != NULL) {
        next->older = *published;
        *published = next;
        usher_log_set_level((usher_log_level)next->cfg.log_level);
        atomic_store(&srv->webhook_template, next->webhook_template);
        atomic_store(&srv->cfg, &next->cfg);
        usher_log(USHER_LOG_NOTICE, "reload done: %zu key(s) applied", napplied);
    }
    sd_notify(0, "READY=1");
}

void api_reloaded_free(api_reloaded *published)
{
    while (published != NULL) {
        api_reloaded *older = published->older;

        usher_config_free(&published->cfg);
        free(published->webhook_template);
        free(published);
        published = older;
    }
}
