/*
 * The configuration loader. usher_config_load starts from the built-in
 * defaults of the `settings` table, reads the INI file with inih, checks
 * what only the whole file can tell (inheritance from [defaults], backoff
 * cap >= base, kinds naming declared queues, queues naming declared pools,
 * pool defaults that follow the pool's tiers, pool sizes in order), then
 * lets USHER_*_URL override the URLs. The first problem refuses the whole
 * file with "FILE:LINE: reason"; nothing half-loaded escapes.
 *
 * Two tables drive the parser: `settings` for the fixed sections, whose
 * fields live in usher_config, and `entity_keys` for the keys of
 * [kind.NAME], [queue.NAME] and [pool.NAME], whose fields live in one
 * element of cfg->kinds, cfg->queues or cfg->pools.
 *
 * inih reads the file through read_line below rather than by itself, for
 * three reasons: its handler is not told the line number (we count lines
 * as we hand them over), it never calls the handler for a section without
 * keys, and it cuts section names at 49 characters, too short for
 * "kind." and a 63-character name. So read_line sees each line before
 * inih does, opens sections itself and refuses what inih would refuse or
 * silently mangle (over-long lines, indented continuation lines).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ini.h>

#include "log.h"

#ifndef USHER_SOURCE_DIR
#define USHER_SOURCE_DIR "." /* CMake defines it; a bare compile reads ./conf */
#endif

#define NAME_RULE "[a-z0-9_.-], 1 to 63 characters"

enum value_type {
    T_STRING,  /* char *, owned by the config */
    T_INT,     /* int within [min, max] */
    T_LEVEL,   /* int: a syslog level given by name */
    T_NAME,    /* char[USHER_NAME_MAX] holding a valid name */
    T_WORD,    /* int: the index of the value in the key's word list */
    T_WINDOWS, /* usher_windows: "START/END, ..." in UTC ISO-8601 */
};

enum section_type { SEC_NONE, SEC_FIXED, SEC_QUEUE, SEC_KIND, SEC_POOL };

/* Ranges shared by [defaults] and [kind.NAME]. */
#define PRIORITY_RANGE 0, 2
#define ATTEMPTS_RANGE 1, 1000
#define TIMEOUT_RANGE  1, 86400000
#define BACKOFF_RANGE  0, 86400000

/* Ranges of [pool.NAME]. */
#define SIZE_RANGE  0, 1000
#define DEPTH_RANGE 0, 1000000000
#define WAIT_RANGE  0, 3600000 /* an hour, in ms */

#define UTC_FORMAT "%Y-%m-%dT%H:%M:%SZ"

typedef struct setting {
    const char *section;
    const char *key;
    enum value_type type;
    size_t offset;           /* of the field in usher_config */
    const char *str_default; /* T_STRING */
    int int_default;         /* T_INT, T_LEVEL */
    int min, max;            /* T_INT */
    bool reloadable;         /* SIGHUP may apply a new value without a restart */
    const char *env;         /* a non-empty value of this variable beats the file */
} setting;

#define CFG(field) offsetof(usher_config, field)

static const setting settings[] = {
    { "database", "url", T_STRING, CFG(database_url), "postgresql://postgres@127.0.0.1:55432/usher",
      0, 0, 0, false, "USHER_DATABASE_URL" },
    { "redis", "url", T_STRING, CFG(redis_url), "redis://127.0.0.1:56379/0", 0, 0, 0, false,
      "USHER_REDIS_URL" },
    { "smtp", "url", T_STRING, CFG(smtp_url), "smtp://127.0.0.1:52525", 0, 0, 0, false,
      "USHER_SMTP_URL" },
    { "log", "level", T_LEVEL, CFG(log_level), NULL, USHER_LOG_INFO, 0, 0, true, NULL },
    { "engine", "payload_max_bytes", T_INT, CFG(payload_max_bytes), NULL, 65536, 64, 16777216, true,
      NULL },
    { "engine", "notify_debounce_ms", T_INT, CFG(notify_debounce_ms), NULL, 2, 0, 10000, true,
      NULL },
    { "engine", "poll_interval_ms", T_INT, CFG(poll_interval_ms), NULL, 1000, 10, 600000, true,
      NULL },
    { "engine", "lease_grace_ms", T_INT, CFG(lease_grace_ms), NULL, 30000, 0, 3600000, true, NULL },
    { "engine", "dead_retention_hours", T_INT, CFG(dead_retention_hours), NULL, 336, 1, 87600, true,
      NULL },
    { "engine", "stats_retention_hours", T_INT, CFG(stats_retention_hours), NULL, 48, 1, 87600,
      true, NULL },
    { "defaults", "priority", T_INT, CFG(defaults.priority), NULL, 1, PRIORITY_RANGE, true, NULL },
    { "defaults", "max_attempts", T_INT, CFG(defaults.max_attempts), NULL, 20, ATTEMPTS_RANGE, true,
      NULL },
    { "defaults", "timeout_ms", T_INT, CFG(defaults.timeout_ms), NULL, 60000, TIMEOUT_RANGE, true,
      NULL },
    { "defaults", "backoff_base_ms", T_INT, CFG(defaults.backoff_base_ms), NULL, 1000,
      BACKOFF_RANGE, true, NULL },
    { "defaults", "backoff_cap_ms", T_INT, CFG(defaults.backoff_cap_ms), NULL, 3600000,
      BACKOFF_RANGE, true, NULL },
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

typedef struct entity_key {
    enum section_type owner; /* SEC_KIND, SEC_QUEUE or SEC_POOL */
    const char *key;
    enum value_type type; /* T_INT, T_NAME, T_WORD or T_WINDOWS */
    size_t offset;        /* of the field in the usher_{kind,queue,pool}_conf */
    int min, max;         /* T_INT */
    bool reloadable;
    int int_default;          /* an unset pool T_INT or T_WORD; DERIVED: see pool_defaults */
    const char *const *words; /* T_WORD: the accepted values, NULL-terminated */
} entity_key;

#define KIND(field) offsetof(usher_kind_conf, field)
#define POOL(field) offsetof(usher_pool_conf, field)
#define DERIVED     INT_MIN /* the default follows tier or event_tier */

/* Indexed by enum usher_pool_tier and enum usher_event_tier. */
static const char *const tier_words[] = { "high", "medium", "low", NULL };
static const char *const event_tier_words[] = { "small", "medium", "large", "mega", NULL };

/* The seed's numbers (ARCHITECTURE.md, "Worker pools and autoscaling"). */
static const struct {
    int scale_out_depth, scale_in_depth, min;
} tier_defaults[] = { { 100, 10, 2 }, { 500, 50, 1 }, { 1000, 100, 1 } };
static const int event_tier_max[] = { 10, 50, 200, 500 };

/*
 * Unset kind keys take the field at the same offset in cfg->defaults; unset
 * pool keys take int_default, or a value that follows the pool's tiers.
 */
static const entity_key entity_keys[] = {
    { SEC_KIND, "queue", T_NAME, KIND(queue), 0, 0, true, 0, NULL },
    { SEC_KIND, "priority", T_INT, KIND(priority), PRIORITY_RANGE, true, 0, NULL },
    { SEC_KIND, "max_attempts", T_INT, KIND(max_attempts), ATTEMPTS_RANGE, true, 0, NULL },
    { SEC_KIND, "timeout_ms", T_INT, KIND(timeout_ms), TIMEOUT_RANGE, true, 0, NULL },
    { SEC_KIND, "backoff_base_ms", T_INT, KIND(backoff_base_ms), BACKOFF_RANGE, true, 0, NULL },
    { SEC_KIND, "backoff_cap_ms", T_INT, KIND(backoff_cap_ms), BACKOFF_RANGE, true, 0, NULL },
    { SEC_QUEUE, "pool", T_NAME, offsetof(usher_queue_conf, pool), 0, 0, false, 0, NULL },
    { SEC_POOL, "tier", T_WORD, POOL(tier), 0, 0, true, USHER_TIER_MEDIUM, tier_words },
    { SEC_POOL, "event_tier", T_WORD, POOL(event_tier), 0, 0, true, USHER_EVENT_SMALL,
      event_tier_words },
    { SEC_POOL, "min", T_INT, POOL(min), SIZE_RANGE, true, DERIVED, NULL },
    { SEC_POOL, "max", T_INT, POOL(max), 1, 1000, true, DERIVED, NULL },
    { SEC_POOL, "initial", T_INT, POOL(initial), SIZE_RANGE, true, DERIVED, NULL },
    { SEC_POOL, "scale_out_depth", T_INT, POOL(scale_out_depth), DEPTH_RANGE, true, DERIVED, NULL },
    { SEC_POOL, "scale_in_depth", T_INT, POOL(scale_in_depth), DEPTH_RANGE, true, DERIVED, NULL },
    { SEC_POOL, "sustain_ms", T_INT, POOL(sustain_ms), WAIT_RANGE, true, 30000, NULL },
    { SEC_POOL, "scale_out_per_minute", T_INT, POOL(scale_out_per_minute), 1, 1000, true, 5, NULL },
    { SEC_POOL, "scale_in_interval_ms", T_INT, POOL(scale_in_interval_ms), 0, 86400000, true,
      300000, NULL },
    { SEC_POOL, "protect", T_WINDOWS, POOL(protect), 0, 0, true, 0, NULL },
    { SEC_POOL, "downstream", T_NAME, POOL(downstream), 0, 0, true, 0, NULL },
    { SEC_POOL, "downstream_limit", T_INT, POOL(downstream_limit), 0, 100000, true, 0, NULL },
    { SEC_POOL, "shutdown_grace_ms", T_INT, POOL(shutdown_grace_ms), WAIT_RANGE, true, 30000,
      NULL },
    { SEC_POOL, "claim_batch", T_INT, POOL(claim_batch), 1, 10000, true, 100, NULL },
    { SEC_POOL, "metrics_port", T_INT, POOL(metrics_port), 0, 65535, true, 0, NULL },
    { SEC_POOL, "heartbeat_ms", T_INT, POOL(heartbeat_ms), 100, 3600000, true, 10000, NULL },
};

#define NENTITY_KEYS (sizeof(entity_keys) / sizeof(entity_keys[0]))

static const struct {
    const char *name;
    int level;
} levels[] = {
    { "err", USHER_LOG_ERR },   { "warning", USHER_LOG_WARNING }, { "notice", USHER_LOG_NOTICE },
    { "info", USHER_LOG_INFO }, { "debug", USHER_LOG_DEBUG },
};

/* Where a [queue.NAME], [kind.NAME] or [pool.NAME] and each of its keys were written. */
typedef struct entity_meta {
    int line;                   /* of the section header */
    int key_line[NENTITY_KEYS]; /* 0 = not set in the file */
} entity_meta;

typedef struct parser {
    usher_config *cfg;
    FILE *file;
    int lineno;    /* of the line inih is working on */
    bool key_seen; /* inih appends an indented line to the last key */
    enum section_type sec;
    char sec_name[128];          /* the current section, for messages */
    const char *fixed_section;   /* the table's name of it, when SEC_FIXED */
    size_t index;                /* the current queue, kind or pool */
    int section_line[NSETTINGS]; /* of a fixed section, at its first row */
    int key_line[NSETTINGS];     /* where each fixed key was set */
    entity_meta *queue_meta;     /* parallel to cfg->queues */
    entity_meta *kind_meta;      /* parallel to cfg->kinds */
    entity_meta *pool_meta;      /* parallel to cfg->pools */
    usher_err err;
    int err_line; /* 0: the error belongs to the file, not a line */
    char reason[512];
} parser;

__attribute__((format(printf, 4, 5))) static void fail(parser *p, usher_err err, int line,
                                                       const char *fmt, ...)
{
    va_list ap;

    if (p->err != USHER_OK)
        return; /* the first error is the one worth reading */
    p->err = err;
    p->err_line = line;
    va_start(ap, fmt);
    vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
    va_end(ap);
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

static size_t queue_index(const usher_config *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->nqueues; i++)
        if (strcmp(cfg->queues[i].name, name) == 0)
            break;
    return i;
}

static size_t kind_index(const usher_config *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->nkinds; i++)
        if (strcmp(cfg->kinds[i].name, name) == 0)
            break;
    return i;
}

static size_t pool_index(const usher_config *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->npools; i++)
        if (strcmp(cfg->pools[i].name, name) == 0)
            break;
    return i;
}

const usher_kind_conf *usher_config_kind(const usher_config *cfg, const char *kind)
{
    size_t i = kind == NULL ? cfg->nkinds : kind_index(cfg, kind);

    return i < cfg->nkinds ? &cfg->kinds[i] : &cfg->defaults;
}

const usher_queue_conf *usher_config_queue(const usher_config *cfg, const char *name)
{
    size_t i = name == NULL ? cfg->nqueues : queue_index(cfg, name);

    return i < cfg->nqueues ? &cfg->queues[i] : NULL;
}

const usher_pool_conf *usher_config_pool(const usher_config *cfg, const char *name)
{
    size_t i = name == NULL ? cfg->npools : pool_index(cfg, name);

    return i < cfg->npools ? &cfg->pools[i] : NULL;
}

const char *usher_config_default_path(void)
{
    const char *env = getenv("USHER_CONFIG");

    return env != NULL && *env != '\0' ? env : USHER_SOURCE_DIR "/conf/usher.conf";
}

/* ---- values ------------------------------------------------------------ */

static void parse_string(parser *p, const char *key, char **field, const char *value)
{
    char *copy;

    if (*value == '\0') {
        fail(p, USHER_ERR_CONFIG, p->lineno, "[%s] %s: empty value", p->sec_name, key);
        return;
    }
    copy = strdup(value);
    if (copy == NULL) {
        fail(p, USHER_ERR_NOMEM, p->lineno, "out of memory");
        return;
    }
    free(*field);
    *field = copy;
}

static void parse_int(parser *p, const char *key, int *field, int min, int max, const char *value)
{
    char *end;
    long number;

    errno = 0;
    number = strtol(value, &end, 10);
    if (end == value || *end != '\0') {
        fail(p, USHER_ERR_CONFIG, p->lineno, "[%s] %s: '%s' is not an integer", p->sec_name, key,
             value);
    } else if (errno == ERANGE || number < min || number > max) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "[%s] %s: %s is out of range (%d..%d)", p->sec_name,
             key, value, min, max);
    } else {
        *field = (int)number;
    }
}

static void parse_level(parser *p, const char *key, int *field, const char *value)
{
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (strcmp(value, levels[i].name) == 0) {
            *field = levels[i].level;
            return;
        }
    }
    fail(p, USHER_ERR_CONFIG, p->lineno,
         "[%s] %s: '%s' is not one of err, warning, notice, info, debug", p->sec_name, key, value);
}

static void parse_name(parser *p, const char *key, char *field, const char *value)
{
    if (!usher_config_valid_name(value)) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "[%s] %s: '%s' is not a valid name (" NAME_RULE ")",
             p->sec_name, key, value);
        return;
    }
    memcpy(field, value, strlen(value) + 1);
}

static void parse_word(parser *p, const char *key, int *field, const char *const *words,
                       const char *value)
{
    char list[128] = "";
    size_t used = 0;

    for (int i = 0; words[i] != NULL; i++) {
        if (strcmp(value, words[i]) == 0) {
            *field = i;
            return;
        }
        used +=
            (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i > 0 ? ", " : "", words[i]);
        if (used >= sizeof(list))
            used = sizeof(list) - 1;
    }
    fail(p, USHER_ERR_CONFIG, p->lineno, "[%s] %s: '%s' is not one of %s", p->sec_name, key, value,
         list);
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

/* One "START/END" (item is modified); false after fail(). */
static bool parse_window(parser *p, const char *key, char *item, usher_window *w)
{
    char *slash = strchr(item, '/');
    const char *bad = NULL;

    if (slash == NULL) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "[%s] %s: '%s' is not START/END", p->sec_name, key,
             item);
        return false;
    }
    *slash = '\0';
    if (!parse_utc(item, &w->start_ms))
        bad = item;
    else if (!parse_utc(slash + 1, &w->end_ms))
        bad = slash + 1;
    if (bad != NULL) {
        fail(p, USHER_ERR_CONFIG, p->lineno,
             "[%s] %s: '%s' is not a UTC time like 2026-12-01T09:00:00Z", p->sec_name, key, bad);
        return false;
    }
    if (w->end_ms <= w->start_ms) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "[%s] %s: window %s/%s does not end after it starts",
             p->sec_name, key, item, slash + 1);
        return false;
    }
    return true;
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
static void parse_windows(parser *p, const char *key, usher_windows *field, const char *value)
{
    usher_windows parsed = { 0 };
    char copy[256], *next;

    if (snprintf(copy, sizeof(copy), "%s", value) >= (int)sizeof(copy)) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "[%s] %s: value too long", p->sec_name, key);
        return;
    }
    next = trim(copy);
    if (*next == '\0')
        next = NULL; /* no windows */
    while (next != NULL) {
        char *item = trim(strsep(&next, ","));

        if (*item == '\0') {
            fail(p, USHER_ERR_CONFIG, p->lineno, "[%s] %s: empty window", p->sec_name, key);
            return;
        }
        if (parsed.count == USHER_PROTECT_MAX) {
            fail(p, USHER_ERR_CONFIG, p->lineno, "[%s] %s: more than %d windows", p->sec_name, key,
                 USHER_PROTECT_MAX);
            return;
        }
        if (!parse_window(p, key, item, &parsed.window[parsed.count]))
            return;
        parsed.count++;
    }
    *field = parsed;
}

static void parse_value(parser *p, const char *key, enum value_type type, void *field, int min,
                        int max, const char *const *words, const char *value)
{
    switch (type) {
    case T_STRING:
        parse_string(p, key, field, value);
        break;
    case T_INT:
        parse_int(p, key, field, min, max, value);
        break;
    case T_LEVEL:
        parse_level(p, key, field, value);
        break;
    case T_NAME:
        parse_name(p, key, field, value);
        break;
    case T_WORD:
        parse_word(p, key, field, words, value);
        break;
    case T_WINDOWS:
        parse_windows(p, key, field, value);
        break;
    }
}

/* ---- keys (the inih handler) ------------------------------------------- */

/* Records that key is set on this line; refuses a second setting. */
static bool first_setting(parser *p, int *line, const char *key)
{
    if (*line != 0) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "duplicate key '%s' in [%s] (first set on line %d)",
             key, p->sec_name, *line);
        return false;
    }
    *line = p->lineno;
    return true;
}

static size_t find_setting(const char *section, const char *key)
{
    size_t i;

    for (i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].section, section) == 0 &&
            (key == NULL || strcmp(settings[i].key, key) == 0))
            break;
    return i;
}

static size_t find_entity_key(enum section_type owner, const char *key)
{
    size_t i;

    for (i = 0; i < NENTITY_KEYS; i++)
        if (entity_keys[i].owner == owner && strcmp(entity_keys[i].key, key) == 0)
            break;
    return i;
}

static void set_fixed(parser *p, const char *key, const char *value)
{
    size_t i = find_setting(p->fixed_section, key);
    const setting *s = &settings[i];

    if (i == NSETTINGS) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "unknown key '%s' in [%s]", key, p->sec_name);
        return;
    }
    if (first_setting(p, &p->key_line[i], key))
        parse_value(p, key, s->type, (char *)p->cfg + s->offset, s->min, s->max, NULL, value);
}

/* The element the current [kind.|queue.|pool.NAME] section fills, and its meta. */
static char *current_entity(parser *p, entity_meta **meta)
{
    switch (p->sec) {
    case SEC_KIND:
        *meta = &p->kind_meta[p->index];
        return (char *)&p->cfg->kinds[p->index];
    case SEC_QUEUE:
        *meta = &p->queue_meta[p->index];
        return (char *)&p->cfg->queues[p->index];
    case SEC_POOL:
        *meta = &p->pool_meta[p->index];
        return (char *)&p->cfg->pools[p->index];
    case SEC_NONE:
    case SEC_FIXED:
        break;
    }
    *meta = NULL;
    return NULL;
}

static void set_entity(parser *p, const char *key, const char *value)
{
    size_t i = find_entity_key(p->sec, key);
    const entity_key *k = &entity_keys[i];
    entity_meta *meta;
    char *base = current_entity(p, &meta);

    if (i == NENTITY_KEYS || base == NULL) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "unknown key '%s' in [%s]", key, p->sec_name);
        return;
    }
    if (first_setting(p, &meta->key_line[i], key))
        parse_value(p, key, k->type, base + k->offset, k->min, k->max, k->words, value);
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    parser *p = user;

    (void)section; /* read_line tracks sections: inih cuts long names */
    if (p->err != USHER_OK)
        return 0;
    if (p->sec == SEC_FIXED)
        set_fixed(p, key, value);
    else if (p->sec == SEC_NONE)
        fail(p, USHER_ERR_CONFIG, p->lineno, "key '%s' outside any section", key);
    else
        set_entity(p, key, value);
    return p->err == USHER_OK;
}

/* ---- sections ---------------------------------------------------------- */

/* realloc for n + 1 elements; NULL (arr untouched) on failure or overflow. */
static void *grow(void *arr, size_t n, size_t size)
{
    if (n >= SIZE_MAX / size - 1)
        return NULL;
    return realloc(arr, (n + 1) * size);
}

static bool new_entity_ok(parser *p, const char *what, const char *name, size_t dup, size_t count,
                          const entity_meta *meta)
{
    if (!usher_config_valid_name(name)) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "invalid %s name '%s' (" NAME_RULE ")", what, name);
        return false;
    }
    if (dup < count) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "duplicate section [%s] (first on line %d)",
             p->sec_name, meta[dup].line);
        return false;
    }
    return true;
}

/* Grows *meta to n + 1 entries and clears the new one. */
static bool add_meta(parser *p, entity_meta **meta, size_t n)
{
    entity_meta *grown = grow(*meta, n, sizeof(*grown));

    if (grown == NULL) {
        fail(p, USHER_ERR_NOMEM, p->lineno, "out of memory");
        return false;
    }
    *meta = grown;
    memset(&grown[n], 0, sizeof(grown[n]));
    grown[n].line = p->lineno;
    return true;
}

static void add_queue(parser *p, const char *name)
{
    usher_config *cfg = p->cfg;
    size_t n = cfg->nqueues;
    usher_queue_conf *queues;

    if (!new_entity_ok(p, "queue", name, queue_index(cfg, name), n, p->queue_meta))
        return;
    queues = grow(cfg->queues, n, sizeof(*queues));
    if (queues == NULL) {
        fail(p, USHER_ERR_NOMEM, p->lineno, "out of memory");
        return;
    }
    cfg->queues = queues;
    if (!add_meta(p, &p->queue_meta, n))
        return;
    memset(&queues[n], 0, sizeof(queues[n]));
    memcpy(queues[n].name, name, strlen(name) + 1);
    p->sec = SEC_QUEUE;
    p->index = cfg->nqueues++;
}

static void add_kind(parser *p, const char *name)
{
    usher_config *cfg = p->cfg;
    size_t n = cfg->nkinds;
    usher_kind_conf *kinds;

    if (!new_entity_ok(p, "kind", name, kind_index(cfg, name), n, p->kind_meta))
        return;
    kinds = grow(cfg->kinds, n, sizeof(*kinds));
    if (kinds == NULL) {
        fail(p, USHER_ERR_NOMEM, p->lineno, "out of memory");
        return;
    }
    cfg->kinds = kinds;
    if (!add_meta(p, &p->kind_meta, n))
        return;
    memset(&kinds[n], 0, sizeof(kinds[n]));
    memcpy(kinds[n].name, name, strlen(name) + 1);
    p->sec = SEC_KIND;
    p->index = cfg->nkinds++;
}

static void add_pool(parser *p, const char *name)
{
    usher_config *cfg = p->cfg;
    size_t n = cfg->npools;
    usher_pool_conf *pools;

    if (!new_entity_ok(p, "pool", name, pool_index(cfg, name), n, p->pool_meta))
        return;
    pools = grow(cfg->pools, n, sizeof(*pools));
    if (pools == NULL) {
        fail(p, USHER_ERR_NOMEM, p->lineno, "out of memory");
        return;
    }
    cfg->pools = pools;
    if (!add_meta(p, &p->pool_meta, n))
        return;
    memset(&pools[n], 0, sizeof(pools[n]));
    memcpy(pools[n].name, name, strlen(name) + 1);
    p->sec = SEC_POOL;
    p->index = cfg->npools++;
}

static void enter_fixed(parser *p, const char *name)
{
    size_t i = find_setting(name, NULL);

    if (i == NSETTINGS) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "unknown section [%s]", name);
    } else if (p->section_line[i] != 0) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "duplicate section [%s] (first on line %d)", name,
             p->section_line[i]);
    } else {
        p->section_line[i] = p->lineno;
        p->sec = SEC_FIXED;
        p->fixed_section = settings[i].section;
    }
}

/*
 * inih's scan for the end of a name: the first of chars, or an inline
 * comment (a prefix character after whitespace), or the end of the line.
 */
static const char *find_end(const char *s, const char *chars)
{
    bool was_space = false;

    while (*s != '\0' && strchr(chars, *s) == NULL) {
        if (INI_ALLOW_INLINE_COMMENTS && was_space && strchr(INI_INLINE_COMMENT_PREFIXES, *s))
            break;
        was_space = strchr(" \t\r\n\f\v", *s) != NULL;
        s++;
    }
    return s;
}

static void open_section(parser *p, const char *start)
{
    const char *end = find_end(start + 1, "]");
    size_t len = (size_t)(end - start - 1);

    if (*end != ']') {
        fail(p, USHER_ERR_CONFIG, p->lineno, "expected ']' to close the section name");
        return;
    }
    if (len >= sizeof(p->sec_name)) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "section name longer than %zu characters",
             sizeof(p->sec_name) - 1);
        return;
    }
    memcpy(p->sec_name, start + 1, len);
    p->sec_name[len] = '\0';
    p->sec = SEC_NONE;
    p->key_seen = false;
    if (strncmp(p->sec_name, "queue.", 6) == 0)
        add_queue(p, p->sec_name + 6);
    else if (strncmp(p->sec_name, "kind.", 5) == 0)
        add_kind(p, p->sec_name + 5);
    else if (strncmp(p->sec_name, "pool.", 5) == 0)
        add_pool(p, p->sec_name + 5);
    else
        enter_fixed(p, p->sec_name);
}

/* ---- lines (the inih reader) ------------------------------------------- */

/* Looks at a line the way inih will, before it does. */
static void scan_line(parser *p, const char *line)
{
    const char *start;

    if (p->lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
        line += 3; /* inih skips a UTF-8 BOM */
    start = line + strspn(line, " \t\r\n\f\v");
    if (*start == '\0' || strchr(INI_START_COMMENT_PREFIXES, *start) != NULL)
        return;
    if (start > line && p->key_seen) {
        fail(p, USHER_ERR_CONFIG, p->lineno,
             "indented line (inih would append it to the value above)");
    } else if (*start == '[') {
        open_section(p, start);
    } else if (*find_end(start, "=:") == '\0') {
        fail(p, USHER_ERR_CONFIG, p->lineno, "expected 'key = value' or '[section]'");
    } else {
        p->key_seen = true;
    }
}

/* True unless inih's buffer cut the line short; eats a newline just past it. */
static bool line_fits(parser *p, const char *buf, int size)
{
    size_t len = strlen(buf);
    int c;

    if (len == 0 || len + 1 < (size_t)size || buf[len - 1] == '\n')
        return true;
    c = getc(p->file);
    if (c == '\n' || c == EOF)
        return true;
    ungetc(c, p->file);
    return false;
}

static char *read_line(char *buf, int size, void *stream)
{
    parser *p = stream;

    if (p->err != USHER_OK || fgets(buf, size, p->file) == NULL)
        return NULL;
    p->lineno++;
    if (!line_fits(p, buf, size)) {
        fail(p, USHER_ERR_CONFIG, p->lineno,
             "line longer than %d characters (long URLs can come from USHER_*_URL)", size - 1);
        return NULL;
    }
    scan_line(p, buf);
    return p->err == USHER_OK ? buf : NULL;
}

/* ---- after the file ---------------------------------------------------- */

static void inherit_defaults(usher_config *cfg, usher_kind_conf *kind, const entity_meta *meta)
{
    for (size_t i = 0; i < NENTITY_KEYS; i++) {
        const entity_key *k = &entity_keys[i];
        size_t size = k->type == T_NAME ? USHER_NAME_MAX : sizeof(int);

        if (k->owner == SEC_KIND && meta->key_line[i] == 0)
            memcpy((char *)kind + k->offset, (char *)&cfg->defaults + k->offset, size);
    }
}

static void check_backoff(parser *p, const usher_kind_conf *k, const char *section, int line)
{
    if (k->backoff_cap_ms < k->backoff_base_ms)
        fail(p, USHER_ERR_CONFIG, line,
             "[%s%s] backoff_cap_ms (%d) is less than backoff_base_ms (%d)", section, k->name,
             k->backoff_cap_ms, k->backoff_base_ms);
}

static void check_kinds(parser *p)
{
    usher_config *cfg = p->cfg;
    size_t queue_key = find_entity_key(SEC_KIND, "queue");

    for (size_t i = 0; i < cfg->nkinds; i++) {
        usher_kind_conf *kind = &cfg->kinds[i];
        const entity_meta *meta = &p->kind_meta[i];

        inherit_defaults(cfg, kind, meta);
        check_backoff(p, kind, "kind.", meta->line);
        if (kind->queue[0] != '\0' && queue_index(cfg, kind->queue) == cfg->nqueues)
            fail(p, USHER_ERR_CONFIG, meta->key_line[queue_key],
                 "kind '%s' names undeclared queue '%s'", kind->name, kind->queue);
    }
}

static void check_queues(parser *p)
{
    usher_config *cfg = p->cfg;
    size_t pool_key = find_entity_key(SEC_QUEUE, "pool");

    for (size_t i = 0; i < cfg->nqueues; i++) {
        const usher_queue_conf *queue = &cfg->queues[i];
        const entity_meta *meta = &p->queue_meta[i];

        if (meta->key_line[pool_key] == 0)
            fail(p, USHER_ERR_CONFIG, meta->line, "[queue.%s] has no pool", queue->name);
        else if (pool_index(cfg, queue->pool) == cfg->npools)
            fail(p, USHER_ERR_CONFIG, meta->key_line[pool_key],
                 "queue '%s' names undeclared pool '%s'", queue->name, queue->pool);
    }
}

static bool pool_key_set(const entity_meta *meta, const char *key)
{
    return meta->key_line[find_entity_key(SEC_POOL, key)] != 0;
}

/* Unset keys: the table's default, or one that follows the tiers. */
static void pool_defaults(usher_pool_conf *pool, const entity_meta *meta)
{
    for (size_t i = 0; i < NENTITY_KEYS; i++) {
        const entity_key *k = &entity_keys[i];
        bool plain_int = k->type == T_INT || k->type == T_WORD;

        if (k->owner == SEC_POOL && plain_int && meta->key_line[i] == 0 &&
            k->int_default != DERIVED)
            memcpy((char *)pool + k->offset, &k->int_default, sizeof(int));
    }
    if (!pool_key_set(meta, "scale_out_depth"))
        pool->scale_out_depth = tier_defaults[pool->tier].scale_out_depth;
    if (!pool_key_set(meta, "scale_in_depth"))
        pool->scale_in_depth = tier_defaults[pool->tier].scale_in_depth;
    if (!pool_key_set(meta, "min"))
        pool->min = tier_defaults[pool->tier].min;
    if (!pool_key_set(meta, "max"))
        pool->max = event_tier_max[pool->event_tier];
    if (!pool_key_set(meta, "initial"))
        pool->initial = pool->min;
}

static void check_pool(parser *p, const usher_pool_conf *pool, const entity_meta *meta)
{
    const char *name = pool->name;

    if (pool->min > pool->max)
        fail(p, USHER_ERR_CONFIG, meta->line, "[pool.%s] min (%d) is greater than max (%d)", name,
             pool->min, pool->max);
    else if (pool->min > pool->initial)
        fail(p, USHER_ERR_CONFIG, meta->line, "[pool.%s] min (%d) is greater than initial (%d)",
             name, pool->min, pool->initial);
    else if (pool->initial > pool->max)
        fail(p, USHER_ERR_CONFIG, meta->line, "[pool.%s] initial (%d) is greater than max (%d)",
             name, pool->initial, pool->max);
    else if (pool->scale_in_depth >= pool->scale_out_depth)
        fail(p, USHER_ERR_CONFIG, meta->line,
             "[pool.%s] scale_in_depth (%d) is not less than scale_out_depth (%d)", name,
             pool->scale_in_depth, pool->scale_out_depth);
    else if (pool->downstream_limit > 0 && pool->downstream[0] == '\0')
        fail(p, USHER_ERR_CONFIG, meta->key_line[find_entity_key(SEC_POOL, "downstream_limit")],
             "[pool.%s] downstream_limit without downstream", name);
}

static void check_pools(parser *p)
{
    for (size_t i = 0; i < p->cfg->npools; i++) {
        pool_defaults(&p->cfg->pools[i], &p->pool_meta[i]);
        check_pool(p, &p->cfg->pools[i], &p->pool_meta[i]);
    }
}

/* inih's own verdict: the line of its first error, -1 or -2 when it failed. */
static void check_inih_result(parser *p, int result)
{
    if (result < 0) {
        fail(p, USHER_ERR_NOMEM, 0, "inih failed (%d)", result);
    } else if (result > 0 && (p->err == USHER_OK || result < p->err_line)) {
        p->err = USHER_OK; /* inih saw a problem before ours: report it */
        fail(p, USHER_ERR_CONFIG, result, "syntax error");
    }
}

static void load_file(parser *p, const char *path)
{
    int result;

    p->cfg->path = strdup(path);
    if (p->cfg->path == NULL) {
        fail(p, USHER_ERR_NOMEM, 0, "out of memory");
        return;
    }
    p->file = fopen(path, "r");
    if (p->file == NULL) {
        fail(p, USHER_ERR_CONFIG, 0, "cannot open: %s", strerror(errno));
        return;
    }
    result = ini_parse_stream(read_line, p, on_key, p);
    if (ferror(p->file))
        fail(p, USHER_ERR_CONFIG, 0, "cannot read: %s", strerror(errno));
    fclose(p->file);
    p->file = NULL;
    check_inih_result(p, result);
    if (p->err != USHER_OK)
        return;
    check_backoff(p, &p->cfg->defaults, "defaults",
                  p->section_line[find_setting("defaults", NULL)]);
    check_kinds(p);
    check_pools(p);
    check_queues(p);
}

/* ---- load and free ----------------------------------------------------- */

static void apply_defaults(parser *p)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        void *field = (char *)p->cfg + settings[i].offset;

        if (settings[i].type == T_STRING) {
            char **slot = field;

            *slot = strdup(settings[i].str_default);
            if (*slot == NULL)
                fail(p, USHER_ERR_NOMEM, 0, "out of memory");
        } else {
            int *slot = field;

            *slot = settings[i].int_default;
        }
    }
}

static void apply_env(parser *p)
{
    for (size_t i = 0; i < NSETTINGS && p->err == USHER_OK; i++) {
        const char *value = settings[i].env != NULL ? getenv(settings[i].env) : NULL;
        char **slot = (void *)((char *)p->cfg + settings[i].offset);
        char *copy;

        if (value == NULL || *value == '\0')
            continue;
        copy = strdup(value);
        if (copy == NULL) {
            fail(p, USHER_ERR_NOMEM, 0, "out of memory");
            return;
        }
        free(*slot);
        *slot = copy;
    }
}

static void report(const parser *p, const char *path, char *errbuf, size_t errlen)
{
    if (errbuf == NULL || errlen == 0)
        return;
    if (path == NULL)
        snprintf(errbuf, errlen, "%s", p->reason);
    else if (p->err_line == 0)
        snprintf(errbuf, errlen, "%s: %s", path, p->reason);
    else
        snprintf(errbuf, errlen, "%s:%d: %s", path, p->err_line, p->reason);
}

usher_err usher_config_load(usher_config *out, const char *path, char *errbuf, size_t errlen)
{
    usher_config cfg = { 0 };
    parser p = { .cfg = &cfg };

    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (out == NULL)
        return USHER_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    apply_defaults(&p);
    if (p.err == USHER_OK && path != NULL)
        load_file(&p, path);
    if (p.err == USHER_OK)
        apply_env(&p);
    free(p.queue_meta);
    free(p.kind_meta);
    free(p.pool_meta);
    if (p.err != USHER_OK) {
        report(&p, path, errbuf, errlen);
        usher_config_free(&cfg);
        return p.err;
    }
    *out = cfg;
    return USHER_OK;
}

void usher_config_free(usher_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (settings[i].type == T_STRING) {
            char **slot = (void *)((char *)cfg + settings[i].offset);

            free(*slot);
        }
    }
    free(cfg->path);
    free(cfg->queues);
    free(cfg->kinds);
    free(cfg->pools);
    memset(cfg, 0, sizeof(*cfg));
}
