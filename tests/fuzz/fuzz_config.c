/*
 * Fuzz target: the configuration loader (engine/config.c with inih, and the
 * value parsers of engine/config_values.c). The input is an INI file; it is
 * written to a memfd, which usher_config_load reads by its /proc path, so
 * the loader runs exactly as for conf/usher.conf. The USHER_* variables of
 * the settings table are unset first: only the file counts.
 * Properties:
 *   - a refusal is "PATH:LINE: reason" or "PATH: reason" and leaves *out zeroed;
 *   - a loaded configuration keeps every promise of engine/config.h: values
 *     within their ranges, names valid and unique, kinds and periodic jobs
 *     naming declared queues, queues naming declared pools, pool sizes in
 *     order, protection windows that end after they start, periodic
 *     payloads that enqueue would take.
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "config_values.h"
#include "fuzz.h"
#include "payload.h"

static int memfd = -1;
static char path[64];

static void setup(void)
{
    for (size_t i = 0; i < usher_nsettings; i++) {
        if (usher_settings[i].env != NULL)
            unsetenv(usher_settings[i].env);
    }
    memfd = memfd_create("usher-fuzz-config", MFD_CLOEXEC);
    FUZZ_CHECK(memfd >= 0, "memfd_create failed");
    snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
}

static bool write_input(const uint8_t *data, size_t size)
{
    size_t done = 0;

    if (ftruncate(memfd, 0) != 0)
        return false;
    while (done < size) {
        ssize_t n = pwrite(memfd, data + done, size - done, (off_t)done);

        if (n <= 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

static void check_ints(const char *where, const char *base, usher_section_type owner)
{
    for (size_t i = 0; i < usher_nkeys; i++) {
        const usher_key *k = &usher_keys[i];
        int v;

        if (k->owner != owner || k->type != USHER_VAL_INT)
            continue;
        memcpy(&v, base + k->offset, sizeof(v));
        FUZZ_CHECK(v >= k->min && v <= k->max, "%s %s = %d, outside %d..%d", where, k->key, v,
                   k->min, k->max);
    }
}

static void check_settings(const usher_config *cfg)
{
    for (size_t i = 0; i < usher_nsettings; i++) {
        const usher_setting *s = &usher_settings[i];
        const char *field = (const char *)cfg + s->offset;
        int v;

        if (s->type == USHER_VAL_STRING) {
            const char *text;

            memcpy(&text, field, sizeof(text));
            FUZZ_CHECK(text == NULL || *text != '\0', "[%s] %s is empty", s->section, s->key);
            continue;
        }
        memcpy(&v, field, sizeof(v));
        if (s->type == USHER_VAL_INT)
            FUZZ_CHECK(v >= s->min && v <= s->max, "[%s] %s = %d, outside %d..%d", s->section,
                       s->key, v, s->min, s->max);
        if (s->type == USHER_VAL_LEVEL)
            FUZZ_CHECK(v >= 3 && v <= 7, "[%s] %s = %d", s->section, s->key, v);
    }
    FUZZ_CHECK(cfg->defaults.backoff_cap_ms >= cfg->defaults.backoff_base_ms, "[defaults] backoff");
}

static void check_kinds(const usher_config *cfg)
{
    for (size_t i = 0; i < cfg->nkinds; i++) {
        const usher_kind_conf *k = &cfg->kinds[i];

        FUZZ_CHECK(usher_config_valid_name(k->name), "kind name '%s'", k->name);
        FUZZ_CHECK(usher_config_kind(cfg, k->name) == k, "kind '%s' twice", k->name);
        FUZZ_CHECK(k->queue[0] == '\0' || usher_config_queue(cfg, k->queue) != NULL,
                   "kind '%s' names undeclared queue '%s'", k->name, k->queue);
        FUZZ_CHECK(k->backoff_cap_ms >= k->backoff_base_ms, "kind '%s' backoff", k->name);
        check_ints(k->name, (const char *)k, USHER_SEC_KIND);
    }
}

static void check_queues(const usher_config *cfg)
{
    for (size_t i = 0; i < cfg->nqueues; i++) {
        const usher_queue_conf *q = &cfg->queues[i];

        FUZZ_CHECK(usher_config_valid_name(q->name), "queue name '%s'", q->name);
        FUZZ_CHECK(usher_config_queue(cfg, q->name) == q, "queue '%s' twice", q->name);
        FUZZ_CHECK(usher_config_pool(cfg, q->pool) != NULL, "queue '%s' names pool '%s'", q->name,
                   q->pool);
    }
}

static void check_pool(const usher_config *cfg, const usher_pool_conf *p)
{
    FUZZ_CHECK(usher_config_valid_name(p->name), "pool name '%s'", p->name);
    FUZZ_CHECK(usher_config_pool(cfg, p->name) == p, "pool '%s' twice", p->name);
    FUZZ_CHECK(p->min <= p->initial && p->initial <= p->max && p->max >= 1,
               "pool '%s': min %d initial %d max %d", p->name, p->min, p->initial, p->max);
    FUZZ_CHECK(p->scale_in_depth < p->scale_out_depth, "pool '%s': depths %d, %d", p->name,
               p->scale_in_depth, p->scale_out_depth);
    FUZZ_CHECK(p->tier >= USHER_TIER_HIGH && p->tier <= USHER_TIER_LOW, "pool '%s' tier %d",
               p->name, p->tier);
    FUZZ_CHECK(p->event_tier >= USHER_EVENT_SMALL && p->event_tier <= USHER_EVENT_MEGA,
               "pool '%s' event_tier %d", p->name, p->event_tier);
    FUZZ_CHECK(p->downstream_limit == 0 || p->downstream[0] != '\0',
               "pool '%s': downstream_limit without downstream", p->name);
    FUZZ_CHECK(p->protect.count >= 0 && p->protect.count <= USHER_PROTECT_MAX,
               "pool '%s': %d windows", p->name, p->protect.count);
    for (int w = 0; w < p->protect.count; w++)
        FUZZ_CHECK(p->protect.window[w].end_ms > p->protect.window[w].start_ms,
                   "pool '%s': window %d ends before it starts", p->name, w);
    check_ints(p->name, (const char *)p, USHER_SEC_POOL);
}

static void check_periodics(const usher_config *cfg)
{
    for (size_t i = 0; i < cfg->nperiodics; i++) {
        const usher_periodic_conf *per = &cfg->periodics[i];
        char why[256];

        FUZZ_CHECK(usher_config_valid_name(per->name), "periodic name '%s'", per->name);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(cfg->periodics[j].name, per->name) != 0, "periodic '%s' twice",
                       per->name);
        FUZZ_CHECK(usher_config_queue(cfg, per->queue) != NULL, "periodic '%s' queue '%s'",
                   per->name, per->queue);
        FUZZ_CHECK(usher_config_valid_name(per->kind), "periodic '%s' kind '%s'", per->name,
                   per->kind);
        FUZZ_CHECK(per->priority >= -1 && per->priority <= 2, "periodic '%s' priority %d",
                   per->name, per->priority);
        FUZZ_CHECK(per->cron.text[0] != '\0' && per->cron.minutes != 0,
                   "periodic '%s' has no cron slots", per->name);
        FUZZ_CHECK(per->payload != NULL &&
                       usher_payload_check(per->payload, (size_t)cfg->payload_max_bytes, why,
                                           sizeof(why)) == USHER_OK,
                   "periodic '%s' payload refused", per->name);
    }
}

static void check_refusal(const usher_config *cfg, const char *errbuf)
{
    static const usher_config zero;
    size_t n = strlen(path);

    FUZZ_CHECK(memcmp(cfg, &zero, sizeof(zero)) == 0, "a refused load left fields set");
    FUZZ_CHECK(strncmp(errbuf, path, n) == 0 && (errbuf[n] == ':') && errbuf[n + 1] != '\0',
               "refusal '%s' does not start with the path", errbuf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    usher_config cfg;
    char errbuf[1024];
    usher_err rc;

    if (memfd < 0)
        setup();
    if (!write_input(data, size))
        return 0;
    rc = usher_config_load(&cfg, path, errbuf, sizeof(errbuf));
    if (rc != USHER_OK) {
        FUZZ_CHECK(rc == USHER_ERR_CONFIG || rc == USHER_ERR_NOMEM, "load answered %d", (int)rc);
        check_refusal(&cfg, errbuf);
        return 0;
    }
    check_settings(&cfg);
    check_kinds(&cfg);
    check_queues(&cfg);
    for (size_t i = 0; i < cfg.npools; i++)
        check_pool(&cfg, &cfg.pools[i]);
    check_periodics(&cfg);
    usher_config_free(&cfg);
    return 0;
}
