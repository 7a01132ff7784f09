/*
 * The configuration loader. usher_config_load starts from the built-in
 * defaults of the `usher_settings` table, reads the INI file with inih,
 * checks what only the whole file can tell (inheritance from [defaults],
 * backoff cap >= base, kinds and periodic jobs naming declared queues,
 * queues naming declared pools, pool defaults that follow the pool's
 * tiers, pool sizes in order, periodic payloads), then lets USHER_*_URL
 * and the other variables of the table (USHER_SMTP_PASSWORD...) override
 * the file. The first problem refuses the whole file with
 * "FILE:LINE: reason"; nothing half-loaded escapes.
 *
 * Two tables drive the parser (config_values.c, which also parses the
 * values): `usher_settings` for the fixed sections, whose fields live in
 * usher_config, and `usher_keys` for the keys of [kind.NAME],
 * [queue.NAME], [pool.NAME] and [periodic.NAME], whose fields live in one
 * element of cfg->kinds, cfg->queues, cfg->pools or cfg->periodics (the
 * `entity_types` of the sections).
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

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "alloc.h"
#include "config_values.h"
#include "install_paths.h"
#include "log.h"
#include "payload.h"

/* The seed's numbers (ARCHITECTURE.md, "Worker pools and autoscaling"). */
/*
 * age_budget_s: how old the oldest available job of a queue served by the
 * tier may grow before an operator is told (conf/prometheus/usher-alerts.yml):
 * notifications within half a minute, mail and tickets within two, reports
 * and roll-ups within half an hour.
 */
static const struct {
    int scale_out_depth, scale_in_depth, min, age_budget_s;
} tier_defaults[] = { { 100, 10, 2, 30 }, { 500, 50, 1, 120 }, { 1000, 100, 1, 1800 } };
static const int event_tier_max[] = { 10, 50, 200, 500 };

/* Where a [queue.NAME], [kind.NAME], [pool.NAME] or [periodic.NAME] and its keys were written. */
typedef struct entity_meta {
    int line;                     /* of the section header */
    int key_line[USHER_KEYS_MAX]; /* 0 = not set in the file */
} entity_meta;

typedef struct parser {
    usher_config *cfg;
    FILE *file;
    int lineno;    /* of the line inih is working on */
    bool key_seen; /* inih appends an indented line to the last key */
    usher_section_type sec;
    char sec_name[128];                   /* the current section, for messages */
    const char *fixed_section;            /* the table's name of it, when USHER_SEC_FIXED */
    size_t index;                         /* the current queue, kind, pool or periodic */
    int section_line[USHER_SETTINGS_MAX]; /* of a fixed section, at its first row */
    int key_line[USHER_SETTINGS_MAX];     /* where each fixed key was set */
    entity_meta *meta[USHER_NSECTIONS]; /* meta[USHER_SEC_QUEUE] parallels cfg->queues, and so on */
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

/* The sections that declare one element each: [PREFIXNAME]. */
static const struct {
    const char *prefix;
    const char *what; /* for messages */
    size_t size;      /* of one element */
} entity_types[USHER_NSECTIONS] = {
    [USHER_SEC_QUEUE] = { "queue.", "queue", sizeof(usher_queue_conf) },
    [USHER_SEC_KIND] = { "kind.", "kind", sizeof(usher_kind_conf) },
    [USHER_SEC_POOL] = { "pool.", "pool", sizeof(usher_pool_conf) },
    [USHER_SEC_PERIODIC] = { "periodic.", "periodic", sizeof(usher_periodic_conf) },
};

/* entity_at reads every element's name at its start. */
static_assert(offsetof(usher_queue_conf, name) == 0, "name first");
static_assert(offsetof(usher_kind_conf, name) == 0, "name first");
static_assert(offsetof(usher_pool_conf, name) == 0, "name first");
static_assert(offsetof(usher_periodic_conf, name) == 0, "name first");

/* How many elements the sections of type sec declared. */
static size_t entity_count(const usher_config *cfg, usher_section_type sec)
{
    switch (sec) {
    case USHER_SEC_QUEUE:
        return cfg->nqueues;
    case USHER_SEC_KIND:
        return cfg->nkinds;
    case USHER_SEC_POOL:
        return cfg->npools;
    case USHER_SEC_PERIODIC:
        return cfg->nperiodics;
    case USHER_SEC_NONE:
    case USHER_SEC_FIXED:
    case USHER_NSECTIONS:
        break;
    }
    return 0;
}

/* Element i (< entity_count) of the array that sections of type sec fill. */
static char *entity_at(const usher_config *cfg, usher_section_type sec, size_t i)
{
    switch (sec) {
    case USHER_SEC_QUEUE:
        return (char *)&cfg->queues[i];
    case USHER_SEC_KIND:
        return (char *)&cfg->kinds[i];
    case USHER_SEC_POOL:
        return (char *)&cfg->pools[i];
    case USHER_SEC_PERIODIC:
        return (char *)&cfg->periodics[i];
    case USHER_SEC_NONE:
    case USHER_SEC_FIXED:
    case USHER_NSECTIONS:
        break;
    }
    return NULL;
}

/* The index of the element called name, or entity_count when there is none. */
static size_t entity_index(const usher_config *cfg, usher_section_type sec, const char *name)
{
    size_t i, n = entity_count(cfg, sec);

    for (i = 0; name != NULL && i < n; i++)
        if (strcmp(entity_at(cfg, sec, i), name) == 0)
            return i;
    return n;
}

const usher_kind_conf *usher_config_kind(const usher_config *cfg, const char *kind)
{
    size_t i = entity_index(cfg, USHER_SEC_KIND, kind);

    return i < cfg->nkinds ? &cfg->kinds[i] : &cfg->defaults;
}

bool usher_config_has_read_url(const usher_config *cfg)
{
    return cfg->database_read_url != NULL && cfg->database_read_url[0] != '\0';
}

const char *usher_config_kind_queue(const usher_config *cfg, const char *kind,
                                    const char *otherwise)
{
    const usher_kind_conf *k = usher_config_kind(cfg, kind);

    return k->queue[0] != '\0' ? k->queue : otherwise;
}

const usher_queue_conf *usher_config_queue(const usher_config *cfg, const char *name)
{
    size_t i = entity_index(cfg, USHER_SEC_QUEUE, name);

    return i < cfg->nqueues ? &cfg->queues[i] : NULL;
}

int usher_config_event_tier_max(int event_tier)
{
    int n = (int)(sizeof(event_tier_max) / sizeof(event_tier_max[0]));

    return event_tier_max[event_tier < 0 ? 0 : event_tier >= n ? n - 1 : event_tier];
}

const usher_pool_conf *usher_config_pool(const usher_config *cfg, const char *name)
{
    size_t i = entity_index(cfg, USHER_SEC_POOL, name);

    return i < cfg->npools ? &cfg->pools[i] : NULL;
}

const char *usher_config_default_path(void)
{
    const char *env = getenv("USHER_CONFIG");

    return env != NULL && *env != '\0' ? env : USHER_CONF_DIR "/usher.conf";
}

/* ---- values ------------------------------------------------------------ */

static void parse_value(parser *p, const char *key, const usher_value_spec *spec, void *field,
                        const char *value)
{
    char why[256];
    usher_err err = usher_config_parse_value(spec, value, field, why, sizeof(why));

    if (err != USHER_OK)
        fail(p, err, p->lineno, "[%s] %s: %s", p->sec_name, key, why);
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

    for (i = 0; i < usher_nsettings; i++)
        if (strcmp(usher_settings[i].section, section) == 0 &&
            (key == NULL || strcmp(usher_settings[i].key, key) == 0))
            break;
    return i;
}

static size_t find_entity_key(usher_section_type owner, const char *key)
{
    size_t i;

    for (i = 0; i < usher_nkeys; i++)
        if (usher_keys[i].owner == owner && strcmp(usher_keys[i].key, key) == 0)
            break;
    return i;
}

static void set_fixed(parser *p, const char *key, const char *value)
{
    size_t i = find_setting(p->fixed_section, key);
    const usher_setting *s = &usher_settings[i];

    if (i == usher_nsettings) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "unknown key '%s' in [%s]", key, p->sec_name);
        return;
    }
    if (first_setting(p, &p->key_line[i], key)) {
        usher_value_spec spec = {
            .type = s->type, .min = s->min, .max = s->max, .words = s->words
        };

        parse_value(p, key, &spec, (char *)p->cfg + s->offset, value);
    }
}

/* The element the current [kind.|queue.|pool.|periodic.NAME] section fills, and its meta. */
static char *current_entity(parser *p, entity_meta **meta)
{
    if (p->sec < USHER_SEC_QUEUE || p->sec >= USHER_NSECTIONS) {
        *meta = NULL;
        return NULL;
    }
    *meta = &p->meta[p->sec][p->index];
    return entity_at(p->cfg, p->sec, p->index);
}

static void set_entity(parser *p, const char *key, const char *value)
{
    size_t i = find_entity_key(p->sec, key);
    const usher_key *k = &usher_keys[i];
    entity_meta *meta;
    char *base = current_entity(p, &meta);

    if (i == usher_nkeys || base == NULL) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "unknown key '%s' in [%s]", key, p->sec_name);
        return;
    }
    if (first_setting(p, &meta->key_line[i], key)) {
        usher_value_spec spec = {
            .type = k->type, .min = k->min, .max = k->max, .words = k->words
        };

        parse_value(p, key, &spec, base + k->offset, value);
    }
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    parser *p = user;

    (void)section; /* read_line tracks sections: inih cuts long names */
    if (p->err != USHER_OK)
        return 0;
    if (p->sec == USHER_SEC_FIXED)
        set_fixed(p, key, value);
    else if (p->sec == USHER_SEC_NONE)
        fail(p, USHER_ERR_CONFIG, p->lineno, "key '%s' outside any section", key);
    else
        set_entity(p, key, value);
    return p->err == USHER_OK;
}

/* ---- sections ---------------------------------------------------------- */

/* realloc for n + 1 elements (an overflow is out of memory too). */
static void *grow(void *arr, size_t n, size_t size)
{
    if (n >= SIZE_MAX / size - 1)
        usher_oom(SIZE_MAX);
    return usher_realloc(arr, (n + 1) * size);
}

static bool new_entity_ok(parser *p, usher_section_type sec, const char *name)
{
    size_t dup = entity_index(p->cfg, sec, name);

    if (!usher_config_valid_name(name)) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "invalid %s name '%s' (" USHER_NAME_RULE ")",
             entity_types[sec].what, name);
        return false;
    }
    if (dup < entity_count(p->cfg, sec)) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "duplicate section [%s] (first on line %d)",
             p->sec_name, p->meta[sec][dup].line);
        return false;
    }
    return true;
}

/* Grows sec's array in cfg to n + 1 elements (n = its count). */
static void grow_entities(usher_config *cfg, usher_section_type sec, size_t n)
{
    switch (sec) {
    case USHER_SEC_QUEUE:
        cfg->queues = grow(cfg->queues, n, sizeof(*cfg->queues));
        break;
    case USHER_SEC_KIND:
        cfg->kinds = grow(cfg->kinds, n, sizeof(*cfg->kinds));
        break;
    case USHER_SEC_POOL:
        cfg->pools = grow(cfg->pools, n, sizeof(*cfg->pools));
        break;
    case USHER_SEC_PERIODIC:
        cfg->periodics = grow(cfg->periodics, n, sizeof(*cfg->periodics));
        break;
    case USHER_SEC_NONE:
    case USHER_SEC_FIXED:
    case USHER_NSECTIONS:
        break;
    }
}

/* Counts one more element of sec's array; the caller has grown it. */
static void count_entity(usher_config *cfg, usher_section_type sec)
{
    if (sec == USHER_SEC_QUEUE)
        cfg->nqueues++;
    else if (sec == USHER_SEC_KIND)
        cfg->nkinds++;
    else if (sec == USHER_SEC_POOL)
        cfg->npools++;
    else if (sec == USHER_SEC_PERIODIC)
        cfg->nperiodics++;
}

/* Opens [PREFIX.name]: a new zeroed element named name, and its meta. */
static void add_entity(parser *p, usher_section_type sec, const char *name)
{
    size_t n = entity_count(p->cfg, sec);
    entity_meta *meta;
    char *element;

    if (!new_entity_ok(p, sec, name))
        return;
    meta = p->meta[sec] = grow(p->meta[sec], n, sizeof(*meta));
    grow_entities(p->cfg, sec, n);
    memset(&meta[n], 0, sizeof(meta[n]));
    meta[n].line = p->lineno;
    count_entity(p->cfg, sec);
    element = entity_at(p->cfg, sec, n);
    memset(element, 0, entity_types[sec].size);
    memcpy(element, name, strlen(name) + 1);
    p->sec = sec;
    p->index = n;
}

static void enter_fixed(parser *p, const char *name)
{
    size_t i = find_setting(name, NULL);

    if (i == usher_nsettings) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "unknown section [%s]", name);
    } else if (p->section_line[i] != 0) {
        fail(p, USHER_ERR_CONFIG, p->lineno, "duplicate section [%s] (first on line %d)", name,
             p->section_line[i]);
    } else {
        p->section_line[i] = p->lineno;
        p->sec = USHER_SEC_FIXED;
        p->fixed_section = usher_settings[i].section;
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
    p->sec = USHER_SEC_NONE;
    p->key_seen = false;
    for (int sec = USHER_SEC_QUEUE; sec < USHER_NSECTIONS; sec++) {
        size_t prefix_len = strlen(entity_types[sec].prefix);

        if (strncmp(p->sec_name, entity_types[sec].prefix, prefix_len) == 0) {
            add_entity(p, (usher_section_type)sec, p->sec_name + prefix_len);
            return;
        }
    }
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
    for (size_t i = 0; i < usher_nkeys; i++) {
        const usher_key *k = &usher_keys[i];
        size_t size = k->type == USHER_VAL_NAME ? USHER_NAME_MAX : sizeof(int);

        if (k->owner == USHER_SEC_KIND && meta->key_line[i] == 0)
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
    size_t queue_key = find_entity_key(USHER_SEC_KIND, "queue");

    for (size_t i = 0; i < cfg->nkinds; i++) {
        usher_kind_conf *kind = &cfg->kinds[i];
        const entity_meta *meta = &p->meta[USHER_SEC_KIND][i];

        inherit_defaults(cfg, kind, meta);
        check_backoff(p, kind, "kind.", meta->line);
        if (kind->queue[0] != '\0' && !usher_config_queue(cfg, kind->queue))
            fail(p, USHER_ERR_CONFIG, meta->key_line[queue_key],
                 "kind '%s' names undeclared queue '%s'", kind->name, kind->queue);
    }
}

static void check_queues(parser *p)
{
    usher_config *cfg = p->cfg;
    size_t pool_key = find_entity_key(USHER_SEC_QUEUE, "pool");

    size_t budget_key = find_entity_key(USHER_SEC_QUEUE, "age_budget_s");

    for (size_t i = 0; i < cfg->nqueues; i++) {
        usher_queue_conf *queue = &cfg->queues[i];
        const entity_meta *meta = &p->meta[USHER_SEC_QUEUE][i];
        const usher_pool_conf *pool = usher_config_pool(cfg, queue->pool);

        if (meta->key_line[pool_key] == 0)
            fail(p, USHER_ERR_CONFIG, meta->line, "[queue.%s] has no pool", queue->name);
        else if (pool == NULL)
            fail(p, USHER_ERR_CONFIG, meta->key_line[pool_key],
                 "queue '%s' names undeclared pool '%s'", queue->name, queue->pool);
        else if (meta->key_line[budget_key] == 0)
            queue->age_budget_s = tier_defaults[pool->tier].age_budget_s;
    }
}

static bool pool_key_set(const entity_meta *meta, const char *key)
{
    return meta->key_line[find_entity_key(USHER_SEC_POOL, key)] != 0;
}

/* Unset keys: the table's default, or one that follows the tiers. */
static void pool_defaults(usher_pool_conf *pool, const entity_meta *meta)
{
    for (size_t i = 0; i < usher_nkeys; i++) {
        const usher_key *k = &usher_keys[i];
        bool plain_int = k->type == USHER_VAL_INT || k->type == USHER_VAL_WORD;

        if (k->owner == USHER_SEC_POOL && plain_int && meta->key_line[i] == 0 &&
            k->int_default != USHER_DERIVED)
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
    /* Neither set: the supervisor adapts both to the jobs (engine/hold.h), up to these. */
    pool->adaptive = !pool_key_set(meta, "prefetch") && !pool_key_set(meta, "child_queue");
    pool->claim_window = pool->adaptive && !pool_key_set(meta, "claim_batch");
    if (!pool_key_set(meta, "prefetch"))
        pool->prefetch = pool->adaptive ? USHER_ADAPTIVE_PREFETCH : 0;
    if (!pool_key_set(meta, "child_queue"))
        pool->child_queue = pool->adaptive ? USHER_ADAPTIVE_CHILD_QUEUE : 1;
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
        fail(p, USHER_ERR_CONFIG,
             meta->key_line[find_entity_key(USHER_SEC_POOL, "downstream_limit")],
             "[pool.%s] downstream_limit without downstream", name);
}

static void check_pools(parser *p)
{
    for (size_t i = 0; i < p->cfg->npools; i++) {
        pool_defaults(&p->cfg->pools[i], &p->meta[USHER_SEC_POOL][i]);
        check_pool(p, &p->cfg->pools[i], &p->meta[USHER_SEC_POOL][i]);
    }
}

/* Required keys, a declared queue, a payload enqueue will take; unset keys' defaults. */
static void check_periodic(parser *p, usher_periodic_conf *per, const entity_meta *meta)
{
    static const char *const required[] = { "cron", "queue", "kind" };
    size_t payload_key = find_entity_key(USHER_SEC_PERIODIC, "payload");
    char why[256];

    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (meta->key_line[find_entity_key(USHER_SEC_PERIODIC, required[i])] == 0) {
            fail(p, USHER_ERR_CONFIG, meta->line, "[periodic.%s] has no %s", per->name,
                 required[i]);
            return;
        }
    }
    if (!usher_config_queue(p->cfg, per->queue))
        fail(p, USHER_ERR_CONFIG, meta->key_line[find_entity_key(USHER_SEC_PERIODIC, "queue")],
             "periodic '%s' names undeclared queue '%s'", per->name, per->queue);
    if (meta->key_line[find_entity_key(USHER_SEC_PERIODIC, "priority")] == 0)
        per->priority = -1; /* the kind's */
    if (per->payload == NULL)
        per->payload = usher_strdup("{}");
    if (usher_payload_check(per->payload, (size_t)p->cfg->payload_max_bytes, why, sizeof(why)) !=
        USHER_OK)
        fail(p, USHER_ERR_CONFIG, meta->key_line[payload_key], "[periodic.%s] payload: %s",
             per->name, why);
}

static void check_periodics(parser *p)
{
    for (size_t i = 0; i < p->cfg->nperiodics; i++)
        check_periodic(p, &p->cfg->periodics[i], &p->meta[USHER_SEC_PERIODIC][i]);
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

    p->cfg->path = usher_strdup(path);
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
    check_periodics(p);
}

/* ---- load and free ----------------------------------------------------- */

static void apply_defaults(parser *p)
{
    for (size_t i = 0; i < usher_nsettings; i++) {
        void *field = (char *)p->cfg + usher_settings[i].offset;

        if (usher_settings[i].type == USHER_VAL_STRING) {
            char **slot = field;

            if (usher_settings[i].str_default == NULL)
                continue; /* unset unless the file or the environment sets it */
            *slot = usher_strdup(usher_settings[i].str_default);
        } else {
            int *slot = field;

            *slot = usher_settings[i].int_default;
        }
    }
}

/* Environment overrides: parsed and range-checked like the file's values. */
static void apply_env(parser *p)
{
    for (size_t i = 0; i < usher_nsettings && p->err == USHER_OK; i++) {
        const usher_setting *s = &usher_settings[i];
        const char *value = s->env != NULL ? getenv(s->env) : NULL;
        usher_value_spec spec = {
            .type = s->type, .min = s->min, .max = s->max, .words = s->words
        };
        char why[256];
        usher_err err;

        if (value == NULL || *value == '\0')
            continue;
        err = usher_config_parse_value(&spec, value, (char *)p->cfg + s->offset, why, sizeof(why));
        if (err != USHER_OK)
            fail(p, err, 0, "$%s: %s", s->env, why);
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
    for (int sec = 0; sec < USHER_NSECTIONS; sec++)
        free(p.meta[sec]);
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
    for (size_t i = 0; i < usher_nsettings; i++) {
        if (usher_settings[i].type == USHER_VAL_STRING) {
            char **slot = (void *)((char *)cfg + usher_settings[i].offset);

            free(*slot);
        }
    }
    free(cfg->path);
    free(cfg->queues);
    free(cfg->kinds);
    free(cfg->pools);
    for (size_t i = 0; i < cfg->nperiodics; i++)
        free(cfg->periodics[i].payload);
    free(cfg->periodics);
    memset(cfg, 0, sizeof(*cfg));
}
