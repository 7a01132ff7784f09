/*
 * SIGHUP for every program: what a re-read configuration may change in a
 * running one. usher_config_merge is a pure function of the running
 * configuration and the file's new one: it yields the configuration to
 * run from now on (the running one with the new values of the keys that
 * config_values.c marks reloadable) and the list of keys it applied and
 * of keys it refused because only a restart can apply them. Sections are
 * compared whole where their keys are not reloadable: a queue, a pool or a
 * periodic job added or removed needs a restart; kinds come and go freely.
 */
#ifndef USHER_CONFIG_RELOAD_H
#define USHER_CONFIG_RELOAD_H

#include <stddef.h>

#include "config.h"
#include "error.h"

#define USHER_RELOAD_KEY_MAX   (USHER_NAME_MAX + 48) /* "[periodic.NAME] payload" */
#define USHER_RELOAD_VALUE_MAX 128                   /* longer values are cut, with "..." */

/* One key whose value differs between the running configuration and the file. */
typedef struct usher_config_change {
    char
        key[USHER_RELOAD_KEY_MAX]; /* "[api] rate_per_minute", "[pool.standard] max", "[queue.x]" */
    const char *what;              /* refused: "changed in", "added to" or "removed from" */
    char from[USHER_RELOAD_VALUE_MAX]; /* applied: the old value ("(hidden)" for a secret) */
    char to[USHER_RELOAD_VALUE_MAX];   /* applied: the new value */
} usher_config_change;

/* What a reload applied and what it refused. Zero-initialisable. */
typedef struct usher_config_diff {
    usher_config_change *applied;
    size_t napplied;
    usher_config_change *refused; /* changed in the file, kept as running: needs a restart */
    size_t nrefused;
} usher_config_diff;

/*
 * Fills *merged with running's values, except the reloadable keys, which
 * take fresh's, and *diff with the keys that differ. Both inputs are
 * borrowed and left as they are; fresh must be a whole, validated
 * configuration (usher_config_load). The caller frees *merged with
 * usher_config_free and *diff with usher_config_diff_release, also after a
 * failure, which leaves both empty.
 */
USHER_MUSTCHECK usher_err usher_config_merge(const usher_config *running, const usher_config *fresh,
                                             usher_config *merged, usher_config_diff *diff);

/* Frees the lists of a diff; accepts a zeroed one. */
void usher_config_diff_release(usher_config_diff *diff);

/*
 * The reload of one program: re-reads running->path and validates it
 * whole, then merges. A file that does not load is refused with one log
 * line ("reload refused, keeping the running configuration: FILE:LINE:
 * reason") and USHER_ERR_CONFIG; otherwise logs each applied key as "KEY
 * reloaded: OLD -> NEW" and each refused one as "KEY changed in FILE:
 * needs a restart", and fills *merged (freed by the caller with
 * usher_config_free; empty on failure). *napplied: how many keys apply.
 */
USHER_MUSTCHECK usher_err usher_config_reread(const usher_config *running, usher_config *merged,
                                              size_t *napplied);

/* A deep copy of src into *dst (freed with usher_config_free); *dst is empty on failure. */
USHER_MUSTCHECK usher_err usher_config_copy(const usher_config *src, usher_config *dst);

#endif
