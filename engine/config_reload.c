/*
 * Reloading a configuration: which new values a running program takes.
 * usher_config_merge starts from a deep copy of the running configuration
 * and walks the same tables the loader uses (config_values.c): a fixed key
 * or a pool key whose value differs takes the file's value when its row
 * says reloadable, and is otherwise kept and listed as needing a restart.
 * Kinds are all reloadable, so the merged kinds are the file's, compared
 * by their effective values (a kind left out falls back to [defaults]);
 * a kind may not name a queue that only a restart would declare. Queues,
 * pools and periodic jobs keep the running set: one added or removed in
 * the file is listed as needing a restart.
 *
 * usher_config_reread is the one I/O step around it that both programs
 * call on SIGHUP: load the file whole, merge, log each change.
 */
#include "config_reload.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "config_values.h"
#include "log.h"

/* Keys whose values are never printed: they may carry passwords or keys. */
static const char *const secret_keys[][2] = {
    { "database", "url" },  { "redis", "url" },     { "smtp", "url" },
    { "smtp", "username" }, { "smtp", "password" }, { "tickets", "secret" },
};

/* Indexed by usher_log_level. */
static const char *const level_names[] = { [USHER_LOG_ERR] = "err",
                                           [USHER_LOG_WARNING] = "warning",
                                           [USHER_LOG_NOTICE] = "notice",
                                           [USHER_LOG_INFO] = "info",
                                           [USHER_LOG_DEBUG] = "debug" };

typedef struct merge {
    usher_config_diff *diff;
} merge;

/* ---- copies ------------------------------------------------------------- */

static char *dup_string(const char *s)
{
    return s != NULL ? usher_strdup(s) : NULL;
}

static void *dup_array(const void *arr, size_t n, size_t size)
{
    void *copy;

    if (n == 0 || arr == NULL)
        return NULL;
    copy = usher_calloc(n, size);
    memcpy(copy, arr, n * size);
    return copy;
}

usher_err usher_config_copy(const usher_config *src, usher_config *dst)
{
    usher_config c = *src;

    /* Nothing of src's may stay in c: usher_config_free below would free it. */
    for (size_t i = 0; i < usher_nsettings; i++) {
        if (usher_settings[i].type == USHER_VAL_STRING)
            *(char **)((char *)&c + usher_settings[i].offset) = NULL;
    }
    c.path = NULL;
    c.queues = NULL;
    c.kinds = NULL;
    c.pools = NULL;
    c.periodics = NULL;
    c.nperiodics = 0;
    for (size_t i = 0; i < usher_nsettings; i++) {
        size_t offset = usher_settings[i].offset;

        if (usher_settings[i].type == USHER_VAL_STRING)
            *(char **)((char *)&c + offset) =
                dup_string(*(char *const *)((const char *)src + offset));
    }
    c.path = dup_string(src->path);
    c.queues = dup_array(src->queues, src->nqueues, sizeof(*c.queues));
    c.kinds = dup_array(src->kinds, src->nkinds, sizeof(*c.kinds));
    c.pools = dup_array(src->pools, src->npools, sizeof(*c.pools));
    c.periodics = dup_array(src->periodics, src->nperiodics, sizeof(*c.periodics));
    if (c.periodics != NULL) {
        for (size_t i = 0; i < src->nperiodics; i++)
            c.periodics[i].payload = NULL; /* src's, until copied */
        c.nperiodics = src->nperiodics;
        for (size_t i = 0; i < src->nperiodics; i++)
            c.periodics[i].payload = dup_string(src->periodics[i].payload);
    }
    *dst = c;
    return USHER_OK;
}

/* ---- values ------------------------------------------------------------- */

static bool same_windows(const usher_windows *a, const usher_windows *b)
{
    if (a->count != b->count)
        return false;
    for (int i = 0; i < a->count; i++) {
        if (a->window[i].start_ms != b->window[i].start_ms ||
            a->window[i].end_ms != b->window[i].end_ms)
            return false;
    }
    return true;
}

static bool same_value(usher_value_type type, const void *a, const void *b)
{
    switch (type) {
    case USHER_VAL_STRING: {
        const char *x = *(char *const *)a, *y = *(char *const *)b;

        return x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
    }
    case USHER_VAL_INT:
    case USHER_VAL_LEVEL:
    case USHER_VAL_WORD:
        return *(const int *)a == *(const int *)b;
    case USHER_VAL_NAME:
        return strcmp(a, b) == 0;
    case USHER_VAL_WINDOWS:
        return same_windows(a, b);
    case USHER_VAL_CRON:
        return strcmp(((const usher_cron *)a)->text, ((const usher_cron *)b)->text) == 0;
    }
    return false;
}

/* The size of a field that holds its value in place: every type but USHER_VAL_STRING. */
static const size_t value_size[] = {
    [USHER_VAL_INT] = sizeof(int),
    [USHER_VAL_LEVEL] = sizeof(int),
    [USHER_VAL_WORD] = sizeof(int),
    [USHER_VAL_NAME] = USHER_NAME_MAX,
    [USHER_VAL_WINDOWS] = sizeof(usher_windows),
    [USHER_VAL_CRON] = sizeof(usher_cron),
};

/* Copies the value at from into the field to (a string is duplicated, the old one freed). */
static void set_value(usher_value_type type, void *to, const void *from)
{
    char *copy;

    if (type != USHER_VAL_STRING) {
        memcpy(to, from, value_size[type]);
        return;
    }
    copy = dup_string(*(char *const *)from);
    free(*(char **)to);
    *(char **)to = copy;
}

static void format_windows(const usher_windows *w, char *out, size_t len)
{
    size_t used = 0;

    out[0] = '\0';
    if (w->count == 0)
        snprintf(out, len, "(none)");
    for (int i = 0; i < w->count && used < len; i++) {
        time_t start = (time_t)(w->window[i].start_ms / 1000),
               end = (time_t)(w->window[i].end_ms / 1000);
        char a[32] = "?", b[32] = "?";
        struct tm tm;

        if (gmtime_r(&start, &tm) != NULL)
            strftime(a, sizeof(a), "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (gmtime_r(&end, &tm) != NULL)
            strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
        used += (size_t)snprintf(out + used, len - used, "%s%s/%s", i > 0 ? ", " : "", a, b);
    }
}

/* The value as the file would spell it; cut with "..." past len. */
static void format_value(const usher_value_spec *spec, const void *field, char *out, size_t len)
{
    const char *text = NULL;
    int number = 0;

    if (spec->type == USHER_VAL_INT || spec->type == USHER_VAL_LEVEL ||
        spec->type == USHER_VAL_WORD)
        memcpy(&number, field, sizeof(number));
    switch (spec->type) {
    case USHER_VAL_STRING:
        text = *(char *const *)field != NULL ? *(char *const *)field : "(unset)";
        break;
    case USHER_VAL_INT:
        snprintf(out, len, "%d", number);
        break;
    case USHER_VAL_LEVEL:
        text = number >= USHER_LOG_ERR && number <= USHER_LOG_DEBUG ? level_names[number] : "?";
        break;
    case USHER_VAL_NAME:
        text = *(const char *)field != '\0' ? field : "(none)";
        break;
    case USHER_VAL_WORD:
        text = spec->words[number];
        break;
    case USHER_VAL_WINDOWS:
        format_windows(field, out, len);
        break;
    case USHER_VAL_CRON:
        text = ((const usher_cron *)field)->text;
        break;
    }
    if (text != NULL)
        snprintf(out, len, "%s", text);
    if (strlen(out) + 1 >= len && len > 4)
        memcpy(out + len - 4, "...", 4); /* may have been cut */
}

static bool is_secret(const char *section, const char *key)
{
    for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++) {
        if (strcmp(section, secret_keys[i][0]) == 0 && strcmp(key, secret_keys[i][1]) == 0)
            return true;
    }
    return false;
}

/* ---- the lists ---------------------------------------------------------- */

static usher_config_change *add_change(usher_config_change **list, size_t *n)
{
    usher_config_change *grown = usher_realloc(*list, (*n + 1) * sizeof(**list));

    *list = grown;
    memset(&grown[*n], 0, sizeof(grown[*n]));
    return &grown[(*n)++];
}

__attribute__((format(printf, 3, 4))) static void refuse(merge *m, const char *what,
                                                         const char *fmt, ...)
{
    usher_config_change *c = add_change(&m->diff->refused, &m->diff->nrefused);
    va_list ap;

    c->what = what;
    va_start(ap, fmt);
    vsnprintf(c->key, sizeof(c->key), fmt, ap);
    va_end(ap);
}

/* Records key as applied, from the value at from to the one at to. */
static void apply(merge *m, const char *key, const usher_value_spec *spec, const void *from,
                  const void *to, bool secret)
{
    usher_config_change *c = add_change(&m->diff->applied, &m->diff->napplied);

    snprintf(c->key, sizeof(c->key), "%s", key);
    if (secret) {
        snprintf(c->from, sizeof(c->from), "(hidden)");
        snprintf(c->to, sizeof(c->to), "(hidden)");
        return;
    }
    format_value(spec, from, c->from, sizeof(c->from));
    format_value(spec, to, c->to, sizeof(c->to));
}

/* ---- sections ----------------------------------------------------------- */

/*
 * One key whose value at old and new may differ: an unchanged key is
 * skipped, a reloadable one applied (copied into to, unless NULL: already
 * there), any other refused.
 */
static void merge_key(merge *m, const char *key, const usher_value_spec *spec, bool reloadable,
                      bool secret, const void *old, const void *new, void *to)
{
    if (same_value(spec->type, old, new))
        return;
    if (!reloadable) {
        refuse(m, "changed in", "%s", key);
        return;
    }
    if (to != NULL)
        set_value(spec->type, to, new);
    apply(m, key, spec, old, new, secret);
}

static void merge_settings(merge *m, const usher_config *running, const usher_config *fresh,
                           usher_config *merged)
{
    for (size_t i = 0; i < usher_nsettings; i++) {
        const usher_setting *s = &usher_settings[i];
        usher_value_spec spec = {
            .type = s->type, .min = s->min, .max = s->max, .words = s->words
        };
        char key[USHER_RELOAD_KEY_MAX];

        snprintf(key, sizeof(key), "[%s] %s", s->section, s->key);
        merge_key(m, key, &spec, s->reloadable, is_secret(s->section, s->key),
                  (const char *)running + s->offset, (const char *)fresh + s->offset,
                  (char *)merged + s->offset);
    }
}

/* The prefix of each kind of named section, as in "[queue.NAME]". */
static const char *const section_prefix[USHER_NSECTIONS] = {
    [USHER_SEC_QUEUE] = "queue.",
    [USHER_SEC_KIND] = "kind.",
    [USHER_SEC_POOL] = "pool.",
    [USHER_SEC_PERIODIC] = "periodic.",
};

/*
 * The keys of one [PREFIXname] section that differ between old_el and
 * new_el, as merge_key does (into merged_el, unless NULL).
 */
static void merge_entity(merge *m, usher_section_type owner, const char *name, const void *old_el,
                         const void *new_el, void *merged_el)
{
    for (size_t i = 0; i < usher_nkeys; i++) {
        const usher_key *k = &usher_keys[i];
        usher_value_spec spec = {
            .type = k->type, .min = k->min, .max = k->max, .words = k->words
        };
        char key[USHER_RELOAD_KEY_MAX];

        if (k->owner != owner)
            continue;
        snprintf(key, sizeof(key), "[%s%s] %s", section_prefix[owner], name, k->key);
        merge_key(m, key, &spec, k->reloadable, false, (const char *)old_el + k->offset,
                  (const char *)new_el + k->offset,
                  merged_el != NULL ? (char *)merged_el + k->offset : NULL);
    }
}

/* The merged kinds are the file's; a queue only a restart would declare is refused. */
static void merge_kinds(merge *m, const usher_config *running, const usher_config *fresh,
                        usher_config *merged)
{
    free(merged->kinds);
    merged->kinds = dup_array(fresh->kinds, fresh->nkinds, sizeof(*merged->kinds));
    merged->nkinds = fresh->nkinds;
    for (size_t i = 0; i < merged->nkinds; i++) {
        usher_kind_conf *kind = &merged->kinds[i];

        if (kind->queue[0] != '\0' && usher_config_queue(merged, kind->queue) == NULL) {
            refuse(m, "changed in", "[kind.%s] queue", kind->name);
            memcpy(kind->queue, usher_config_kind(running, kind->name)->queue, USHER_NAME_MAX);
        }
        merge_entity(m, USHER_SEC_KIND, kind->name, usher_config_kind(running, kind->name), kind,
                     NULL);
    }
    for (size_t i = 0; i < running->nkinds; i++) {
        const usher_kind_conf *gone = &running->kinds[i];

        if (usher_config_kind(merged, gone->name) == &merged->defaults)
            merge_entity(m, USHER_SEC_KIND, gone->name, gone, &merged->defaults, NULL);
    }
}

/* An array of queues, pools or periodic jobs: each element begins with its name. */
typedef struct named {
    const char *first;
    size_t n, size;
} named;

#define NAMED(array, count) ((named){ (const char *)(array), (count), sizeof(*(array)) })

_Static_assert(offsetof(usher_queue_conf, name) == 0 && offsetof(usher_pool_conf, name) == 0 &&
                   offsetof(usher_periodic_conf, name) == 0,
               "named sections begin with their name");

static const char *find_named(named set, const char *name)
{
    for (size_t i = 0; i < set.n; i++) {
        if (strcmp(set.first + i * set.size, name) == 0)
            return set.first + i * set.size;
    }
    return NULL;
}

/*
 * The sections of one kind, matched by name: one removed from or added
 * to the file is refused; the keys of one in both are merged (into the
 * element of merged_first at the running one's index, unless NULL).
 */
static void merge_named(merge *m, usher_section_type owner, named running, named fresh,
                        void *merged_first)
{
    const char *prefix = section_prefix[owner];

    for (size_t i = 0; i < running.n; i++) {
        const char *old = running.first + i * running.size;
        const char *new = find_named(fresh, old);

        if (new == NULL)
            refuse(m, "removed from", "[%s%s]", prefix, old);
        else
            merge_entity(m, owner, old, old, new,
                         merged_first != NULL ? (char *)merged_first + i * running.size : NULL);
    }
    for (size_t i = 0; i < fresh.n; i++) {
        if (find_named(running, fresh.first + i * fresh.size) == NULL)
            refuse(m, "added to", "[%s%s]", prefix, fresh.first + i * fresh.size);
    }
}

usher_err usher_config_merge(const usher_config *running, const usher_config *fresh,
                             usher_config *merged, usher_config_diff *diff)
{
    merge m = { .diff = diff };
    usher_err err;

    memset(diff, 0, sizeof(*diff));
    err = usher_config_copy(running, merged);
    if (err != USHER_OK)
        return err;
    merge_settings(&m, running, fresh, merged);
    merge_named(&m, USHER_SEC_QUEUE, NAMED(running->queues, running->nqueues),
                NAMED(fresh->queues, fresh->nqueues), NULL);
    merge_kinds(&m, running, fresh, merged);
    merge_named(&m, USHER_SEC_POOL, NAMED(running->pools, running->npools),
                NAMED(fresh->pools, fresh->npools), merged->pools);
    merge_named(&m, USHER_SEC_PERIODIC, NAMED(running->periodics, running->nperiodics),
                NAMED(fresh->periodics, fresh->nperiodics), merged->periodics);
    return USHER_OK;
}

void usher_config_diff_release(usher_config_diff *diff)
{
    if (diff == NULL)
        return;
    free(diff->applied);
    free(diff->refused);
    memset(diff, 0, sizeof(*diff));
}

/* ---- SIGHUP ------------------------------------------------------------- */

static void log_diff(const usher_config_diff *diff, const char *path)
{
    for (size_t i = 0; i < diff->napplied; i++)
        usher_log(USHER_LOG_NOTICE, "%s reloaded: %s -> %s", diff->applied[i].key,
                  diff->applied[i].from, diff->applied[i].to);
    for (size_t i = 0; i < diff->nrefused; i++)
        usher_log(USHER_LOG_WARNING, "%s %s %s: needs a restart", diff->refused[i].key,
                  diff->refused[i].what, path);
    if (diff->napplied == 0 && diff->nrefused == 0)
        usher_log(USHER_LOG_NOTICE, "reload: %s has no change", path);
}

usher_err usher_config_reread(const usher_config *running, usher_config *merged, size_t *napplied)
{
    usher_config fresh;
    usher_config_diff diff = { 0 };
    char errbuf[512];
    usher_err err;

    memset(merged, 0, sizeof(*merged));
    *napplied = 0;
    if (running->path == NULL) {
        usher_log(USHER_LOG_ERR, "reload refused: the configuration came from no file");
        return USHER_ERR_CONFIG;
    }
    err = usher_config_load(&fresh, running->path, errbuf, sizeof(errbuf));
    if (err != USHER_OK) {
        usher_log(USHER_LOG_ERR, "reload refused, keeping the running configuration: %s", errbuf);
        return err;
    }
    err = usher_config_merge(running, &fresh, merged, &diff);
    usher_config_free(&fresh);
    if (err != USHER_OK) {
        usher_log(USHER_LOG_ERR, "reload refused: %s", usher_strerror(err));
        return err;
    }
    log_diff(&diff, running->path);
    *napplied = diff.napplied;
    usher_config_diff_release(&diff);
    return USHER_OK;
}
