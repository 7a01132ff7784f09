/*
 * usherctl search: the search index of several hosts. "rebuild" fills the
 * index again from PostgreSQL (on the indexer host, the one whose
 * usher-worker serves the index queue); "serve" and "replicate" become
 * Xapian's own replication daemons with arguments taken from [search], so
 * that their systemd units (systemd/usher-search-*.service) and the
 * configuration cannot disagree: serve runs xapian-replicate-server over
 * the directory that holds index_dir, replicate runs xapian-replicate,
 * which polls master every replicate_interval_s and keeps replica_dir, the
 * copy that usher-api reads. Both exec: systemd supervises Xapian's process.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "index_rebuild.h"
#include "inttext.h"
#include "xapian_wrap.h"

#define LOCK_WAIT_DEFAULT_MS "60000"
#define SOCKET_TIMEOUT_S     "30" /* a master that stops answering is dropped and polled again */

/* "HOST:PORT" or "[V6]:PORT" into host and port; -1 after saying what is wrong. */
static int split_address(const char *key, const char *value, char *host, size_t hostlen,
                         char port[USHER_INT_TEXT_MAX])
{
    const char *colon = value != NULL ? strrchr(value, ':') : NULL;
    long long number;
    size_t len;

    if (colon == NULL || colon == value) {
        fprintf(stderr, "usherctl: [search] %s must be HOST:PORT, not '%s'\n", key,
                value != NULL ? value : "(unset)");
        return -1;
    }
    if (ctl_int(key, colon + 1, 1, 65535, &number) != 0)
        return -1;
    len = (size_t)(colon - value);
    if (value[0] == '[' && len >= 2 && value[len - 1] == ']') {
        value++;
        len -= 2;
    }
    if (len >= hostlen) {
        fprintf(stderr, "usherctl: [search] %s: host too long\n", key);
        return -1;
    }
    memcpy(host, value, len);
    host[len] = '\0';
    usher_int_text(number, port);
    return 0;
}

/* dir without trailing slashes, split into the directory above it and its name. */
static int split_index_dir(const char *dir, char *parent, char *name, size_t len)
{
    char a[4096], b[4096];
    size_t n = strlen(dir);

    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof(a) || n >= len) {
        fprintf(stderr, "usherctl: [search] index_dir '%s' is unusable\n", dir);
        return -1;
    }
    memcpy(a, dir, n);
    a[n] = '\0';
    memcpy(b, a, n + 1);
    snprintf(parent, len, "%s", dirname(a)); /* dirname and basename may write their argument */
    snprintf(name, len, "%s", basename(b));
    return 0;
}

static int exec_tool(const char *const argv[])
{
    fflush(NULL);
    execvp(argv[0], (char *const *)argv);
    fprintf(stderr, "usherctl: cannot run %s: %s (Debian package xapian-tools)\n", argv[0],
            strerror(errno));
    return 1;
}

static int serve(const usher_config *cfg)
{
    char host[256], port[USHER_INT_TEXT_MAX], parent[4096], name[4096];

    if (split_address("replication_listen", cfg->search_replication_listen, host, sizeof(host),
                      port) != 0 ||
        split_index_dir(cfg->search_index_dir, parent, name, sizeof(parent)) != 0)
        return 1;
    const char *argv[] = {
        "xapian-replicate-server", "--interface", host, "--port", port, parent, NULL
    };
    return exec_tool(argv);
}

static int replicate(const usher_config *cfg, bool once)
{
    char host[256], port[USHER_INT_TEXT_MAX], parent[4096], name[4096],
        interval[USHER_INT_TEXT_MAX];

    if (cfg->search_replica_dir == NULL) {
        fprintf(stderr, "usherctl: search replicate needs [search] replica_dir\n");
        return 1;
    }
    if (split_address("master", cfg->search_master, host, sizeof(host), port) != 0 ||
        split_index_dir(cfg->search_index_dir, parent, name, sizeof(parent)) != 0)
        return 1;
    usher_int_text(cfg->search_replicate_interval_s, interval);
    /* --reader-time 0: apply every changeset at once; searchers that were
     * reading an overwritten revision reopen and run their query again. */
    const char *argv[] = { "xapian-replicate",
                           "--host",
                           host,
                           "--port",
                           port,
                           "--master",
                           name,
                           "--interval",
                           interval,
                           "--reader-time",
                           "0",
                           "--timeout",
                           SOCKET_TIMEOUT_S,
                           once ? "--one-shot" : "--quiet",
                           cfg->search_replica_dir,
                           NULL };
    return exec_tool(argv);
}

static long long elapsed_ms(const struct timespec *since)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000LL + (now.tv_nsec - since->tv_nsec) / 1000000;
}

static int rebuild(const usher_config *cfg, const char *wait_text)
{
    size_t counts[USHER_INDEX_NSOURCES];
    usher_store *st = NULL;
    struct timespec started;
    long long wait_ms;
    char errbuf[512];
    usher_err err;

    if (ctl_int("--wait-ms", wait_text, 0, 3600000, &wait_ms) != 0)
        return 2;
    if (usher_index_keep_changesets(cfg->search_changesets, errbuf, sizeof(errbuf)) != USHER_OK ||
        usher_store_open(cfg, &st, errbuf, sizeof(errbuf)) != USHER_OK) {
        fprintf(stderr, "usherctl: search rebuild: %s\n", errbuf);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &started);
    err = usher_index_rebuild(st, cfg, (int)wait_ms, counts, errbuf, sizeof(errbuf));
    usher_store_free(st);
    if (err != USHER_OK) {
        fprintf(stderr, "usherctl: search rebuild: %s: %s\n", usher_strerror(err), errbuf);
        return 1;
    }
    printf("rebuilt %s:", cfg->search_index_dir);
    for (size_t i = 0; i < USHER_INDEX_NSOURCES; i++)
        printf(" %zu %s%s", counts[i], usher_index_sources[i].type,
               i + 1 < USHER_INDEX_NSOURCES ? "," : "");
    printf(" in %lld ms\n", elapsed_ms(&started));
    return 0;
}

int ctl_search(const usher_config *cfg, int argc, char **argv)
{
    const char *wait_ms = LOCK_WAIT_DEFAULT_MS, *what[1];
    bool once = false;
    const ctl_option opts[] = { { "--wait-ms", &wait_ms, NULL },
                                { "--once", NULL, &once },
                                { NULL, NULL, NULL } };

    if (ctl_parse(argc, argv, opts, what, 1) != 1) {
        fprintf(stderr, "usherctl: search rebuild|serve|replicate\n");
        return 2;
    }
    if (strcmp(what[0], "rebuild") == 0)
        return rebuild(cfg, wait_ms);
    if (strcmp(what[0], "serve") == 0)
        return serve(cfg);
    if (strcmp(what[0], "replicate") == 0)
        return replicate(cfg, once);
    fprintf(stderr, "usherctl: unknown search command '%s'\n", what[0]);
    return 2;
}
