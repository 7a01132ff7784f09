/*
 * Tests of engine/config_reload.c's merge: which keys of a re-read file a
 * running configuration takes (the reloadable ones, with their old and new
 * values, secrets hidden), which it keeps and lists as needing a restart
 * (fixed keys, queues, pools and periodic jobs added, removed or changed
 * where they do not reload), kinds compared by their effective values, and
 * a kind that names a queue only a restart would declare. Each test loads
 * two files written side by side, as SIGHUP does. And conf/usher.conf says
 * "Reload: yes" or "Reload: no" above each fixed key as the table does.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_reload.h"
#include "config_values.h"

static usher_config running, fresh, merged;
static usher_config_diff diff;

static void clear_env(void)
{
    static const char *const vars[] = { "USHER_DATABASE_URL", "USHER_REDIS_URL",
                                        "USHER_SMTP_URL",     "USHER_CONFIG",
                                        "USHER_API_LISTEN",   "USHER_API_RATE_READ_PER_MINUTE" };

    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

static void cleanup(void)
{
    usher_config_free(&running);
    usher_config_free(&fresh);
    usher_config_free(&merged);
    usher_config_diff_release(&diff);
}

TestSuite(config_reload, .init = clear_env, .fini = cleanup);

static void load_text(usher_config *cfg, const char *text)
{
    char path[64] = "/tmp/usher-test-reload-XXXXXX", err[512];
    int fd = mkstemp(path);
    size_t len = strlen(text);

    cr_assert_geq(fd, 0, "mkstemp failed");
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    cr_assert_eq(close(fd), 0);
    cr_assert_eq(usher_config_load(cfg, path, err, sizeof(err)), USHER_OK, "load: %s", err);
    unlink(path);
}

/* Loads both files and merges them into merged and diff. */
static void merge_texts(const char *before, const char *after)
{
    load_text(&running, before);
    load_text(&fresh, after);
    cr_assert_eq(usher_config_merge(&running, &fresh, &merged, &diff), USHER_OK);
}

static const usher_config_change *applied(const char *key)
{
    for (size_t i = 0; i < diff.napplied; i++) {
        if (strcmp(diff.applied[i].key, key) == 0)
            return &diff.applied[i];
    }
    return NULL;
}

static const usher_config_change *refused(const char *key)
{
    for (size_t i = 0; i < diff.nrefused; i++) {
        if (strcmp(diff.refused[i].key, key) == 0)
            return &diff.refused[i];
    }
    return NULL;
}

static void assert_applied(const char *key, const char *from, const char *to)
{
    const usher_config_change *c = applied(key);

    cr_assert_not_null(c, "%s was not applied", key);
    cr_assert_str_eq(c->from, from, "%s", key);
    cr_assert_str_eq(c->to, to, "%s", key);
}

static void assert_refused(const char *key, const char *what)
{
    const usher_config_change *c = refused(key);

    cr_assert_not_null(c, "%s was not refused", key);
    cr_assert_str_eq(c->what, what, "%s", key);
}

/* A change a diff lists: applied from -> to, or refused (what). */
typedef struct change {
    const char *key, *from, *to, *what;
} change;

#define APPLIED(key, from, to) ((change){ (key), (from), (to), NULL })
#define REFUSED(key, what)     ((change){ (key), NULL, NULL, (what) })
#define DIFF(...)              ((const change[]){ __VA_ARGS__, { NULL } })
#define NO_CHANGE              ((const change[]){ { NULL } })

/* The diff lists exactly these changes (a list ended by a NULL key), in any order. */
static void assert_diff(const change *want)
{
    size_t napplied = 0, nrefused = 0;

    for (const change *c = want; c->key != NULL; c++) {
        if (c->what != NULL) {
            assert_refused(c->key, c->what);
            nrefused++;
        } else {
            assert_applied(c->key, c->from, c->to);
            napplied++;
        }
    }
    cr_assert_eq(diff.napplied, napplied);
    cr_assert_eq(diff.nrefused, nrefused);
}

#define POOLS "[pool.p]\nmax = 4\n[queue.q]\npool = p\n"

Test(config_reload, an_unchanged_file_changes_nothing)
{
    merge_texts(POOLS "[log]\nlevel = info\n", POOLS "[log]\nlevel = info\n");
    assert_diff(NO_CHANGE);
    cr_assert_str_eq(merged.database_url, running.database_url);
    cr_assert_neq(merged.database_url, running.database_url, "a copy, not the running string");
    cr_assert_str_eq(merged.path, running.path);
}

Test(config_reload, reloadable_keys_take_the_new_value)
{
    merge_texts(POOLS "[log]\nlevel = info\n[api]\nrate_read_per_minute = 6000\n"
                      "[engine]\npoll_interval_ms = 1000\n",
                POOLS "[log]\nlevel = debug\n[api]\nrate_read_per_minute = 60\n"
                      "[engine]\npoll_interval_ms = 250\n");
    assert_diff(DIFF(APPLIED("[log] level", "info", "debug"),
                     APPLIED("[api] rate_read_per_minute", "6000", "60"),
                     APPLIED("[engine] poll_interval_ms", "1000", "250")));
    cr_assert_eq(merged.log_level, 7);
    cr_assert_eq(merged.api_rate_read_per_minute, 60);
    cr_assert_eq(merged.poll_interval_ms, 250);
}

Test(config_reload, other_keys_keep_the_running_value_and_need_a_restart)
{
    merge_texts(POOLS "[api]\nlisten = 127.0.0.1:1000\nthreads = 2\n"
                      "[database]\nurl = postgresql://a:secret1@h/db\n",
                POOLS "[api]\nlisten = 127.0.0.1:2000\nthreads = 4\n"
                      "[database]\nurl = postgresql://a:secret2@h/db\n");
    assert_diff(DIFF(REFUSED("[api] listen", "changed in"), REFUSED("[api] threads", "changed in"),
                     REFUSED("[database] url", "changed in")));
    cr_assert_str_eq(merged.api_listen, "127.0.0.1:1000");
    cr_assert_eq(merged.api_threads, 2);
    cr_assert_str_eq(merged.database_url, "postgresql://a:secret1@h/db");
}

Test(config_reload, a_mixed_file_applies_one_and_keeps_the_other)
{
    merge_texts(POOLS "[api]\nlisten = 127.0.0.1:1000\ncache_event_ttl_s = 5\n",
                POOLS "[api]\nlisten = 127.0.0.1:2000\ncache_event_ttl_s = 9\n");
    assert_diff(
        DIFF(APPLIED("[api] cache_event_ttl_s", "5", "9"), REFUSED("[api] listen", "changed in")));
    cr_assert_eq(merged.api_cache_event_ttl_s, 9);
    cr_assert_str_eq(merged.api_listen, "127.0.0.1:1000");
}

Test(config_reload, pool_keys_reload_except_those_read_at_start)
{
    merge_texts("[pool.p]\nmax = 4\nsmtp_rate = 5\nprefetch = 0\nmetrics_port = 0\n"
                "protect = 2026-12-01T09:00:00Z/2026-12-01T12:00:00Z\n[queue.q]\npool = p\n",
                "[pool.p]\nmax = 8\nsmtp_rate = 7\nprefetch = 3\nmetrics_port = 9100\n"
                "protect = 2026-12-02T09:00:00Z/2026-12-02T10:00:00Z\n[queue.q]\npool = p\n");
    assert_diff(DIFF(APPLIED("[pool.p] max", "4", "8"), APPLIED("[pool.p] smtp_rate", "5", "7"),
                     APPLIED("[pool.p] protect", "2026-12-01T09:00:00Z/2026-12-01T12:00:00Z",
                             "2026-12-02T09:00:00Z/2026-12-02T10:00:00Z"),
                     REFUSED("[pool.p] prefetch", "changed in"),
                     REFUSED("[pool.p] metrics_port", "changed in")));
    cr_assert_eq(merged.pools[0].max, 8);
    cr_assert_eq(merged.pools[0].smtp_rate, 7);
    cr_assert_eq(merged.pools[0].protect.count, 1);
    cr_assert_eq(merged.pools[0].prefetch, 0);
    cr_assert_eq(merged.pools[0].metrics_port, 0);
}

Test(config_reload, pools_queues_and_periodics_added_or_removed_need_a_restart)
{
    merge_texts("[pool.p]\n[pool.old]\n[queue.q]\npool = p\n[queue.gone]\npool = old\n"
                "[periodic.nightly]\ncron = 0 3 * * *\nqueue = q\nkind = k\n",
                "[pool.p]\n[pool.new]\n[queue.q]\npool = new\n[queue.added]\npool = p\n"
                "[periodic.nightly]\ncron = 0 4 * * *\nqueue = q\nkind = k\n"
                "[periodic.hourly]\ncron = 0 * * * *\nqueue = q\nkind = k\n");
    assert_diff(DIFF(REFUSED("[pool.old]", "removed from"), REFUSED("[pool.new]", "added to"),
                     REFUSED("[queue.q] pool", "changed in"),
                     REFUSED("[queue.gone]", "removed from"), REFUSED("[queue.added]", "added to"),
                     REFUSED("[periodic.nightly] cron", "changed in"),
                     REFUSED("[periodic.hourly]", "added to")));
    cr_assert_eq(merged.npools, 2);
    cr_assert_str_eq(merged.pools[1].name, "old");
    cr_assert_eq(merged.nqueues, 2);
    cr_assert_str_eq(usher_config_queue(&merged, "q")->pool, "p");
    cr_assert_eq(merged.nperiodics, 1);
    cr_assert_str_eq(merged.periodics[0].cron.text, "0 3 * * *");
    cr_assert_str_eq(merged.periodics[0].payload, "{}");
    cr_assert_neq(merged.periodics[0].payload, running.periodics[0].payload);
}

Test(config_reload, kinds_reload_by_their_effective_values)
{
    merge_texts(POOLS "[defaults]\nmax_attempts = 20\n[kind.a]\nqueue = q\nmax_attempts = 3\n"
                      "[kind.b]\ntimeout_ms = 5000\n",
                POOLS "[defaults]\nmax_attempts = 10\n[kind.a]\nqueue = q\nmax_attempts = 3\n"
                      "[kind.c]\npriority = 0\n");
    /* a keeps its own 3; b is gone, so it falls back to [defaults]; c is new */
    cr_assert_null(applied("[kind.a] max_attempts"));
    assert_diff(DIFF(APPLIED("[defaults] max_attempts", "20", "10"),
                     APPLIED("[kind.b] timeout_ms", "5000", "60000"),
                     APPLIED("[kind.b] max_attempts", "20", "10"),
                     APPLIED("[kind.c] priority", "1", "0"),
                     APPLIED("[kind.c] max_attempts", "20", "10")));
    cr_assert_eq(merged.nkinds, 2);
    cr_assert_eq(usher_config_kind(&merged, "b")->timeout_ms, 60000);
    cr_assert_eq(usher_config_kind(&merged, "c")->priority, 0);
}

Test(config_reload, a_kind_may_not_move_to_a_queue_that_needs_a_restart)
{
    merge_texts(POOLS "[kind.a]\nqueue = q\npriority = 2\n",
                POOLS "[queue.new]\npool = p\n[kind.a]\nqueue = new\npriority = 0\n");
    assert_diff(DIFF(REFUSED("[queue.new]", "added to"), REFUSED("[kind.a] queue", "changed in"),
                     APPLIED("[kind.a] priority", "2", "0")));
    cr_assert_str_eq(usher_config_kind(&merged, "a")->queue, "q");
    cr_assert_eq(usher_config_kind(&merged, "a")->priority, 0);
}

Test(config_reload, secrets_are_never_printed)
{
    usher_config_change c = { 0 };

    merge_texts(POOLS "[smtp]\npassword = one\nfrom_name = A\n",
                POOLS "[smtp]\npassword = two\nfrom_name = B\n");
    assert_refused("[smtp] password", "changed in");
    assert_applied("[smtp] from_name", "A", "B");
    for (size_t i = 0; i < diff.nrefused; i++) {
        c = diff.refused[i];
        cr_assert_str_empty(c.from);
        cr_assert_str_empty(c.to);
    }
    cr_assert_str_eq(merged.smtp_password, "one");
}

Test(config_reload, long_values_are_cut_with_an_ellipsis)
{
    char before[512], after[512], name[200];

    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    snprintf(before, sizeof(before), POOLS "[smtp]\nfrom_name = A\n");
    snprintf(after, sizeof(after), POOLS "[smtp]\nfrom_name = %.180s\n", name);
    merge_texts(before, after);
    cr_assert_eq(strlen(applied("[smtp] from_name")->to), USHER_RELOAD_VALUE_MAX - 1);
    cr_assert_str_eq(applied("[smtp] from_name")->to + USHER_RELOAD_VALUE_MAX - 4, "...");
    cr_assert_eq(strlen(merged.smtp_from_name), 180, "the value itself is whole");
}

Test(config_reload, a_copy_is_deep_and_whole)
{
    usher_config copy;

    load_text(&running, POOLS "[periodic.n]\ncron = 0 3 * * *\nqueue = q\nkind = k\n"
                              "payload = {\"a\":1}\n[kind.k]\nqueue = q\n");
    cr_assert_eq(usher_config_copy(&running, &copy), USHER_OK);
    cr_assert_str_eq(copy.periodics[0].payload, "{\"a\":1}");
    cr_assert_neq(copy.periodics[0].payload, running.periodics[0].payload);
    cr_assert_neq(copy.kinds, running.kinds);
    cr_assert_str_eq(copy.kinds[0].queue, "q");
    cr_assert_neq(copy.smtp_url, running.smtp_url);
    cr_assert_str_eq(copy.smtp_url, running.smtp_url);
    cr_assert_null(copy.smtp_password);
    usher_config_free(&copy);
}

/* The comment block (up to a blank line) above the line that sets key in [section] of text. */
static bool comment_of(const char *text, const char *section, const char *key, char *out,
                       size_t len)
{
    char header[96], setting[96], commented[96];
    const char *at = NULL, *line, *start;

    snprintf(header, sizeof(header), "\n[%s]\n", section);
    snprintf(setting, sizeof(setting), "\n%s = ", key);
    snprintf(commented, sizeof(commented), "\n# %s = ", key);
    line = strstr(text, header);
    if (line == NULL)
        return false;
    for (const char *p = line + 1; *p != '\0' && at == NULL; p = strchr(p, '\n') + 1) {
        if (p != line + 1 && *p == '[')
            break; /* the next section */
        if (strncmp(p - 1, setting, strlen(setting)) == 0 ||
            strncmp(p - 1, commented, strlen(commented)) == 0)
            at = p;
        if (strchr(p, '\n') == NULL)
            break;
    }
    if (at == NULL)
        return false;
    for (start = at; start > text + 1 && !(start[-1] == '\n' && start[-2] == '\n'); start--)
        ;
    snprintf(out, len, "%.*s", (int)(at - start), start);
    return true;
}

Test(config_reload, the_shipped_file_says_which_keys_reload_as_the_table_does)
{
    FILE *f = fopen(USHER_SOURCE_DIR "/conf/usher.conf", "r");
    static char text[200000];
    size_t n;

    cr_assert_not_null(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    for (size_t i = 0; i < usher_nsettings; i++) {
        const usher_setting *s = &usher_settings[i];
        char block[4096];
        const char *says;

        cr_assert(comment_of(text, s->section, s->key, block, sizeof(block)),
                  "[%s] %s is not in conf/usher.conf", s->section, s->key);
        says = s->reloadable ? "Reload: yes" : "Reload: no";
        cr_assert_not_null(strstr(block, says), "[%s] %s: the table says \"%s\", the file:\n%s",
                           s->section, s->key, says, block);
    }
}
