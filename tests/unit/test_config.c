/*
 * Tests of engine/config.c: the built-in defaults, the shipped
 * conf/usher.conf, inheritance from [defaults], pool defaults that follow
 * the tiers, protection windows, periodic jobs, environment overrides, and every refusal with its
 * exact "FILE:LINE: reason". Each test writes the configuration it needs into a mkstemp file, so
 * the text and the line numbers it expects sit side by side; the suite's fini removes the file.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "install_paths.h"
#include "migrate.h"

#define SHIPPED_CONF USHER_SOURCE_DIR "/conf/usher.conf"

static char conf_path[64];

static void clear_env(void)
{
    unsetenv("USHER_DATABASE_URL");
    unsetenv("USHER_REDIS_URL");
    unsetenv("USHER_SMTP_URL");
    unsetenv("USHER_CONFIG");
}

static void cleanup(void)
{
    if (conf_path[0] != '\0')
        unlink(conf_path);
    conf_path[0] = '\0';
    clear_env();
}

TestSuite(config, .init = clear_env, .fini = cleanup);

/* Writes text to a fresh temporary file, replacing the last; its name is left in conf_path. */
static void write_conf(const char *text)
{
    size_t len = strlen(text);
    int fd;

    if (conf_path[0] != '\0')
        unlink(conf_path); /* the previous file of this test */
    snprintf(conf_path, sizeof(conf_path), "/tmp/usher-test-config-XXXXXX");
    fd = mkstemp(conf_path);
    cr_assert_geq(fd, 0, "mkstemp failed");
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    cr_assert_eq(close(fd), 0);
}

static void load_ok(usher_config *cfg, const char *text)
{
    char err[512];
    usher_err rc;

    write_conf(text);
    rc = usher_config_load(cfg, conf_path, err, sizeof(err));
    cr_assert_eq(rc, USHER_OK, "load failed: %s", err);
}

static void assert_empty(const usher_config *cfg)
{
    cr_assert_null(cfg->path);
    cr_assert_null(cfg->database_url);
    cr_assert_null(cfg->redis_url);
    cr_assert_null(cfg->smtp_url);
    cr_assert_null(cfg->queues);
    cr_assert_null(cfg->kinds);
    cr_assert_null(cfg->pools);
    cr_assert_null(cfg->periodics);
    cr_assert_eq(cfg->nperiodics, 0);
    cr_assert_eq(cfg->nqueues, 0);
    cr_assert_eq(cfg->nkinds, 0);
    cr_assert_eq(cfg->npools, 0);
    cr_assert_eq(cfg->payload_max_bytes, 0);
}

/* Loading text fails with exactly "PATH:line: reason" and leaves cfg empty. */
static void expect_refusal(const char *text, int line, const char *reason)
{
    usher_config cfg;
    char err[512], expected[512];

    memset(&cfg, 0xab, sizeof(cfg)); /* whatever was there must not survive */
    write_conf(text);
    cr_assert_eq(usher_config_load(&cfg, conf_path, err, sizeof(err)), USHER_ERR_CONFIG,
                 "accepted:\n%s", text);
    snprintf(expected, sizeof(expected), "%s:%d: %s", conf_path, line, reason);
    cr_assert_str_eq(err, expected);
    assert_empty(&cfg);
}

/* ---- defaults and the shipped file --------------------------------------- */

Test(config, without_a_file_gives_the_builtin_defaults)
{
    usher_config cfg;
    char err[256] = "untouched";

    cr_assert_eq(usher_config_load(&cfg, NULL, err, sizeof(err)), USHER_OK);
    cr_assert_str_empty(err);
    cr_assert_null(cfg.path);
    cr_assert_str_eq(cfg.database_url, "postgresql://postgres@127.0.0.1:55432/usher");
    cr_assert_str_eq(cfg.redis_url, "redis://127.0.0.1:56379/0");
    cr_assert_str_eq(cfg.smtp_url, "smtp://127.0.0.1:52525");
    cr_assert_eq(cfg.log_level, 6);
    cr_assert_eq(cfg.payload_max_bytes, 65536);
    cr_assert_eq(cfg.notify_debounce_ms, 2);
    cr_assert_eq(cfg.poll_interval_ms, 1000);
    cr_assert_eq(cfg.lease_grace_ms, 30000);
    cr_assert_eq(cfg.dead_retention_hours, 336);
    cr_assert_eq(cfg.stats_retention_hours, 48);
    cr_assert_eq(cfg.retention_interval_minutes, 60);
    cr_assert_eq(cfg.retention_partitions_ahead, 7);
    cr_assert_eq(cfg.retention_webhook_days, 30);
    cr_assert_eq(cfg.retention_reporting_days, 90);
    cr_assert_eq(cfg.retention_document_days, 60);
    cr_assert_eq(cfg.retention_effects_days, 45);
    cr_assert_str_empty(cfg.defaults.name);
    cr_assert_str_empty(cfg.defaults.queue);
    cr_assert_eq(cfg.defaults.priority, 1);
    cr_assert_eq(cfg.defaults.max_attempts, 20);
    cr_assert_eq(cfg.defaults.timeout_ms, 60000);
    cr_assert_eq(cfg.defaults.backoff_base_ms, 1000);
    cr_assert_eq(cfg.defaults.backoff_cap_ms, 3600000);
    cr_assert_eq(cfg.nqueues, 0);
    cr_assert_eq(cfg.nkinds, 0);
    cr_assert_eq(cfg.npools, 0);
    usher_config_free(&cfg);
}

Test(config, unknown_kind_gets_the_defaults_and_unknown_queue_or_pool_gets_null)
{
    usher_config cfg;

    cr_assert_eq(usher_config_load(&cfg, NULL, NULL, 0), USHER_OK);
    cr_assert_eq(usher_config_kind(&cfg, "email.send"), &cfg.defaults);
    cr_assert_eq(usher_config_kind(&cfg, NULL), &cfg.defaults);
    cr_assert_null(usher_config_queue(&cfg, "email"));
    cr_assert_null(usher_config_pool(&cfg, "standard"));
    cr_assert_null(usher_config_pool(&cfg, NULL));
    usher_config_free(&cfg);
}

static void assert_kind(const usher_config *cfg, const char *name, const char *queue, int priority,
                        int max_attempts, int timeout_ms, int base_ms, int cap_ms)
{
    const usher_kind_conf *k = usher_config_kind(cfg, name);

    cr_assert_neq(k, &cfg->defaults, "kind %s is not configured", name);
    cr_assert_str_eq(k->name, name);
    cr_assert_str_eq(k->queue, queue, "kind %s", name);
    cr_assert_eq(k->priority, priority, "kind %s", name);
    cr_assert_eq(k->max_attempts, max_attempts, "kind %s", name);
    cr_assert_eq(k->timeout_ms, timeout_ms, "kind %s", name);
    cr_assert_eq(k->backoff_base_ms, base_ms, "kind %s", name);
    cr_assert_eq(k->backoff_cap_ms, cap_ms, "kind %s", name);
}

static void assert_pool(const usher_config *cfg, const char *queue, const char *pool)
{
    const usher_queue_conf *q = usher_config_queue(cfg, queue);

    cr_assert_not_null(q, "queue %s is not declared", queue);
    cr_assert_str_eq(q->pool, pool, "queue %s", queue);
}

Test(config, shipped_file_loads_with_the_seed_priorities)
{
    usher_config cfg;
    char err[512];

    cr_assert_eq(usher_config_load(&cfg, SHIPPED_CONF, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_str_eq(cfg.path, SHIPPED_CONF);
    cr_assert_eq(cfg.nkinds, 13);
    assert_kind(&cfg, "notify.webhook", "notifications", 0, 25, 30000, 1000, 3600000);
    assert_kind(&cfg, "notify.inbox", "notifications", 0, 25, 30000, 1000, 3600000);
    assert_kind(&cfg, "email.send", "email", 1, 20, 60000, 5000, 3600000);
    assert_kind(&cfg, "pdf.ticket", "pdf", 1, 20, 60000, 1000, 3600000);
    assert_kind(&cfg, "pdf.badge", "pdf", 1, 20, 60000, 1000, 3600000);
    assert_kind(&cfg, "index.document", "index", 1, 20, 60000, 1000, 3600000);
    assert_kind(&cfg, "report.attendees", "reports", 2, 5, 600000, 1000, 3600000);
    assert_kind(&cfg, "report.checkins", "reports", 2, 5, 600000, 1000, 3600000);
    assert_kind(&cfg, "analytics.rollup", "analytics", 2, 20, 60000, 1000, 3600000);
    assert_kind(&cfg, "message.fanout", "notifications", 2, 20, 60000, 1000, 3600000);
    assert_kind(&cfg, "schedule.fire", "notifications", 0, 20, 60000, 1000, 3600000);
    assert_kind(&cfg, "test.noop", "default", 1, 20, 60000, 1000, 3600000);
    assert_kind(&cfg, "test.fail", "default", 1, 20, 60000, 1000, 3600000);
    usher_config_free(&cfg);
}

Test(config, shipped_file_declares_the_seed_queues_on_their_pools)
{
    usher_config cfg;
    char err[512];

    cr_assert_eq(usher_config_load(&cfg, SHIPPED_CONF, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_eq(cfg.nqueues, 8);
    assert_pool(&cfg, "notifications", "realtime");
    assert_pool(&cfg, "email", "standard");
    assert_pool(&cfg, "pdf", "standard");
    assert_pool(&cfg, "index", "standard");
    assert_pool(&cfg, "reports", "batch");
    assert_pool(&cfg, "analytics", "batch");
    assert_pool(&cfg, "media", "batch");
    assert_pool(&cfg, "default", "standard");
    usher_config_free(&cfg);
}

/* The fields of a pool that the tiers decide. */
typedef struct pool_sizes {
    int tier, event_tier, min, max, initial, scale_out_depth, scale_in_depth;
} pool_sizes;

static void assert_pool_sizes(const usher_config *cfg, const char *name, pool_sizes want)
{
    const usher_pool_conf *pool = usher_config_pool(cfg, name);

    cr_assert_not_null(pool, "pool %s is not declared", name);
    cr_assert_str_eq(pool->name, name);
    cr_assert_eq(pool->tier, want.tier, "pool %s", name);
    cr_assert_eq(pool->event_tier, want.event_tier, "pool %s", name);
    cr_assert_eq(pool->min, want.min, "pool %s", name);
    cr_assert_eq(pool->max, want.max, "pool %s", name);
    cr_assert_eq(pool->initial, want.initial, "pool %s", name);
    cr_assert_eq(pool->scale_out_depth, want.scale_out_depth, "pool %s", name);
    cr_assert_eq(pool->scale_in_depth, want.scale_in_depth, "pool %s", name);
}

/* The fields no tier decides hold their built-in defaults. */
static void assert_pool_timings_are_defaults(const usher_pool_conf *pool)
{
    cr_assert_eq(pool->sustain_ms, 30000);
    cr_assert_eq(pool->scale_out_per_minute, 5);
    cr_assert_eq(pool->scale_in_interval_ms, 300000);
    cr_assert_eq(pool->protect.count, 0);
    cr_assert_str_empty(pool->downstream);
    cr_assert_eq(pool->downstream_limit, 0);
    cr_assert_eq(pool->shutdown_grace_ms, 30000);
    cr_assert_eq(pool->claim_batch, 100);
    cr_assert_eq(pool->metrics_port, 0);
    cr_assert_eq(pool->heartbeat_ms, 10000);
}

Test(config, shipped_file_declares_the_three_pools_on_the_seed_tiers)
{
    usher_config cfg;
    char err[512];

    cr_assert_eq(usher_config_load(&cfg, SHIPPED_CONF, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_eq(cfg.npools, 3);
    assert_pool_sizes(&cfg, "realtime",
                      (pool_sizes){ USHER_TIER_HIGH, USHER_EVENT_SMALL, 2, 10, 2, 100, 10 });
    assert_pool_sizes(&cfg, "standard",
                      (pool_sizes){ USHER_TIER_MEDIUM, USHER_EVENT_SMALL, 1, 10, 1, 500, 50 });
    assert_pool_sizes(&cfg, "batch",
                      (pool_sizes){ USHER_TIER_LOW, USHER_EVENT_SMALL, 1, 10, 1, 1000, 100 });
    for (size_t i = 0; i < cfg.npools; i++)
        assert_pool_timings_are_defaults(&cfg.pools[i]);
    for (size_t i = 0; i < cfg.nqueues; i++)
        cr_assert_not_null(usher_config_pool(&cfg, cfg.queues[i].pool), "queue %s",
                           cfg.queues[i].name);
    usher_config_free(&cfg);
}

Test(config, shipped_file_repeats_the_builtin_defaults)
{
    usher_config shipped, builtin;

    cr_assert_eq(usher_config_load(&shipped, SHIPPED_CONF, NULL, 0), USHER_OK);
    cr_assert_eq(usher_config_load(&builtin, NULL, NULL, 0), USHER_OK);
    cr_assert_str_eq(shipped.database_url, builtin.database_url);
    cr_assert_str_eq(shipped.redis_url, builtin.redis_url);
    cr_assert_str_eq(shipped.smtp_url, builtin.smtp_url);
    cr_assert_eq(shipped.log_level, builtin.log_level);
    cr_assert_eq(shipped.payload_max_bytes, builtin.payload_max_bytes);
    cr_assert_eq(shipped.notify_debounce_ms, builtin.notify_debounce_ms);
    cr_assert_eq(shipped.poll_interval_ms, builtin.poll_interval_ms);
    cr_assert_eq(shipped.lease_grace_ms, builtin.lease_grace_ms);
    cr_assert_eq(shipped.dead_retention_hours, builtin.dead_retention_hours);
    cr_assert_eq(shipped.stats_retention_hours, builtin.stats_retention_hours);
    cr_assert_eq(shipped.retention_interval_minutes, builtin.retention_interval_minutes);
    cr_assert_eq(shipped.retention_partitions_ahead, builtin.retention_partitions_ahead);
    cr_assert_eq(shipped.retention_webhook_days, builtin.retention_webhook_days);
    cr_assert_eq(shipped.retention_reporting_days, builtin.retention_reporting_days);
    cr_assert_eq(shipped.retention_document_days, builtin.retention_document_days);
    cr_assert_eq(shipped.retention_effects_days, builtin.retention_effects_days);
    cr_assert_eq(memcmp(&shipped.defaults, &builtin.defaults, sizeof(shipped.defaults)), 0);
    usher_config_free(&shipped);
    usher_config_free(&builtin);
}

/* The test.* kinds crash and hang children on request: a worker runs them only when told to. */
Test(config, test_handlers_are_off_unless_a_test_configuration_turns_them_on)
{
    usher_config builtin, shipped, cfg;
    char err[512];

    cr_assert_eq(usher_config_load(&builtin, NULL, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_eq(usher_config_load(&shipped, SHIPPED_CONF, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_eq(builtin.worker_test_handlers, 0);
    cr_assert_eq(shipped.worker_test_handlers, 0);
    usher_config_free(&builtin);
    usher_config_free(&shipped);
    load_ok(&cfg, "[worker]\ntest_handlers = true\n");
    cr_assert_eq(cfg.worker_test_handlers, 1);
    usher_config_free(&cfg);
    expect_refusal("[worker]\ntest_handlers = 1\n", 2,
                   "[worker] test_handlers: '1' is not one of false, true");
}

/* ---- values from a file ---------------------------------------------------- */

Test(config, file_values_replace_the_defaults)
{
    usher_config cfg;

    load_ok(&cfg, "; a comment\n"
                  "[database]\n"
                  "url = postgresql://u:p@db.example:5432/usher?sslmode=require\n"
                  "[log]\n"
                  "level = debug\n"
                  "[engine]\n"
                  "payload_max_bytes = 64\n"
                  "notify_debounce_ms = 0\n"
                  "poll_interval_ms = 600000\n"
                  "lease_grace_ms = 0 ; inline comment\n"
                  "dead_retention_hours = 87600\n"
                  "stats_retention_hours = 1\n");
    cr_assert_str_eq(cfg.path, conf_path);
    cr_assert_str_eq(cfg.database_url, "postgresql://u:p@db.example:5432/usher?sslmode=require");
    cr_assert_str_eq(cfg.redis_url, "redis://127.0.0.1:56379/0");
    cr_assert_eq(cfg.log_level, 7);
    cr_assert_eq(cfg.payload_max_bytes, 64);
    cr_assert_eq(cfg.notify_debounce_ms, 0);
    cr_assert_eq(cfg.poll_interval_ms, 600000);
    cr_assert_eq(cfg.lease_grace_ms, 0);
    cr_assert_eq(cfg.dead_retention_hours, 87600);
    cr_assert_eq(cfg.stats_retention_hours, 1);
    usher_config_free(&cfg);
}

Test(config, every_log_level_name_maps_to_its_syslog_number)
{
    static const char *const names[] = { "err", "warning", "notice", "info", "debug" };
    char text[64];

    for (int i = 0; i < 5; i++) {
        usher_config cfg;

        snprintf(text, sizeof(text), "[log]\nlevel = %s\n", names[i]);
        load_ok(&cfg, text);
        cr_assert_eq(cfg.log_level, 3 + i, "level %s", names[i]);
        usher_config_free(&cfg);
        unlink(conf_path);
    }
}

Test(config, kind_inherits_defaults_even_when_defaults_come_later)
{
    usher_config cfg;

    load_ok(&cfg, "[queue.mail]\n"
                  "pool = standard\n"
                  "[pool.standard]\n"
                  "[kind.mail.send]\n"
                  "queue = mail\n"
                  "timeout_ms = 5000\n"
                  "[kind.bare]\n"
                  "[defaults]\n"
                  "priority = 2\n"
                  "max_attempts = 7\n"
                  "timeout_ms = 123\n"
                  "backoff_base_ms = 10\n"
                  "backoff_cap_ms = 20\n");
    assert_kind(&cfg, "mail.send", "mail", 2, 7, 5000, 10, 20);
    assert_kind(&cfg, "bare", "", 2, 7, 123, 10, 20);
    cr_assert_eq(cfg.defaults.max_attempts, 7);
    usher_config_free(&cfg);
}

Test(config, a_queues_age_budget_follows_its_pools_tier_unless_set)
{
    usher_config cfg;

    load_ok(&cfg, "[queue.hooks]\npool = rt\n"
                  "[queue.mail]\npool = std\n"
                  "[queue.reports]\npool = bulk\n"
                  "[queue.slow]\npool = std\nage_budget_s = 900\n"
                  "[pool.rt]\ntier = high\n"
                  "[pool.std]\n"
                  "[pool.bulk]\ntier = low\n");
    cr_assert_eq(usher_config_queue(&cfg, "hooks")->age_budget_s, 30);
    cr_assert_eq(usher_config_queue(&cfg, "mail")->age_budget_s, 120);
    cr_assert_eq(usher_config_queue(&cfg, "reports")->age_budget_s, 1800);
    cr_assert_eq(usher_config_queue(&cfg, "slow")->age_budget_s, 900);
    usher_config_free(&cfg);
    expect_refusal("[pool.p]\n[queue.a]\npool = p\nage_budget_s = 0\n", 4,
                   "[queue.a] age_budget_s: 0 is out of range (1..86400)");
}

Test(config, kind_keeps_its_own_values_over_defaults)
{
    usher_config cfg;

    load_ok(&cfg, "[defaults]\n"
                  "priority = 2\n"
                  "[kind.fast]\n"
                  "priority = 0\n"
                  "max_attempts = 1\n"
                  "timeout_ms = 1\n"
                  "backoff_base_ms = 0\n"
                  "backoff_cap_ms = 0\n");
    assert_kind(&cfg, "fast", "", 0, 1, 1, 0, 0);
    cr_assert_eq(cfg.defaults.priority, 2);
    usher_config_free(&cfg);
}

Test(config, kind_name_of_63_characters_is_kept_whole)
{
    /* inih alone would cut "[kind.<63 chars>]" at 49 characters */
    char name[64], text[256];
    usher_config cfg;

    memset(name, 'k', 63);
    name[63] = '\0';
    snprintf(text, sizeof(text), "[kind.%s]\npriority = 0\n", name);
    load_ok(&cfg, text);
    cr_assert_eq(cfg.nkinds, 1);
    cr_assert_str_eq(cfg.kinds[0].name, name);
    cr_assert_eq(usher_config_kind(&cfg, name)->priority, 0);
    usher_config_free(&cfg);
}

Test(config, utf8_byte_order_mark_and_empty_known_sections_are_accepted)
{
    usher_config cfg;

    load_ok(&cfg, "\xEF\xBB\xBF[engine]\n"
                  "poll_interval_ms = 10\n"
                  "[redis]\n"
                  "\n"
                  "  # an indented comment\n");
    cr_assert_eq(cfg.poll_interval_ms, 10);
    usher_config_free(&cfg);
}

/* ---- pools --------------------------------------------------------------- */

Test(config, bare_pool_takes_the_medium_tier_and_the_small_event_ceiling)
{
    usher_config cfg;

    load_ok(&cfg, "[pool.p]\n");
    cr_assert_eq(cfg.npools, 1);
    assert_pool_sizes(&cfg, "p",
                      (pool_sizes){ USHER_TIER_MEDIUM, USHER_EVENT_SMALL, 1, 10, 1, 500, 50 });
    assert_pool_timings_are_defaults(&cfg.pools[0]);
    usher_config_free(&cfg);
}

Test(config, pool_tier_picks_the_seed_thresholds_and_the_high_tier_floor_of_2)
{
    usher_config cfg;

    load_ok(&cfg, "[pool.hi]\ntier = high\n"
                  "[pool.mid]\ntier = medium\n"
                  "[pool.lo]\ntier = low\n");
    assert_pool_sizes(&cfg, "hi",
                      (pool_sizes){ USHER_TIER_HIGH, USHER_EVENT_SMALL, 2, 10, 2, 100, 10 });
    assert_pool_sizes(&cfg, "mid",
                      (pool_sizes){ USHER_TIER_MEDIUM, USHER_EVENT_SMALL, 1, 10, 1, 500, 50 });
    assert_pool_sizes(&cfg, "lo",
                      (pool_sizes){ USHER_TIER_LOW, USHER_EVENT_SMALL, 1, 10, 1, 1000, 100 });
    usher_config_free(&cfg);
}

Test(config, pool_event_tier_picks_the_ceiling)
{
    static const char *const names[] = { "small", "medium", "large", "mega" };
    static const int ceilings[] = { 10, 50, 200, 500 };
    char text[64];

    for (int i = 0; i < 4; i++) {
        usher_config cfg;

        snprintf(text, sizeof(text), "[pool.p]\nevent_tier = %s\n", names[i]);
        load_ok(&cfg, text);
        cr_assert_eq(cfg.pools[0].event_tier, i, "event_tier %s", names[i]);
        cr_assert_eq(cfg.pools[0].max, ceilings[i], "event_tier %s", names[i]);
        usher_config_free(&cfg);
        unlink(conf_path);
    }
}

Test(config, pool_keys_replace_the_tier_defaults)
{
    usher_config cfg;
    const usher_pool_conf *pool;

    load_ok(&cfg, "[pool.mail]\n"
                  "tier = high\n"
                  "event_tier = mega\n"
                  "min = 0\n"
                  "max = 1000\n"
                  "initial = 3\n"
                  "scale_out_depth = 7\n"
                  "scale_in_depth = 6\n"
                  "sustain_ms = 0\n"
                  "scale_out_per_minute = 1000\n"
                  "scale_in_interval_ms = 0\n"
                  "downstream = smtp\n"
                  "downstream_limit = 20\n"
                  "shutdown_grace_ms = 3600000\n"
                  "claim_batch = 1\n"
                  "metrics_port = 9187\n"
                  "heartbeat_ms = 100\n");
    assert_pool_sizes(&cfg, "mail",
                      (pool_sizes){ USHER_TIER_HIGH, USHER_EVENT_MEGA, 0, 1000, 3, 7, 6 });
    pool = usher_config_pool(&cfg, "mail");
    cr_assert_eq(pool->sustain_ms, 0);
    cr_assert_eq(pool->scale_out_per_minute, 1000);
    cr_assert_eq(pool->scale_in_interval_ms, 0);
    cr_assert_str_eq(pool->downstream, "smtp");
    cr_assert_eq(pool->downstream_limit, 20);
    cr_assert_eq(pool->shutdown_grace_ms, 3600000);
    cr_assert_eq(pool->claim_batch, 1);
    cr_assert_eq(pool->metrics_port, 9187);
    cr_assert_eq(pool->heartbeat_ms, 100);
    usher_config_free(&cfg);
}

Test(config, pool_initial_follows_an_explicit_min)
{
    usher_config cfg;

    load_ok(&cfg, "[pool.p]\nmin = 4\n");
    assert_pool_sizes(&cfg, "p",
                      (pool_sizes){ USHER_TIER_MEDIUM, USHER_EVENT_SMALL, 4, 10, 4, 500, 50 });
    usher_config_free(&cfg);
}

Test(config, a_pool_that_sets_neither_prefetch_nor_child_queue_adapts_up_to_its_maxima)
{
    usher_config cfg;
    const usher_pool_conf *pool;

    load_ok(&cfg, "[pool.auto]\n[pool.batch]\nclaim_batch = 50\n[pool.fixed]\nchild_queue = 4\n"
                  "[pool.ahead]\nprefetch = 8\n");
    pool = usher_config_pool(&cfg, "auto");
    cr_assert(pool->adaptive);
    cr_assert(pool->claim_window);
    cr_assert_eq(pool->prefetch, USHER_ADAPTIVE_PREFETCH);
    cr_assert_eq(pool->child_queue, USHER_ADAPTIVE_CHILD_QUEUE);
    cr_assert_eq(pool->claim_batch, 100);
    pool = usher_config_pool(&cfg, "batch");
    cr_assert(pool->adaptive);
    cr_assert_not(pool->claim_window, "an explicit claim_batch caps the claims");
    pool = usher_config_pool(&cfg, "fixed");
    cr_assert_not(pool->adaptive);
    cr_assert_not(pool->claim_window);
    cr_assert_eq(pool->prefetch, 0);
    cr_assert_eq(pool->child_queue, 4);
    pool = usher_config_pool(&cfg, "ahead");
    cr_assert_not(pool->adaptive);
    cr_assert_eq(pool->prefetch, 8);
    cr_assert_eq(pool->child_queue, 1);
    usher_config_free(&cfg);
}

Test(config, protect_windows_become_epoch_milliseconds)
{
    usher_config cfg;
    const usher_windows *w;

    load_ok(&cfg, "[pool.p]\n"
                  "protect = 2026-12-01T09:00:00Z/2026-12-01T12:00:00Z,"
                  "2027-01-01T00:00:00Z/2027-01-01T00:00:01Z , "
                  "2028-02-29T23:59:59Z/2028-03-01T00:00:00Z\n");
    w = &cfg.pools[0].protect;
    cr_assert_eq(w->count, 3);
    cr_assert_eq(w->window[0].start_ms, INT64_C(1796115600000));
    cr_assert_eq(w->window[0].end_ms, INT64_C(1796126400000));
    cr_assert_eq(w->window[1].start_ms, INT64_C(1798761600000));
    cr_assert_eq(w->window[1].end_ms, INT64_C(1798761601000));
    cr_assert_eq(w->window[2].start_ms, INT64_C(1835481599000), "2028 is a leap year");
    cr_assert_eq(w->window[2].end_ms, INT64_C(1835481600000));
    usher_config_free(&cfg);
}

Test(config, protect_takes_four_windows_and_an_empty_value_means_none)
{
    usher_config cfg;

    load_ok(&cfg, "[pool.p]\n"
                  "protect = 2026-12-01T09:00:00Z/2026-12-01T12:00:00Z,"
                  "2026-12-02T09:00:00Z/2026-12-02T12:00:00Z,"
                  "2026-12-03T09:00:00Z/2026-12-03T12:00:00Z,"
                  "2026-12-04T09:00:00Z/2026-12-04T12:00:00Z\n"
                  "[pool.q]\n"
                  "protect =\n");
    cr_assert_eq(usher_config_pool(&cfg, "p")->protect.count, 4);
    cr_assert_eq(usher_config_pool(&cfg, "p")->protect.window[3].end_ms,
                 INT64_C(1796126400000) + 3 * INT64_C(86400000));
    cr_assert_eq(usher_config_pool(&cfg, "q")->protect.count, 0);
    usher_config_free(&cfg);
}

/* ---- environment --------------------------------------------------------- */

Test(config, env_overrides_beat_the_file)
{
    usher_config cfg;

    cr_assert_eq(setenv("USHER_DATABASE_URL", "postgresql://env/db", 1), 0);
    cr_assert_eq(setenv("USHER_REDIS_URL", "redis://env:6379/3", 1), 0);
    cr_assert_eq(setenv("USHER_SMTP_URL", "smtp://env:25", 1), 0);
    load_ok(&cfg, "[database]\nurl = postgresql://file/db\n"
                  "[redis]\nurl = redis://file:6379/0\n"
                  "[smtp]\nurl = smtp://file:25\n");
    cr_assert_str_eq(cfg.database_url, "postgresql://env/db");
    cr_assert_str_eq(cfg.redis_url, "redis://env:6379/3");
    cr_assert_str_eq(cfg.smtp_url, "smtp://env:25");
    usher_config_free(&cfg);
}

Test(config, empty_env_value_leaves_the_file_value)
{
    usher_config cfg;

    cr_assert_eq(setenv("USHER_DATABASE_URL", "", 1), 0);
    load_ok(&cfg, "[database]\nurl = postgresql://file/db\n");
    cr_assert_str_eq(cfg.database_url, "postgresql://file/db");
    usher_config_free(&cfg);
}

Test(config, env_overrides_apply_without_a_file)
{
    usher_config cfg;

    cr_assert_eq(setenv("USHER_SMTP_URL", "smtp://mail.example:587", 1), 0);
    cr_assert_eq(usher_config_load(&cfg, NULL, NULL, 0), USHER_OK);
    cr_assert_str_eq(cfg.smtp_url, "smtp://mail.example:587");
    cr_assert_str_eq(cfg.database_url, "postgresql://postgres@127.0.0.1:55432/usher");
    usher_config_free(&cfg);
}

Test(config, default_path_prefers_usher_config_then_the_installed_file)
{
    cr_assert_str_eq(usher_config_default_path(), USHER_CONF_DIR "/usher.conf");
    cr_assert_eq(setenv("USHER_CONFIG", "", 1), 0);
    cr_assert_str_eq(usher_config_default_path(), USHER_CONF_DIR "/usher.conf");
    cr_assert_eq(setenv("USHER_CONFIG", SHIPPED_CONF, 1), 0);
    cr_assert_str_eq(usher_config_default_path(), SHIPPED_CONF);
}

/* An installed binary never looks into the tree it was built from (issue 16). */
static void assert_installed_path(const char *path, const char *suffix)
{
    size_t n = strlen(path), m = strlen(suffix);

    cr_assert(path[0] == '/', "%s is not absolute", path);
    cr_assert(strncmp(path, USHER_SOURCE_DIR "/", strlen(USHER_SOURCE_DIR) + 1) != 0,
              "%s is in the source tree", path);
    cr_assert(n >= m && strcmp(path + n - m, suffix) == 0, "%s does not end in %s", path, suffix);
}

Test(config, builtin_paths_are_the_installed_layout)
{
    usher_config cfg;

    unsetenv("USHER_TEMPLATE_DIR");
    unsetenv("USHER_DOCUMENT_DIR");
    unsetenv("USHER_SEARCH_DIR");
    unsetenv("USHER_MIGRATIONS_DIR");
    cr_assert_eq(usher_config_load(&cfg, NULL, NULL, 0), USHER_OK);
    assert_installed_path(usher_config_default_path(), "/usher/usher.conf");
    assert_installed_path(cfg.mail_template_dir, "/usher/templates");
    assert_installed_path(cfg.document_dir, "/lib/usher/documents");
    assert_installed_path(cfg.search_index_dir, "/lib/usher/search/index");
    assert_installed_path(usher_migrate_default_dir(), "/usher/migrations");
    usher_config_free(&cfg);
}

/* ---- refusals ------------------------------------------------------------ */

Test(config, rejects_unknown_section_with_file_and_line)
{
    expect_refusal("[engine]\npoll_interval_ms = 50\n\n[bogus]\nx = 1\n", 4,
                   "unknown section [bogus]");
}

Test(config, rejects_unknown_section_even_without_keys)
{
    expect_refusal("[engine]\n[bogus]\n", 2, "unknown section [bogus]");
}

Test(config, rejects_section_name_with_spaces_inside_the_brackets)
{
    expect_refusal("[ engine ]\n", 1, "unknown section [ engine ]");
}

Test(config, rejects_unknown_key_with_file_and_line)
{
    expect_refusal("[engine]\npoll_interval_ms = 50\ncolour = blue\n", 3,
                   "unknown key 'colour' in [engine]");
}

Test(config, rejects_unknown_key_in_a_kind_and_in_a_queue)
{
    expect_refusal("[kind.a]\npool = x\n", 2, "unknown key 'pool' in [kind.a]");
    unlink(conf_path);
    expect_refusal("[queue.a]\npool = x\npriority = 1\n", 3, "unknown key 'priority' in [queue.a]");
    unlink(conf_path);
    expect_refusal("[pool.a]\nmin = 1\npool = x\n", 3, "unknown key 'pool' in [pool.a]");
}

Test(config, rejects_key_outside_any_section)
{
    expect_refusal("# comment\nurl = x\n", 2, "key 'url' outside any section");
}

Test(config, rejects_non_integer_values)
{
    expect_refusal("[engine]\npoll_interval_ms = fast\n", 2,
                   "[engine] poll_interval_ms: 'fast' is not an integer");
    unlink(conf_path);
    expect_refusal("[engine]\n\npoll_interval_ms = 10ms\n", 3,
                   "[engine] poll_interval_ms: '10ms' is not an integer");
    unlink(conf_path);
    expect_refusal("[defaults]\npriority =\n", 2, "[defaults] priority: '' is not an integer");
    unlink(conf_path);
    expect_refusal("[kind.k]\ntimeout_ms = 0x10\n", 2,
                   "[kind.k] timeout_ms: '0x10' is not an integer");
}

Test(config, rejects_out_of_range_integers)
{
    expect_refusal("[defaults]\npriority = 3\n", 2,
                   "[defaults] priority: 3 is out of range (0..2)");
    unlink(conf_path);
    expect_refusal("[kind.k]\npriority = -1\n", 2, "[kind.k] priority: -1 is out of range (0..2)");
    unlink(conf_path);
    expect_refusal("[kind.k]\nmax_attempts = 0\n", 2,
                   "[kind.k] max_attempts: 0 is out of range (1..1000)");
    unlink(conf_path);
    expect_refusal("[defaults]\ntimeout_ms = 86400001\n", 2,
                   "[defaults] timeout_ms: 86400001 is out of range (1..86400000)");
    unlink(conf_path);
    expect_refusal("[engine]\npayload_max_bytes = 63\n", 2,
                   "[engine] payload_max_bytes: 63 is out of range (64..16777216)");
    unlink(conf_path);
    expect_refusal("[engine]\nnotify_debounce_ms = 10001\n", 2,
                   "[engine] notify_debounce_ms: 10001 is out of range (0..10000)");
    unlink(conf_path);
    expect_refusal("[engine]\npoll_interval_ms = 9\n", 2,
                   "[engine] poll_interval_ms: 9 is out of range (10..600000)");
    unlink(conf_path);
    expect_refusal("[engine]\nlease_grace_ms = 3600001\n", 2,
                   "[engine] lease_grace_ms: 3600001 is out of range (0..3600000)");
    unlink(conf_path);
    expect_refusal("[engine]\ndead_retention_hours = 0\n", 2,
                   "[engine] dead_retention_hours: 0 is out of range (1..87600)");
    unlink(conf_path);
    expect_refusal("[engine]\nstats_retention_hours = 87601\n", 2,
                   "[engine] stats_retention_hours: 87601 is out of range (1..87600)");
    unlink(conf_path);
    expect_refusal("[retention]\npartitions_ahead_days = 0\n", 2,
                   "[retention] partitions_ahead_days: 0 is out of range (1..62)");
    unlink(conf_path);
    expect_refusal("[retention]\nwebhook_delivery_days = -1\n", 2,
                   "[retention] webhook_delivery_days: -1 is out of range (0..36500)");
    unlink(conf_path);
    expect_refusal("[kind.k]\nbackoff_base_ms = -1\n", 2,
                   "[kind.k] backoff_base_ms: -1 is out of range (0..86400000)");
}

Test(config, rejects_integers_that_overflow_long)
{
    expect_refusal("[engine]\npayload_max_bytes = 99999999999999999999999\n", 2,
                   "[engine] payload_max_bytes: 99999999999999999999999 is out of range "
                   "(64..16777216)");
}

Test(config, rejects_an_unknown_log_level)
{
    expect_refusal("[log]\nlevel = INFO\n", 2,
                   "[log] level: 'INFO' is not one of err, warning, notice, info, debug");
}

Test(config, rejects_an_empty_url)
{
    expect_refusal("[redis]\nurl =\n", 2, "[redis] url: empty value");
}

Test(config, rejects_invalid_queue_and_kind_names)
{
    expect_refusal("[queue.Email]\npool = standard\n", 1,
                   "invalid queue name 'Email' ([a-z0-9_.-], 1 to 63 characters)");
    unlink(conf_path);
    expect_refusal("[kind.]\n", 1, "invalid kind name '' ([a-z0-9_.-], 1 to 63 characters)");
    unlink(conf_path);
    expect_refusal("[kind.a/b]\n", 1, "invalid kind name 'a/b' ([a-z0-9_.-], 1 to 63 characters)");
}

Test(config, rejects_invalid_names_as_values)
{
    expect_refusal("[queue.q]\npool = Big Pool\n", 2,
                   "[queue.q] pool: 'Big Pool' is not a valid name ([a-z0-9_.-], 1 to 63 "
                   "characters)");
    unlink(conf_path);
    expect_refusal("[kind.k]\nqueue = a/b\n", 2,
                   "[kind.k] queue: 'a/b' is not a valid name ([a-z0-9_.-], 1 to 63 characters)");
}

Test(config, rejects_a_duplicate_queue_section)
{
    expect_refusal("[queue.email]\npool = standard\n\n[queue.email]\npool = batch\n", 4,
                   "duplicate section [queue.email] (first on line 1)");
}

Test(config, rejects_a_duplicate_kind_section)
{
    expect_refusal("[kind.email.send]\n[kind.pdf]\n[kind.email.send]\n", 3,
                   "duplicate section [kind.email.send] (first on line 1)");
}

Test(config, rejects_a_duplicate_fixed_section)
{
    expect_refusal("[engine]\n[log]\n[engine]\n", 3,
                   "duplicate section [engine] (first on line 1)");
}

Test(config, rejects_a_key_set_twice)
{
    expect_refusal("[kind.k]\npriority = 0\npriority = 1\n", 3,
                   "duplicate key 'priority' in [kind.k] (first set on line 2)");
}

Test(config, rejects_a_kind_naming_an_undeclared_queue_at_the_queue_key)
{
    expect_refusal("[queue.email]\npool = standard\n[kind.pdf.ticket]\npriority = 1\nqueue = pdf\n",
                   5, "kind 'pdf.ticket' names undeclared queue 'pdf'");
}

Test(config, rejects_backoff_cap_below_base_at_the_kind_section)
{
    expect_refusal("[kind.a]\n[kind.b]\nbackoff_base_ms = 500\nbackoff_cap_ms = 499\n", 2,
                   "[kind.b] backoff_cap_ms (499) is less than backoff_base_ms (500)");
}

Test(config, rejects_backoff_cap_below_an_inherited_base)
{
    expect_refusal("[kind.a]\nbackoff_cap_ms = 10\n[defaults]\nbackoff_base_ms = 20\n", 1,
                   "[kind.a] backoff_cap_ms (10) is less than backoff_base_ms (20)");
}

Test(config, rejects_backoff_cap_below_base_in_defaults)
{
    expect_refusal("\n[defaults]\nbackoff_base_ms = 7200000\n", 2,
                   "[defaults] backoff_cap_ms (3600000) is less than backoff_base_ms (7200000)");
}

Test(config, rejects_a_queue_without_a_pool)
{
    expect_refusal("[pool.p]\n[queue.a]\npool = p\n[queue.b]\n", 4, "[queue.b] has no pool");
}

Test(config, rejects_a_queue_naming_an_undeclared_pool_at_the_pool_key)
{
    expect_refusal("[pool.standard]\n[queue.email]\n\npool = standrd\n", 4,
                   "queue 'email' names undeclared pool 'standrd'");
}

Test(config, rejects_pool_names_and_duplicate_pools)
{
    expect_refusal("[pool.Realtime]\n", 1,
                   "invalid pool name 'Realtime' ([a-z0-9_.-], 1 to 63 characters)");
    unlink(conf_path);
    expect_refusal("[pool.a]\n[pool.b]\n[pool.a]\n", 3,
                   "duplicate section [pool.a] (first on line 1)");
    unlink(conf_path);
    expect_refusal("[pool]\n", 1, "unknown section [pool]");
}

Test(config, rejects_unknown_tiers)
{
    expect_refusal("[pool.p]\ntier = urgent\n", 2,
                   "[pool.p] tier: 'urgent' is not one of high, medium, low");
    unlink(conf_path);
    expect_refusal("[pool.p]\nevent_tier = huge\n", 2,
                   "[pool.p] event_tier: 'huge' is not one of small, medium, large, mega");
}

Test(config, rejects_pool_values_out_of_range)
{
    expect_refusal("[pool.p]\nmin = -1\n", 2, "[pool.p] min: -1 is out of range (0..1000)");
    unlink(conf_path);
    expect_refusal("[pool.p]\nmax = 0\n", 2, "[pool.p] max: 0 is out of range (1..1000)");
    unlink(conf_path);
    expect_refusal("[pool.p]\nscale_out_per_minute = 0\n", 2,
                   "[pool.p] scale_out_per_minute: 0 is out of range (1..1000)");
    unlink(conf_path);
    expect_refusal("[pool.p]\nsustain_ms = 3600001\n", 2,
                   "[pool.p] sustain_ms: 3600001 is out of range (0..3600000)");
    unlink(conf_path);
    expect_refusal("[pool.p]\nmetrics_port = 65536\n", 2,
                   "[pool.p] metrics_port: 65536 is out of range (0..65535)");
    unlink(conf_path);
    expect_refusal("[pool.p]\nheartbeat_ms = 99\n", 2,
                   "[pool.p] heartbeat_ms: 99 is out of range (100..3600000)");
    unlink(conf_path);
    expect_refusal("[pool.p]\nclaim_batch = 0\n", 2,
                   "[pool.p] claim_batch: 0 is out of range (1..10000)");
}

Test(config, rejects_pool_sizes_out_of_order_at_the_pool_section)
{
    expect_refusal("\n[pool.p]\nmin = 20\n", 2, "[pool.p] min (20) is greater than max (10)");
    unlink(conf_path);
    expect_refusal("[pool.p]\nmin = 3\ninitial = 2\n", 1,
                   "[pool.p] min (3) is greater than initial (2)");
    unlink(conf_path);
    expect_refusal("[pool.p]\ninitial = 11\n", 1, "[pool.p] initial (11) is greater than max (10)");
    unlink(conf_path);
    expect_refusal("[pool.p]\ntier = high\nmax = 1\n", 1,
                   "[pool.p] min (2) is greater than max (1)");
}

Test(config, rejects_a_scale_in_depth_not_below_the_scale_out_depth)
{
    expect_refusal("[pool.p]\nscale_out_depth = 40\n", 1,
                   "[pool.p] scale_in_depth (50) is not less than scale_out_depth (40)");
    unlink(conf_path);
    expect_refusal("[pool.p]\nscale_out_depth = 7\nscale_in_depth = 7\n", 1,
                   "[pool.p] scale_in_depth (7) is not less than scale_out_depth (7)");
    unlink(conf_path);
    /* Depth is counted up to 100,000: a threshold must stay well below that. */
    expect_refusal("[pool.p]\nscale_out_depth = 50001\n", 2,
                   "[pool.p] scale_out_depth: 50001 is out of range (0..50000)");
}

Test(config, rejects_a_downstream_limit_without_a_downstream_at_the_limit_key)
{
    expect_refusal("[pool.p]\nmin = 1\ndownstream_limit = 20\n", 3,
                   "[pool.p] downstream_limit without downstream");
}

Test(config, rejects_protect_windows_that_do_not_parse)
{
    expect_refusal("[pool.p]\nprotect = 2026-12-01T09:00:00Z\n", 2,
                   "[pool.p] protect: '2026-12-01T09:00:00Z' is not START/END");
    unlink(conf_path);
    expect_refusal("[pool.p]\nprotect = 2026-12-01 09:00/2026-12-01T12:00:00Z\n", 2,
                   "[pool.p] protect: '2026-12-01 09:00' is not a UTC time like "
                   "2026-12-01T09:00:00Z");
    unlink(conf_path);
    expect_refusal("[pool.p]\nprotect = 2026-12-01T09:00:00Z/2026-12-01T12:00:00+01:00\n", 2,
                   "[pool.p] protect: '2026-12-01T12:00:00+01:00' is not a UTC time like "
                   "2026-12-01T09:00:00Z");
    unlink(conf_path);
    expect_refusal("[pool.p]\nprotect = 2026-02-30T09:00:00Z/2026-03-01T12:00:00Z\n", 2,
                   "[pool.p] protect: '2026-02-30T09:00:00Z' is not a UTC time like "
                   "2026-12-01T09:00:00Z");
    unlink(conf_path);
    expect_refusal("[pool.p]\nprotect = 2026-12-1T9:00:00Z/2026-12-01T12:00:00Z\n", 2,
                   "[pool.p] protect: '2026-12-1T9:00:00Z' is not a UTC time like "
                   "2026-12-01T09:00:00Z");
}

Test(config, rejects_protect_windows_that_do_not_end_after_they_start)
{
    expect_refusal("[pool.p]\n\nprotect = 2026-12-01T12:00:00Z/2026-12-01T09:00:00Z\n", 3,
                   "[pool.p] protect: window 2026-12-01T12:00:00Z/2026-12-01T09:00:00Z does not "
                   "end after it starts");
    unlink(conf_path);
    expect_refusal("[pool.p]\nprotect = 2026-12-01T09:00:00Z/2026-12-01T09:00:00Z\n", 2,
                   "[pool.p] protect: window 2026-12-01T09:00:00Z/2026-12-01T09:00:00Z does not "
                   "end after it starts");
}

Test(config, rejects_an_empty_protect_window_in_the_list)
{
    expect_refusal("[pool.p]\nprotect = 2026-12-01T09:00:00Z/2026-12-01T12:00:00Z,\n", 2,
                   "[pool.p] protect: empty window");
    unlink(conf_path);
    expect_refusal("[pool.p]\nprotect = ,2026-12-01T09:00:00Z/2026-12-01T12:00:00Z\n", 2,
                   "[pool.p] protect: empty window");
}

Test(config, rejects_a_line_that_is_not_key_value)
{
    expect_refusal("[engine]\npoll_interval_ms 100\n", 2, "expected 'key = value' or '[section]'");
}

Test(config, rejects_an_unclosed_section)
{
    expect_refusal("[engine\n", 1, "expected ']' to close the section name");
}

Test(config, rejects_an_indented_continuation_line)
{
    expect_refusal("[database]\nurl = postgresql://a/b\n  ?sslmode=require\n", 3,
                   "indented line (inih would append it to the value above)");
}

Test(config, rejects_a_line_too_long_for_inih)
{
    char text[512];

    snprintf(text, sizeof(text), "[database]\nurl = postgresql://%0250d\n", 0);
    expect_refusal(text, 2,
                   "line longer than 199 characters (long URLs can come from USHER_*_URL)");
}

Test(config, reports_the_first_error_in_the_file)
{
    expect_refusal("[engine]\nnot a pair\ncolour = blue\n", 2,
                   "expected 'key = value' or '[section]'");
    unlink(conf_path);
    expect_refusal("[engine]\ncolour = blue\nnot a pair\n", 2, "unknown key 'colour' in [engine]");
}

Test(config, missing_file_is_refused_with_the_reason)
{
    usher_config cfg;
    char err[256];

    memset(&cfg, 0xab, sizeof(cfg));
    cr_assert_eq(usher_config_load(&cfg, "/nonexistent/usher.conf", err, sizeof(err)),
                 USHER_ERR_CONFIG);
    cr_assert_str_eq(err, "/nonexistent/usher.conf: cannot open: No such file or directory");
    assert_empty(&cfg);
}

Test(config, refusal_without_an_error_buffer_does_not_crash)
{
    usher_config cfg;
    char tiny[8];

    cr_assert_eq(usher_config_load(&cfg, "/nonexistent/usher.conf", NULL, 0), USHER_ERR_CONFIG);
    cr_assert_eq(usher_config_load(&cfg, "/nonexistent/usher.conf", tiny, sizeof(tiny)),
                 USHER_ERR_CONFIG);
    cr_assert_str_eq(tiny, "/nonexi");
    usher_config_free(&cfg);
    usher_config_free(NULL);
}

/* ---- periodic jobs -------------------------------------------------------- */

#define REPORTS "[pool.batch]\n[queue.reports]\npool = batch\n" /* lines 1-3 */

Test(config, shipped_file_fires_the_nightly_checkins_report_at_three_utc)
{
    usher_config cfg;
    char err[512];
    const usher_periodic_conf *nightly;

    cr_assert_eq(usher_config_load(&cfg, SHIPPED_CONF, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_eq(cfg.nperiodics, 1);
    nightly = &cfg.periodics[0];
    cr_assert_str_eq(nightly->name, "nightly-checkins");
    cr_assert_str_eq(nightly->cron.text, "0 3 * * *");
    cr_assert(usher_cron_matches(&nightly->cron, 1772420400 / 60), "2026-03-02 03:00 UTC");
    cr_assert_not(usher_cron_matches(&nightly->cron, 1772424000 / 60), "2026-03-02 04:00 UTC");
    cr_assert_str_eq(nightly->queue, "reports");
    cr_assert_str_eq(nightly->kind, "report.checkins");
    cr_assert_str_eq(nightly->payload, "{\"scope\":\"all\"}");
    cr_assert_eq(nightly->priority, -1, "the kind's");
    usher_config_free(&cfg);
}

Test(config, periodic_keeps_its_keys_and_defaults_payload_and_priority)
{
    usher_config cfg;

    load_ok(&cfg, REPORTS "[periodic.a]\ncron = */5 * * * mon-fri\nqueue = reports\n"
                          "kind = report.x\npayload = { \"n\": [1, 2] }\npriority = 0\n"
                          "[periodic.b]\nkind = k\nqueue = reports\ncron = 0 0 1 1 *\n");
    cr_assert_eq(cfg.nperiodics, 2);
    cr_assert_str_eq(cfg.periodics[0].cron.text, "*/5 * * * mon-fri");
    cr_assert_eq(cfg.periodics[0].cron.wdays, 0x3e);
    cr_assert_str_eq(cfg.periodics[0].kind, "report.x");
    cr_assert_str_eq(cfg.periodics[0].payload, "{ \"n\": [1, 2] }");
    cr_assert_eq(cfg.periodics[0].priority, 0);
    cr_assert_str_eq(cfg.periodics[1].name, "b");
    cr_assert_str_eq(cfg.periodics[1].payload, "{}");
    cr_assert_eq(cfg.periodics[1].priority, -1);
    usher_config_free(&cfg);
}

Test(config, rejects_a_periodic_without_cron_queue_or_kind_at_its_section)
{
    expect_refusal(REPORTS "[periodic.p]\nqueue = reports\nkind = k\n", 4,
                   "[periodic.p] has no cron");
    expect_refusal(REPORTS "\n[periodic.p]\ncron = * * * * *\nkind = k\n", 5,
                   "[periodic.p] has no queue");
    expect_refusal(REPORTS "[periodic.p]\ncron = * * * * *\nqueue = reports\n", 4,
                   "[periodic.p] has no kind");
}

Test(config, rejects_a_periodic_naming_an_undeclared_queue_at_the_queue_key)
{
    expect_refusal(REPORTS "[periodic.p]\ncron = * * * * *\nkind = k\nqueue = report\n", 7,
                   "periodic 'p' names undeclared queue 'report'");
}

Test(config, rejects_a_bad_cron_expression_with_its_reason)
{
    expect_refusal(REPORTS "[periodic.p]\ncron = 61 * * * *\n", 5,
                   "[periodic.p] cron: minute: 61 is out of range (0..59)");
    expect_refusal(REPORTS "[periodic.p]\ncron = * * *\n", 5,
                   "[periodic.p] cron: expected 5 fields (minute hour day-of-month month "
                   "day-of-week), found 3");
    expect_refusal(REPORTS "[periodic.p]\ncron = */0 * * * *\n", 5,
                   "[periodic.p] cron: minute: step 0 is out of range (1..60)");
}

Test(config, rejects_a_periodic_payload_that_enqueue_would_refuse)
{
    const char *base = REPORTS "[periodic.p]\ncron = * * * * *\nqueue = reports\nkind = k\n";
    char text[512];

    snprintf(text, sizeof(text), "%spayload = [1]\n", base);
    expect_refusal(text, 8, "[periodic.p] payload: payload must be a JSON object");
    snprintf(text, sizeof(text), "%spayload = {\"a\":\n", base);
    expect_refusal(text, 8,
                   "[periodic.p] payload: payload is not valid JSON: "
                   "unexpected token near end of file (line 1, column 5)");
    snprintf(text, sizeof(text),
             "%spayload = {\"a\":\"%070d\"}\n[engine]\npayload_max_bytes = 64\n", base, 0);
    expect_refusal(text, 8, "[periodic.p] payload: payload is 78 bytes; the limit is 64");
    snprintf(text, sizeof(text), "%spayload =\n", base);
    expect_refusal(text, 8, "[periodic.p] payload: empty value");
}

Test(config, rejects_bad_periodic_names_kinds_priorities_and_keys)
{
    expect_refusal(REPORTS "[periodic.Nightly]\n", 4,
                   "invalid periodic name 'Nightly' ([a-z0-9_.-], 1 to 63 characters)");
    expect_refusal(REPORTS "[periodic.p]\n[periodic.p]\n", 5,
                   "duplicate section [periodic.p] (first on line 4)");
    expect_refusal(REPORTS "[periodic.p]\nkind = Report\n", 5,
                   "[periodic.p] kind: 'Report' is not a valid name ([a-z0-9_.-], 1 to 63 "
                   "characters)");
    expect_refusal(REPORTS "[periodic.p]\npriority = 3\n", 5,
                   "[periodic.p] priority: 3 is out of range (0..2)");
    expect_refusal(REPORTS "[periodic.p]\nat = 03:00\n", 5, "unknown key 'at' in [periodic.p]");
}

/* ---- names --------------------------------------------------------------- */

Test(config, valid_name_accepts_lowercase_digits_and_punctuation)
{
    char name[65];

    cr_assert(usher_config_valid_name("a"));
    cr_assert(usher_config_valid_name("email.send"));
    cr_assert(usher_config_valid_name("report_v2-final.0"));
    memset(name, 'a', 63);
    name[63] = '\0';
    cr_assert(usher_config_valid_name(name), "63 characters is the maximum");
}

Test(config, valid_name_refuses_empty_long_uppercase_and_slash)
{
    char name[65];

    cr_assert_not(usher_config_valid_name(NULL));
    cr_assert_not(usher_config_valid_name(""));
    memset(name, 'a', 64);
    name[64] = '\0';
    cr_assert_not(usher_config_valid_name(name), "64 characters is one too many");
    cr_assert_not(usher_config_valid_name("Email"));
    cr_assert_not(usher_config_valid_name("a/b"));
    cr_assert_not(usher_config_valid_name("a b"));
    cr_assert_not(usher_config_valid_name("caf\xc3\xa9"));
}

/* ---- [smtp] STARTTLS and AUTH, [pool.NAME] smtp_rate --------------------- */

static void clear_smtp_env(void)
{
    unsetenv("USHER_SMTP_USERNAME");
    unsetenv("USHER_SMTP_PASSWORD");
    unsetenv("USHER_SMTP_CA_FILE");
}

Test(config, smtp_tls_and_auth_default_to_off_and_unset_in_both_builtin_and_shipped)
{
    usher_config builtin, shipped;
    char err[512];

    clear_smtp_env();
    cr_assert_eq(usher_config_load(&builtin, NULL, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_eq(usher_config_load(&shipped, SHIPPED_CONF, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_eq(builtin.smtp_starttls, USHER_STARTTLS_NO);
    cr_assert_eq(shipped.smtp_starttls, builtin.smtp_starttls);
    cr_assert_null(builtin.smtp_username);
    cr_assert_null(builtin.smtp_password);
    cr_assert_null(builtin.smtp_ca_file);
    cr_assert_null(shipped.smtp_username);
    cr_assert_null(shipped.smtp_password);
    cr_assert_null(shipped.smtp_ca_file);
    for (size_t i = 0; i < shipped.npools; i++)
        cr_assert_eq(shipped.pools[i].smtp_rate, 0, "pool %s", shipped.pools[i].name);
    usher_config_free(&builtin);
    usher_config_free(&shipped);
}

Test(config, smtp_tls_auth_and_rate_are_read_and_the_environment_wins)
{
    usher_config cfg;

    clear_smtp_env();
    cr_assert_eq(setenv("USHER_SMTP_PASSWORD", "from-env", 1), 0);
    load_ok(&cfg, "[smtp]\n"
                  "starttls = required\n"
                  "username = relay-user\n"
                  "password = from-file\n"
                  "ca_file = /etc/usher/ca.pem\n"
                  "[pool.mail]\n"
                  "smtp_rate = 25\n");
    cr_assert_eq(cfg.smtp_starttls, USHER_STARTTLS_REQUIRED);
    cr_assert_str_eq(cfg.smtp_username, "relay-user");
    cr_assert_str_eq(cfg.smtp_password, "from-env");
    cr_assert_str_eq(cfg.smtp_ca_file, "/etc/usher/ca.pem");
    cr_assert_eq(usher_config_pool(&cfg, "mail")->smtp_rate, 25);
    usher_config_free(&cfg);
    clear_smtp_env();
    load_ok(&cfg, "[smtp]\nstarttls = if_available\n[pool.mail]\n");
    cr_assert_eq(cfg.smtp_starttls, USHER_STARTTLS_IF_AVAILABLE);
    cr_assert_eq(usher_config_pool(&cfg, "mail")->smtp_rate, 0);
    usher_config_free(&cfg);
}

Test(config, bad_smtp_tls_and_rate_values_are_refused)
{
    clear_smtp_env();
    expect_refusal("[smtp]\nstarttls = yes\n", 2,
                   "[smtp] starttls: 'yes' is not one of no, if_available, required");
    expect_refusal("[smtp]\nusername =\n", 2, "[smtp] username: empty value");
    expect_refusal("[pool.p]\nsmtp_rate = -1\n", 2,
                   "[pool.p] smtp_rate: -1 is out of range (0..100000)");
}

/* ---- [webhooks] ------------------------------------------------------------ */

Test(config, private_webhook_targets_are_refused_unless_the_file_or_the_environment_allows_them)
{
    usher_config builtin, shipped, cfg;
    char err[512];

    unsetenv("USHER_WEBHOOKS_ALLOW_PRIVATE_TARGETS");
    cr_assert_eq(usher_config_load(&builtin, NULL, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_eq(usher_config_load(&shipped, SHIPPED_CONF, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_eq(builtin.webhooks_allow_private_targets, 0);
    cr_assert_eq(shipped.webhooks_allow_private_targets, 0);
    usher_config_free(&builtin);
    usher_config_free(&shipped);
    load_ok(&cfg, "[webhooks]\nallow_private_targets = true\n");
    cr_assert_eq(cfg.webhooks_allow_private_targets, 1);
    usher_config_free(&cfg);
    cr_assert_eq(setenv("USHER_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "false", 1), 0);
    load_ok(&cfg, "[webhooks]\nallow_private_targets = true\n");
    cr_assert_eq(cfg.webhooks_allow_private_targets, 0, "the environment wins");
    usher_config_free(&cfg);
    cr_assert_eq(setenv("USHER_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true", 1), 0);
    cr_assert_eq(usher_config_load(&cfg, NULL, err, sizeof(err)), USHER_OK, "%s", err);
    cr_assert_eq(cfg.webhooks_allow_private_targets, 1);
    usher_config_free(&cfg);
    unsetenv("USHER_WEBHOOKS_ALLOW_PRIVATE_TARGETS");
    expect_refusal("[webhooks]\nallow_private_targets = yes\n", 2,
                   "[webhooks] allow_private_targets: 'yes' is not one of false, true");
}
