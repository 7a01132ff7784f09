/*
 * usher-api: loads the configuration, starts the loop threads, and waits
 * for signals on the main thread (the loops have them blocked). SIGTERM
 * and SIGINT drain: new requests get 503, those in flight finish (up to
 * the grace period), then the process exits. SIGHUP reloads the reloadable
 * keys (api/reload.c). systemd hears READY, RELOADING, STOPPING and, when
 * the unit asks for it, WATCHDOG.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "request.h"
#include "cli.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "router.h"
#include "server.h"

#define DRAIN_GRACE_MS     10000
#define STARTUP_DB_WAIT_MS 10000

static const char usage[] = "usage: usher-api [--config FILE] [--threads N]\n"
                            "Serves the HTTP API of schemas/openapi.yaml on api.listen.\n";

static int thread_count(const usher_config *cfg, int argc, char **argv)
{
    long n = cfg->api_threads;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
    }
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

/* Says how many database connections it will open; false (said why) past the budget. */
static bool within_budget(const usher_config *cfg, int nthreads)
{
    usher_conn_need need;
    char why[1024], parts[512];

    api_conn_need(cfg, nthreads, &need);
    if (usher_conn_budget_check(cfg, "usher-api", &need,
                                "lower [api] threads (or --threads) or db_connections, or raise"
                                " the budget (README: Connection budget)",
                                why, sizeof(why)) != USHER_OK) {
        fprintf(stderr, "usher-api: %s\n", why);
        return false;
    }
    usher_conn_need_text(&need, parts, sizeof(parts));
    usher_log(USHER_LOG_INFO, "database connections: at most %d (%s)", usher_conn_need_total(&need),
              parts);
    return true;
}

/* True when every loop ticked within max_age_ns (none is stuck). */
static bool loops_alive(api_server *srv, uint64_t max_age_ns)
{
    int n = 0;
    api_loop *const *loops = api_server_loops(srv, &n);
    uint64_t now = api_now_ns();

    for (int i = 0; i < n; i++) {
        if (now - atomic_load(&loops[i]->alive_ns) > max_age_ns)
            return false;
    }
    return true;
}

/*
 * Ready means every loop has a live database connection (see /readyz):
 * waits up to STARTUP_DB_WAIT_MS for that before saying READY, so that a
 * balancer or a test sees the process ready only when it can serve.
 * Without the database by then it starts anyway, says why, and /readyz
 * answers 503 until the connections come up.
 */
static void wait_for_database(api_server *srv)
{
    uint64_t deadline = api_now_ns() + (uint64_t)STARTUP_DB_WAIT_MS * 1000000u;
    struct timespec ms5 = { 0, 5000000 };
    int missing;

    while ((missing = api_server_loops_without_db(srv)) > 0 && api_now_ns() < deadline)
        nanosleep(&ms5, NULL);
    if (missing > 0)
        usher_log(USHER_LOG_WARNING,
                  "%d loops have no database connection after %d ms; /readyz says not ready"
                  " until they do",
                  missing, STARTUP_DB_WAIT_MS);
}

/*
 * Waits for a stop signal, reloading on SIGHUP. When systemd asked for a
 * watchdog, pets it at half its interval, but only while every loop thread
 * keeps ticking: a stuck loop lets the watchdog fire and systemd restart
 * the service.
 */
static void wait_for_stop(api_server *srv, api_reloaded **published)
{
    uint64_t watchdog_us = 0;
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sd_watchdog_enabled(0, &watchdog_us) <= 0)
        watchdog_us = 0;
    for (;;) {
        struct timespec wait = { 3600, 0 };
        int sig;

        if (watchdog_us > 0) {
            wait.tv_sec = (time_t)(watchdog_us / 2 / 1000000);
            wait.tv_nsec = (long)(watchdog_us / 2 % 1000000 * 1000);
        }
        sig = sigtimedwait(&set, NULL, &wait);
        if (sig < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (watchdog_us > 0 && loops_alive(srv, watchdog_us * 1000 / 2 + 2000000000u))
                sd_notify(0, "WATCHDOG=1");
            continue;
        }
        if (sig == SIGHUP) {
            api_reload(srv, published);
            continue;
        }
        usher_log(USHER_LOG_NOTICE, "signal %d: draining", sig);
        return;
    }
}

int main(int argc, char **argv)
{
    usher_config cfg = { 0 };
    api_server srv = { 0 };
    api_threads *threads = NULL;
    api_reloaded *published = NULL; /* what reloads made of cfg and webhook_template */
    char *webhook_template;
    char errbuf[512];
    sigset_t set;
    int nthreads;

    /* No fastbins. A request allocates and frees a few hundred small blocks
     * (its JSON, headers, buffers) between allocations of a kilobyte or more
     * (a batch's text, a result, a buffer chunk), and each of those makes
     * glibc merge every fastbin chunk first: malloc_consolidate and
     * unlink_chunk took ~5% of the machine at 1,024 clients registering.
     * Freed small blocks still go to the per-thread cache. bench/README.md,
     * session 18. */
    if (mallopt(M_MXFAST, 0) != 1)
        fputs("usher-api: mallopt(M_MXFAST, 0) refused; going on with fastbins\n", stderr);

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (usher_cli_version("usher-api", argc, argv))
        return 0;
    if (usher_cli_load_config("usher-api", &argc, argv, &cfg) != 0)
        return 1;
    nthreads = thread_count(&cfg, argc, argv);
    if (!within_budget(&cfg, nthreads)) {
        usher_config_free(&cfg);
        return 1;
    }
    srv.cfg = &cfg;
    /* Registration, check-in and session access all sign or verify ticket codes:
     * without the key the API would look ready and answer them all 503. */
    if (usher_ticket_key_from_hex(cfg.ticket_secret, srv.ticket_key) != USHER_OK) {
        fprintf(stderr, "usher-api: [tickets] secret (or $USHER_TICKET_SECRET) is not 64 hex"
                        " digits: ticket codes cannot be signed or checked without it; set it"
                        " (e.g. openssl rand -hex 32) and start again\n");
        usher_config_free(&cfg);
        return 1;
    }
    if (api_cidr_list_parse(cfg.api_trusted_proxies, &srv.trusted_proxies, errbuf,
                            sizeof(errbuf)) != USHER_OK) {
        fprintf(stderr, "usher-api: [api] trusted_proxies (or $USHER_API_TRUSTED_PROXIES): %s\n",
                errbuf);
        usher_config_free(&cfg);
        return 1;
    }
    srv.metrics = api_metrics_new(api_routes, api_nroutes);
    webhook_template = api_webhook_template(&cfg);
    srv.webhook_template = webhook_template;
    if (srv.metrics == NULL || webhook_template == NULL) {
        fprintf(stderr, "usher-api: out of memory\n");
        api_metrics_free(srv.metrics);
        free(webhook_template);
        api_cidr_list_release(&srv.trusted_proxies);
        usher_config_free(&cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the loop threads inherit the mask */
    if (api_threads_start(&srv, nthreads, &threads, errbuf, sizeof(errbuf)) != USHER_OK) {
        fprintf(stderr, "usher-api: %s\n", errbuf);
        api_metrics_free(srv.metrics);
        free(webhook_template);
        api_cidr_list_release(&srv.trusted_proxies);
        usher_config_free(&cfg);
        return 1;
    }
    wait_for_database(&srv);
    /* Before the "listening on" line, which tells tests (testhttp.c) that both ports are known. */
    usher_log(USHER_LOG_NOTICE, "serving /metrics at %.*s:%d",
              (int)(strrchr(cfg.api_metrics_listen, ':') - cfg.api_metrics_listen),
              cfg.api_metrics_listen, srv.metrics_port);
    usher_log(USHER_LOG_NOTICE, "listening on %.*s:%d with %d loop threads",
              (int)(strrchr(cfg.api_listen, ':') - cfg.api_listen), cfg.api_listen, srv.port,
              nthreads);
    sd_notifyf(0, "READY=1\nSTATUS=listening on port %d", srv.port);
    wait_for_stop(&srv, &published);
    sd_notify(0, "STOPPING=1");
    atomic_store(&srv.draining, true);
    api_threads_stop(threads, DRAIN_GRACE_MS);
    api_metrics_free(srv.metrics);
    free(webhook_template);
    api_reloaded_free(published);
    api_cidr_list_release(&srv.trusted_proxies);
    usher_config_free(&cfg);
    return 0;
}
