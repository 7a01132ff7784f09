/*
 * The configuration's keys and value parsers, split from config.c so that
 * the loader keeps to files, sections and the checks across keys. The
 * tables list every key once; conf/usher.conf documents each. Each parser
 * checks the whole value before it writes the field, so a refused value
 * leaves the default (or the value before a reload) in place; the reason
 * it gives names the value, never the key or line, which the loader adds.
 */
#include "config_values.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "config.h"
#include "cron.h"
#include "install_paths.h"
#include "log.h"

#define UTC_FORMAT "%Y-%m-%dT%H:%M:%SZ"

/* Ranges shared by [defaults] and [kind.NAME]. */
#define PRIORITY_RANGE 0, 2
#define ATTEMPTS_RANGE 1, 1000
#define TIMEOUT_RANGE  1, 86400000
#define BACKOFF_RANGE  0, 86400000

/* Ranges of [pool.NAME]. */
#define SIZE_RANGE  0, 1000
#define DEPTH_RANGE 0, USHER_AUTOSCALE_DEPTH_CAP / 2 /* depth is counted up to the cap */
#define WAIT_RANGE  0, 3600000                       /* an hour, in ms */

/* A schedule's offset from its anchor: a year (366 days) either way, in seconds. */
#define SCHEDULE_OFFSET_RANGE -31622400, 31622400

#define CFG(field) offsetof(usher_config, field)

/* Indexed by enum usher_smtp_starttls. */
static const char *const starttls_words[] = { "no", "if_available", "required", NULL };
/* Indexed by enum usher_document_store. */
static const char *const document_store_words[] = { "database", "directory", NULL };
/* A yes-or-no key: false is 0, true is 1. */
static const char *const bool_words[] = { "false", "true", NULL };

/* Event tiers, whose ceilings are 10/50/200/500 (pools: children; [api]: instances). */
static const char *const event_tier_words[] = { "small", "medium", "large", "mega", NULL };

const usher_setting usher_settings[] = {
    { "database", "url", USHER_VAL_STRING, CFG(database_url),
      "postgresql://postgres@127.0.0.1:55432/usher", 0, 0, 0, false, "USHER_DATABASE_URL", NULL },
    { "database", "max_connections_per_process", USHER_VAL_INT,
      CFG(database_max_connections_per_process), NULL, 0, 0, 100000, false,
      "USHER_DATABASE_MAX_CONNECTIONS_PER_PROCESS", NULL },
    { "database", "read_url", USHER_VAL_STRING, CFG(database_read_url), NULL, 0, 0, 0, false,
      "USHER_DATABASE_READ_URL", NULL },
    { "database", "max_replica_lag_ms", USHER_VAL_INT, CFG(database_max_replica_lag_ms), NULL, 1000,
      0, 600000, false, NULL, NULL },
    { "database", "replica_check_ms", USHER_VAL_INT, CFG(database_replica_check_ms), NULL, 250, 10,
      60000, false, NULL, NULL },
    { "redis", "url", USHER_VAL_STRING, CFG(redis_url), "redis://127.0.0.1:56379/0", 0, 0, 0, false,
      "USHER_REDIS_URL", NULL },
    { "smtp", "url", USHER_VAL_STRING, CFG(smtp_url), "smtp://127.0.0.1:52525", 0, 0, 0, false,
      "USHER_SMTP_URL", NULL },
    { "smtp", "from_address", USHER_VAL_STRING, CFG(smtp_from_address), "tickets@usher.localhost",
      0, 0, 0, false, NULL, NULL },
    { "smtp", "from_name", USHER_VAL_STRING, CFG(smtp_from_name), "Usher", 0, 0, 0, true, NULL,
      NULL },
    { "smtp", "message_id_domain", USHER_VAL_STRING, CFG(smtp_message_id_domain), "usher.localhost",
      0, 0, 0, false, NULL, NULL },
    { "smtp", "timeout_ms", USHER_VAL_INT, CFG(smtp_timeout_ms), NULL, 30000, 1000, 600000, true,
      NULL, NULL },
    { "smtp", "starttls", USHER_VAL_WORD, CFG(smtp_starttls), NULL, USHER_STARTTLS_NO, 0, 0, false,
      NULL, starttls_words },
    { "smtp", "username", USHER_VAL_STRING, CFG(smtp_username), NULL, 0, 0, 0, false,
      "USHER_SMTP_USERNAME", NULL },
    { "smtp", "password", USHER_VAL_STRING, CFG(smtp_password), NULL, 0, 0, 0, false,
      "USHER_SMTP_PASSWORD", NULL },
    { "smtp", "ca_file", USHER_VAL_STRING, CFG(smtp_ca_file), NULL, 0, 0, 0, false,
      "USHER_SMTP_CA_FILE", NULL },
    { "mail", "template_dir", USHER_VAL_STRING, CFG(mail_template_dir), USHER_DATA_DIR "/templates",
      0, 0, 0, false, "USHER_TEMPLATE_DIR", NULL },
    { "documents", "dir", USHER_VAL_STRING, CFG(document_dir), USHER_STATE_ROOT "/documents", 0, 0,
      0, false, "USHER_DOCUMENT_DIR", NULL },
    { "documents", "store", USHER_VAL_WORD, CFG(document_store), NULL, USHER_DOCUMENTS_DATABASE, 0,
      0, false, "USHER_DOCUMENTS_STORE", document_store_words },
    { "tickets", "secret", USHER_VAL_STRING, CFG(ticket_secret), "set-me", 0, 0, 0, false,
      "USHER_TICKET_SECRET", NULL },
    { "search", "index_dir", USHER_VAL_STRING, CFG(search_index_dir),
      USHER_STATE_ROOT "/search/index", 0, 0, 0, false, "USHER_SEARCH_DIR", NULL },
    { "search", "language", USHER_VAL_STRING, CFG(search_language), "english", 0, 0, 0, false, NULL,
      NULL },
    { "search", "replica_dir", USHER_VAL_STRING, CFG(search_replica_dir), NULL, 0, 0, 0, false,
      "USHER_SEARCH_REPLICA_DIR", NULL },
    { "search", "changesets", USHER_VAL_INT, CFG(search_changesets), NULL, 0, 0, 100000, false,
      "USHER_SEARCH_CHANGESETS", NULL },
    { "search", "replication_listen", USHER_VAL_STRING, CFG(search_replication_listen), NULL, 0, 0,
      0, false, "USHER_SEARCH_REPLICATION_LISTEN", NULL },
    { "search", "master", USHER_VAL_STRING, CFG(search_master), NULL, 0, 0, 0, false,
      "USHER_SEARCH_MASTER", NULL },
    { "search", "replicate_interval_s", USHER_VAL_INT, CFG(search_replicate_interval_s), NULL, 1, 1,
      3600, false, NULL, NULL },
    { "log", "level", USHER_VAL_LEVEL, CFG(log_level), NULL, USHER_LOG_INFO, 0, 0, true, NULL,
      NULL },
    { "engine", "payload_max_bytes", USHER_VAL_INT, CFG(payload_max_bytes), NULL, 65536, 64,
      16777216, true, NULL, NULL },
    { "engine", "notify_debounce_ms", USHER_VAL_INT, CFG(notify_debounce_ms), NULL, 2, 0, 10000,
      true, NULL, NULL },
    { "engine", "poll_interval_ms", USHER_VAL_INT, CFG(poll_interval_ms), NULL, 1000, 10, 600000,
      true, NULL, NULL },
    { "engine", "lease_grace_ms", USHER_VAL_INT, CFG(lease_grace_ms), NULL, 30000, 0, 3600000, true,
      NULL, NULL },
    { "engine", "deadline_lead_ms", USHER_VAL_INT, CFG(deadline_lead_ms), NULL, 30000, 0, 86400000,
      true, NULL, NULL },
    { "engine", "dead_retention_hours", USHER_VAL_INT, CFG(dead_retention_hours), NULL, 336, 1,
      87600, true, NULL, NULL },
    { "engine", "stats_retention_hours", USHER_VAL_INT, CFG(stats_retention_hours), NULL, 48, 1,
      87600, true, NULL, NULL },
    { "retention", "interval_minutes", USHER_VAL_INT, CFG(retention_interval_minutes), NULL, 60, 1,
      10080, true, NULL, NULL },
    { "retention", "partitions_ahead_days", USHER_VAL_INT, CFG(retention_partitions_ahead), NULL, 7,
      1, 62, true, NULL, NULL },
    { "retention", "webhook_delivery_days", USHER_VAL_INT, CFG(retention_webhook_days), NULL, 30, 0,
      36500, true, NULL, NULL },
    { "retention", "reporting_days", USHER_VAL_INT, CFG(retention_reporting_days), NULL, 90, 0,
      36500, true, NULL, NULL },
    { "retention", "document_days", USHER_VAL_INT, CFG(retention_document_days), NULL, 60, 0, 36500,
      true, NULL, NULL },
    { "retention", "effects_days", USHER_VAL_INT, CFG(retention_effects_days), NULL, 45, 0, 36500,
      true, NULL, NULL },
    { "defaults", "priority", USHER_VAL_INT, CFG(defaults.priority), NULL, 1, PRIORITY_RANGE, true,
      NULL, NULL },
    { "defaults", "max_attempts", USHER_VAL_INT, CFG(defaults.max_attempts), NULL, 20,
      ATTEMPTS_RANGE, true, NULL, NULL },
    { "defaults", "timeout_ms", USHER_VAL_INT, CFG(defaults.timeout_ms), NULL, 60000, TIMEOUT_RANGE,
      true, NULL, NULL },
    { "defaults", "backoff_base_ms", USHER_VAL_INT, CFG(defaults.backoff_base_ms), NULL, 1000,
      BACKOFF_RANGE, true, NULL, NULL },
    { "defaults", "backoff_cap_ms", USHER_VAL_INT, CFG(defaults.backoff_cap_ms), NULL, 3600000,
      BACKOFF_RANGE, true, NULL, NULL },
    { "api", "listen", USHER_VAL_STRING, CFG(api_listen), "127.0.0.1:58080", 0, 0, 0, false,
      "USHER_API_LISTEN", NULL },
    { "api", "metrics_listen", USHER_VAL_STRING, CFG(api_metrics_listen), "127.0.0.1:58081", 0, 0,
      0, false, "USHER_API_METRICS_LISTEN", NULL },
    { "api", "threads", USHER_VAL_INT, CFG(api_threads), NULL, 0, 0, 256, false, NULL, NULL },
    { "api", "db_connections", USHER_VAL_INT, CFG(api_db_connections), NULL, 4, 1, 64, false, NULL,
      NULL },
    { "api", "body_max_bytes", USHER_VAL_INT, CFG(api_body_max_bytes), NULL, 65536, 1024, 16777216,
      false, NULL, NULL },
    { "api", "upload_max_bytes", USHER_VAL_INT, CFG(api_upload_max_bytes), NULL, 20971520, 1024,
      1073741824, false, "USHER_API_UPLOAD_MAX_BYTES", NULL },
    { "api", "header_max_bytes", USHER_VAL_INT, CFG(api_header_max_bytes), NULL, 8192, 1024, 65536,
      false, NULL, NULL },
    { "api", "timeout_s", USHER_VAL_INT, CFG(api_timeout_s), NULL, 30, 1, 3600, false, NULL, NULL },
    { "api", "header_timeout_s", USHER_VAL_INT, CFG(api_header_timeout_s), NULL, 10, 1, 3600, false,
      "USHER_API_HEADER_TIMEOUT_S", NULL },
    { "api", "body_timeout_s", USHER_VAL_INT, CFG(api_body_timeout_s), NULL, 10, 1, 3600, false,
      "USHER_API_BODY_TIMEOUT_S", NULL },
    { "api", "body_rate_bytes", USHER_VAL_INT, CFG(api_body_rate_bytes), NULL, 32768, 1, 1073741824,
      false, "USHER_API_BODY_RATE_BYTES", NULL },
    { "api", "inflight_body_max_bytes", USHER_VAL_INT, CFG(api_inflight_body_max_bytes), NULL,
      67108864, 1024, 2147483647, false, "USHER_API_INFLIGHT_BODY_MAX_BYTES", NULL },
    { "api", "connections_per_address", USHER_VAL_INT, CFG(api_connections_per_address), NULL, 1024,
      0, 1000000, false, "USHER_API_CONNECTIONS_PER_ADDRESS", NULL },
    { "api", "db_wait_ms", USHER_VAL_INT, CFG(api_db_wait_ms), NULL, 5000, 0, 60000, false, NULL,
      NULL },
    { "api", "token_cache_ms", USHER_VAL_INT, CFG(api_token_cache_ms), NULL, 10000, 0, 3600000,
      true, "USHER_API_TOKEN_CACHE_MS", NULL },
    { "api", "cache_event_ttl_s", USHER_VAL_INT, CFG(api_cache_event_ttl_s), NULL, 5, 0, 86400,
      true, "USHER_API_CACHE_EVENT_TTL_S", NULL },
    { "api", "cache_access_ttl_s", USHER_VAL_INT, CFG(api_cache_access_ttl_s), NULL, 60, 0, 86400,
      true, "USHER_API_CACHE_ACCESS_TTL_S", NULL },
    { "api", "cache_stale_s", USHER_VAL_INT, CFG(api_cache_stale_s), NULL, 30, 0, 86400, true, NULL,
      NULL },
    { "api", "cache_warm_window_s", USHER_VAL_INT, CFG(api_cache_warm_window_s), NULL, 3600, 0,
      604800, true, "USHER_API_CACHE_WARM_WINDOW_S", NULL },
    { "api", "redis_timeout_ms", USHER_VAL_INT, CFG(api_redis_timeout_ms), NULL, 50, 1, 10000, true,
      "USHER_API_REDIS_TIMEOUT_MS", NULL },
    { "api", "rate_per_minute", USHER_VAL_INT, CFG(api_rate_per_minute), NULL, 600, 0, 100000000,
      true, "USHER_API_RATE_PER_MINUTE", NULL },
    { "api", "rate_read_per_minute", USHER_VAL_INT, CFG(api_rate_read_per_minute), NULL, 6000, 0,
      100000000, true, "USHER_API_RATE_READ_PER_MINUTE", NULL },
    { "api", "rate_manage_per_minute", USHER_VAL_INT, CFG(api_rate_manage_per_minute), NULL, 1200,
      0, 100000000, true, "USHER_API_RATE_MANAGE_PER_MINUTE", NULL },
    { "api", "auth_failures_per_minute", USHER_VAL_INT, CFG(api_auth_failures_per_minute), NULL, 60,
      0, 100000000, true, "USHER_API_AUTH_FAILURES_PER_MINUTE", NULL },
    { "api", "trusted_proxies", USHER_VAL_STRING, CFG(api_trusted_proxies), NULL, 0, 0, 0, false,
      "USHER_API_TRUSTED_PROXIES", NULL },
    { "api", "access_log", USHER_VAL_WORD, CFG(api_access_log), NULL, 0, 0, 0, true,
      "USHER_API_ACCESS_LOG", bool_words },
    { "api", "scale_tier", USHER_VAL_WORD, CFG(api_scale_tier), NULL, USHER_EVENT_SMALL, 0, 0, true,
      NULL, event_tier_words },
    { "api", "launch_hold_before_min", USHER_VAL_INT, CFG(api_launch_hold_before_min), NULL, 30, 0,
      1440, true, NULL, NULL },
    { "api", "launch_hold_after_min", USHER_VAL_INT, CFG(api_launch_hold_after_min), NULL, 120, 0,
      10080, true, NULL, NULL },
    { "webhooks", "allow_private_targets", USHER_VAL_WORD, CFG(webhooks_allow_private_targets),
      NULL, 0, 0, 0, false, "USHER_WEBHOOKS_ALLOW_PRIVATE_TARGETS", bool_words },
    { "worker", "test_handlers", USHER_VAL_WORD, CFG(worker_test_handlers), NULL, 0, 0, 0, false,
      NULL, bool_words },
    { "worker", "job_log", USHER_VAL_WORD, CFG(worker_job_log), NULL, 0, 0, 0, true,
      "USHER_WORKER_JOB_LOG", bool_words },
    { "worker", "metrics_address", USHER_VAL_STRING, CFG(worker_metrics_address), "127.0.0.1", 0, 0,
      0, false, "USHER_WORKER_METRICS_ADDRESS", NULL },
    { "messages", "batch_size", USHER_VAL_INT, CFG(messages_batch_size), NULL, 500, 1, 10000, false,
      NULL, NULL },
    { "schedules", "reminder_offset_s", USHER_VAL_INT, CFG(schedules_reminder_offset_s), NULL,
      -86400, SCHEDULE_OFFSET_RANGE, true, NULL, NULL },
    { "schedules", "message_offset_s", USHER_VAL_INT, CFG(schedules_message_offset_s), NULL, 7200,
      SCHEDULE_OFFSET_RANGE, true, NULL, NULL },
    { "schedules", "door_list_offset_s", USHER_VAL_INT, CFG(schedules_door_list_offset_s), NULL,
      -3600, SCHEDULE_OFFSET_RANGE, true, NULL, NULL },
    { "schedules", "late_limit_s", USHER_VAL_INT, CFG(schedules_late_limit_s), NULL, 21600, 0,
      31622400, true, NULL, NULL },
};

const size_t usher_nsettings = sizeof(usher_settings) / sizeof(usher_settings[0]);
static_assert(sizeof(usher_settings) / sizeof(usher_settings[0]) <= USHER_SETTINGS_MAX,
              "raise USHER_SETTINGS_MAX");

#define KIND(field)     offsetof(usher_kind_conf, field)
#define POOL(field)     offsetof(usher_pool_conf, field)
#define PERIODIC(field) offsetof(usher_periodic_conf, field)

/* Indexed by enum usher_pool_tier and enum usher_event_tier. */
static const char *const tier_words[] = { "high", "medium", "low", NULL };

/*
 * Unset kind keys take the field at the same offset in cfg->defaults; unset
 * pool keys take int_default, or a value that follows the pool's tiers.
 */
const usher_key usher_keys[] = {
    { USHER_SEC_KIND, "queue", USHER_VAL_NAME, KIND(queue), 0, 0, true, 0, NULL },
    { USHER_SEC_KIND, "priority", USHER_VAL_INT, KIND(priority), PRIORITY_RANGE, true, 0, NULL },
    { USHER_SEC_KIND, "max_attempts", USHER_VAL_INT, KIND(max_attempts), ATTEMPTS_RANGE, true, 0,
      NULL },
    { USHER_SEC_KIND, "timeout_ms", USHER_VAL_INT, KIND(timeout_ms), TIMEOUT_RANGE, true, 0, NULL },
    { USHER_SEC_KIND, "backoff_base_ms", USHER_VAL_INT, KIND(backoff_base_ms), BACKOFF_RANGE, true,
      0, NULL },
    { USHER_SEC_KIND, "backoff_cap_ms", USHER_VAL_INT, KIND(backoff_cap_ms), BACKOFF_RANGE, true, 0,
      NULL },
    { USHER_SEC_KIND, "deadline_ms", USHER_VAL_INT, KIND(deadline_ms), 0, 86400000, true, 0, NULL },
    { USHER_SEC_KIND, "deadline_drop", USHER_VAL_WORD, KIND(deadline_drop), 0, 0, true, 0,
      bool_words },
    { USHER_SEC_QUEUE, "pool", USHER_VAL_NAME, offsetof(usher_queue_conf, pool), 0, 0, false, 0,
      NULL },
    { USHER_SEC_QUEUE, "age_budget_s", USHER_VAL_INT, offsetof(usher_queue_conf, age_budget_s), 1,
      86400, false, USHER_DERIVED, NULL },
    { USHER_SEC_POOL, "tier", USHER_VAL_WORD, POOL(tier), 0, 0, true, USHER_TIER_MEDIUM,
      tier_words },
    { USHER_SEC_POOL, "event_tier", USHER_VAL_WORD, POOL(event_tier), 0, 0, true, USHER_EVENT_SMALL,
      event_tier_words },
    { USHER_SEC_POOL, "min", USHER_VAL_INT, POOL(min), SIZE_RANGE, true, USHER_DERIVED, NULL },
    { USHER_SEC_POOL, "max", USHER_VAL_INT, POOL(max), 1, 1000, true, USHER_DERIVED, NULL },
    { USHER_SEC_POOL, "initial", USHER_VAL_INT, POOL(initial), SIZE_RANGE, false, USHER_DERIVED,
      NULL },
    { USHER_SEC_POOL, "scale_out_depth", USHER_VAL_INT, POOL(scale_out_depth), DEPTH_RANGE, true,
      USHER_DERIVED, NULL },
    { USHER_SEC_POOL, "scale_in_depth", USHER_VAL_INT, POOL(scale_in_depth), DEPTH_RANGE, true,
      USHER_DERIVED, NULL },
    { USHER_SEC_POOL, "sustain_ms", USHER_VAL_INT, POOL(sustain_ms), WAIT_RANGE, true, 30000,
      NULL },
    { USHER_SEC_POOL, "scale_out_per_minute", USHER_VAL_INT, POOL(scale_out_per_minute), 1, 1000,
      true, 5, NULL },
    { USHER_SEC_POOL, "scale_in_interval_ms", USHER_VAL_INT, POOL(scale_in_interval_ms), 0,
      86400000, true, 300000, NULL },
    { USHER_SEC_POOL, "protect", USHER_VAL_WINDOWS, POOL(protect), 0, 0, true, 0, NULL },
    { USHER_SEC_POOL, "downstream", USHER_VAL_NAME, POOL(downstream), 0, 0, true, 0, NULL },
    { USHER_SEC_POOL, "downstream_limit", USHER_VAL_INT, POOL(downstream_limit), 0, 100000, true, 0,
      NULL },
    { USHER_SEC_POOL, "shutdown_grace_ms", USHER_VAL_INT, POOL(shutdown_grace_ms), WAIT_RANGE, true,
      30000, NULL },
    { USHER_SEC_POOL, "claim_batch", USHER_VAL_INT, POOL(claim_batch), 1, 10000, true, 100, NULL },
    { USHER_SEC_POOL, "prefetch", USHER_VAL_INT, POOL(prefetch), 0, 1000, false, USHER_DERIVED,
      NULL },
    { USHER_SEC_POOL, "child_queue", USHER_VAL_INT, POOL(child_queue), 1, 64, false, USHER_DERIVED,
      NULL },
    { USHER_SEC_POOL, "metrics_port", USHER_VAL_INT, POOL(metrics_port), 0, 65535, false, 0, NULL },
    { USHER_SEC_POOL, "heartbeat_ms", USHER_VAL_INT, POOL(heartbeat_ms), 100, 3600000, true, 10000,
      NULL },
    { USHER_SEC_POOL, "smtp_rate", USHER_VAL_INT, POOL(smtp_rate), 0, 100000, true, 0, NULL },
    { USHER_SEC_PERIODIC, "cron", USHER_VAL_CRON, PERIODIC(cron), 0, 0, false, 0, NULL },
    { USHER_SEC_PERIODIC, "queue", USHER_VAL_NAME, PERIODIC(queue), 0, 0, false, 0, NULL },
    { USHER_SEC_PERIODIC, "kind", USHER_VAL_NAME, PERIODIC(kind), 0, 0, false, 0, NULL },
    { USHER_SEC_PERIODIC, "payload", USHER_VAL_STRING, PERIODIC(payload), 0, 0, false, 0, NULL },
    { USHER_SEC_PERIODIC, "priority", USHER_VAL_INT, PERIODIC(priority), PRIORITY_RANGE, false, 0,
      NULL },
};

const size_t usher_nkeys = sizeof(usher_keys) / sizeof(usher_keys[0]);
static_assert(sizeof(usher_keys) / sizeof(usher_keys[0]) <= USHER_KEYS_MAX, "raise USHER_KEYS_MAX");

static const struct {
    const char *name;
    int level;
} levels[] = {
    { "err", USHER_LOG_ERR },   { "warning", USHER_LOG_WARNING }, { "notice", USHER_LOG_NOTICE },
    { "info", USHER_LOG_INFO }, { "debug", USHER_LOG_DEBUG },
};

__attribute__((format(printf, 3, 4))) static usher_err reject(char *why, size_t whylen,
                                                              const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return USHER_ERR_CONFIG;
}

bool usher_config_valid_name(const char *name)
{
    size_t len;

    if (name == NULL)
        return false;
    len = strlen(name);
    if (len == 0 || len >= USHER_NAME_MAX)
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == len;
}

static USHER_MUSTCHECK usher_err parse_string(char **field, const char *value, char *why,
                                              size_t whylen)
{
    char *copy;

    if (*value == '\0')
        return reject(why, whylen, "empty value");
    copy = usher_strdup(value);
    free(*field);
    *field = copy;
    return USHER_OK;
}

static USHER_MUSTCHECK usher_err parse_int(int *field, int min, int max, const char *value,
                                           char *why, size_t whylen)
{
    char *end;
    long number;

    errno = 0;
    number = strtol(value, &end, 10);
    if (end == value || *end != '\0')
        return reject(why, whylen, "'%s' is not an integer", value);
    if (errno == ERANGE || number < min || number > max)
        return reject(why, whylen, "%s is out of range (%d..%d)", value, min, max);
    *field = (int)number;
    return USHER_OK;
}

static USHER_MUSTCHECK usher_err parse_level(int *field, const char *value, char *why,
                                             size_t whylen)
{
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (strcmp(value, levels[i].name) == 0) {
            *field = levels[i].level;
            return USHER_OK;
        }
    }
    return reject(why, whylen, "'%s' is not one of err, warning, notice, info, debug", value);
}

static USHER_MUSTCHECK usher_err parse_name(char *field, const char *value, char *why,
                                            size_t whylen)
{
    if (!usher_config_valid_name(value))
        return reject(why, whylen, "'%s' is not a valid name (" USHER_NAME_RULE ")", value);
    memcpy(field, value, strlen(value) + 1);
    return USHER_OK;
}

static USHER_MUSTCHECK usher_err parse_word(int *field, const char *const *words, const char *value,
                                            char *why, size_t whylen)
{
    char list[128] = "";
    size_t used = 0;

    for (int i = 0; words[i] != NULL; i++) {
        if (strcmp(value, words[i]) == 0) {
            *field = i;
            return USHER_OK;
        }
        used +=
            (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i > 0 ? ", " : "", words[i]);
        if (used >= sizeof(list))
            used = sizeof(list) - 1;
    }
    return reject(why, whylen, "'%s' is not one of %s", value, list);
}

/* Strict "2026-12-01T09:00:00Z" to ms since the epoch; a date that does not exist fails. */
static bool parse_utc(const char *text, int64_t *ms)
{
    struct tm tm = { 0 };
    char again[32];
    const char *end = strptime(text, UTC_FORMAT, &tm);
    time_t seconds;

    if (end == NULL || *end != '\0')
        return false;
    seconds = timegm(&tm);
    /* strptime takes 2026-02-30 and 1-digit fields; printing it back catches both */
    if (gmtime_r(&seconds, &tm) == NULL || strftime(again, sizeof(again), UTC_FORMAT, &tm) == 0)
        return false;
    if (strcmp(again, text) != 0)
        return false;
    *ms = (int64_t)seconds * 1000;
    return true;
}

/* One "START/END" (item is modified). */
static USHER_MUSTCHECK usher_err parse_window(char *item, usher_window *w, char *why, size_t whylen)
{
    char *slash = strchr(item, '/');
    const char *bad = NULL;

    if (slash == NULL)
        return reject(why, whylen, "'%s' is not START/END", item);
    *slash = '\0';
    if (!parse_utc(item, &w->start_ms))
        bad = item;
    else if (!parse_utc(slash + 1, &w->end_ms))
        bad = slash + 1;
    if (bad != NULL)
        return reject(why, whylen, "'%s' is not a UTC time like 2026-12-01T09:00:00Z", bad);
    if (w->end_ms <= w->start_ms)
        return reject(why, whylen, "window %s/%s does not end after it starts", item, slash + 1);
    return USHER_OK;
}

static char *trim(char *s)
{
    char *end;

    s += strspn(s, " \t");
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    return s;
}

/* "START/END, START/END, ..." into *field; an empty value clears it. */
static USHER_MUSTCHECK usher_err parse_windows(usher_windows *field, const char *value, char *why,
                                               size_t whylen)
{
    usher_windows parsed = { 0 };
    char copy[256], *next;
    usher_err err;

    if (snprintf(copy, sizeof(copy), "%s", value) >= (int)sizeof(copy))
        return reject(why, whylen, "value too long");
    next = trim(copy);
    if (*next == '\0')
        next = NULL; /* no windows */
    while (next != NULL) {
        char *item = trim(strsep(&next, ","));

        if (*item == '\0')
            return reject(why, whylen, "empty window");
        if (parsed.count == USHER_PROTECT_MAX)
            return reject(why, whylen, "more than %d windows", USHER_PROTECT_MAX);
        err = parse_window(item, &parsed.window[parsed.count], why, whylen);
        if (err != USHER_OK)
            return err;
        parsed.count++;
    }
    *field = parsed;
    return USHER_OK;
}

static USHER_MUSTCHECK usher_err parse_cron(usher_cron *field, const char *value, char *why,
                                            size_t whylen)
{
    usher_cron parsed;

    if (usher_cron_parse(value, &parsed, why, whylen) != USHER_OK)
        return USHER_ERR_CONFIG;
    *field = parsed;
    return USHER_OK;
}

usher_err usher_config_parse_value(const usher_value_spec *spec, const char *value, void *field,
                                   char *why, size_t whylen)
{
    switch (spec->type) {
    case USHER_VAL_STRING:
        return parse_string(field, value, why, whylen);
    case USHER_VAL_INT:
        return parse_int(field, spec->min, spec->max, value, why, whylen);
    case USHER_VAL_LEVEL:
        return parse_level(field, value, why, whylen);
    case USHER_VAL_NAME:
        return parse_name(field, value, why, whylen);
    case USHER_VAL_WORD:
        return parse_word(field, spec->words, value, why, whylen);
    case USHER_VAL_WINDOWS:
        return parse_windows(field, value, why, whylen);
    case USHER_VAL_CRON:
        return parse_cron(field, value, why, whylen);
    }
    return reject(why, whylen, "unknown value type %d", (int)spec->type);
}
