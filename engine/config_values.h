/*
 What each configuration key is, for engine/config.c's loader: the tables
 * of keys (section, type, range, default, reloadable, environment
 * override) and the value parsers, one call of which turns the text of a
 * "key = value" line into the field it sets (a string, an integer in a
 * range, a log level, a name, a word from a list, protection windows, a
 * cron expression). None of it knows files or lines: a refusal comes back
 * as a reason ("'x' is not an integer") that the loader prefixes with
 * "FILE:LINE: [section] key: ".
 */
#ifndef USHER_CONFIG_VALUES_H
#define USHER_CONFIG_VALUES_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define USHER_NAME_RULE "[a-z0-9_.-], 1 to 63 characters"

typedef enum usher_value_type {
    USHER_VAL_STRING,  /* char *, owned by the config; never empty (NULL: unset, no default) */
    USHER_VAL_INT,     /* int within [min, max] */
    USHER_VAL_LEVEL,   /* int: a syslog level given by name (err .. debug) */
    USHER_VAL_NAME,    /* char[USHER_NAME_MAX] holding a valid name */
    USHER_VAL_WORD,    /* int: the index of the value in words */
    USHER_VAL_WINDOWS, /* usher_windows: "START/END, ..." in UTC ISO-8601 */
    USHER_VAL_CRON,    /* usher_cron: a five-field cron expression (engine/cron.h) */
} usher_value_type;

/* What a key holds. Zero-initialisable; only type is needed for most. */
typedef struct usher_value_spec {
    usher_value_type type;
    int min, max;             /* USHER_VAL_INT: the accepted range */
    const char *const *words; /* USHER_VAL_WORD: the accepted values, NULL-terminated */
} usher_value_spec;

/* The kinds of section; from USHER_SEC_QUEUE on, each declares one element of an array. */
typedef enum usher_section_type {
    USHER_SEC_NONE,
    USHER_SEC_FIXED, /* [database], [engine], ...: fields of usher_config itself */
    USHER_SEC_QUEUE,
    USHER_SEC_KIND,
    USHER_SEC_POOL,
    USHER_SEC_PERIODIC,
    USHER_NSECTIONS,
} usher_section_type;

/* A key of a fixed section: a row of usher_settings. */
typedef struct usher_setting {
    const char *section;
    const char *key;
    usher_value_type type;
    size_t offset;            /* of the field in usher_config */
    const char *str_default;  /* USHER_VAL_STRING */
    int int_default;          /* USHER_VAL_INT, USHER_VAL_LEVEL */
    int min, max;             /* USHER_VAL_INT */
    bool reloadable;          /* SIGHUP may apply a new value without a restart */
    const char *env;          /* a non-empty value of this variable beats the file (strings) */
    const char *const *words; /* USHER_VAL_WORD: the accepted values, NULL-terminated */
} usher_setting;

/* A key of [kind.NAME], [queue.NAME], [pool.NAME] or [periodic.NAME]: a row of usher_keys. */
typedef struct usher_key {
    usher_section_type owner;
    const char *key;
    usher_value_type type;
    size_t offset; /* of the field in the usher_{kind,queue,pool,periodic}_conf */
    int min, max;  /* USHER_VAL_INT */
    bool reloadable;
    int int_default;          /* an unset pool key's value, or USHER_DERIVED (from its tiers) */
    const char *const *words; /* USHER_VAL_WORD: the accepted values, NULL-terminated */
} usher_key;

#define USHER_DERIVED INT_MIN /* the default follows a pool's tier or event_tier */

/*
 * The tables that drive the loader. Unset kind keys take the field at the
 * same offset in cfg->defaults; unset pool keys take int_default, or a
 * value that follows the pool's tiers; the rest is in config.c's checks.
 */
extern const usher_setting usher_settings[];
extern const size_t usher_nsettings; /* rows of usher_settings, counted by the compiler */
extern const usher_key usher_keys[];
extern const size_t usher_nkeys; /* rows of usher_keys */

/* Room for one int per row, for the loader's bookkeeping (asserted >= the rows). */
#define USHER_SETTINGS_MAX 128
#define USHER_KEYS_MAX     64

/*
 * Parses value into *field, whose C type spec->type gives. On failure
 * leaves *field as it was and returns USHER_ERR_CONFIG with the reason in
 * why. A USHER_VAL_STRING field is replaced (the old
 * string freed); the config owns the copy.
 */
USHER_MUSTCHECK usher_err usher_config_parse_value(const usher_value_spec *spec, const char *value,
                                                   void *field, char *why, size_t whylen);

#endif
