/*
 * Fuzz target: the configuration's value parsers (engine/config_values.c)
 * and cron expressions (engine/cron.c), which read both the file's values
 * and USHER_* environment variables. The input is one value, parsed as
 * every type of value.
 * Properties: a refused value leaves the field as it was and says why; an
 * accepted one is what the type promises (an integer in range, a valid
 * name, windows that end after they start...). For a cron expression that
 * parses, usher_cron_latest agrees with a minute-by-minute search through
 * a window of up to three days ending at a time derived from the input.
 */
#include <limits.h>
#include <stdbool.h>

#include "config.h"
#include "config_values.h"
#include "cron.h"
#include "fuzz.h"

/* Parses value as spec; checks that a refusal says why and leaves the field's bytes alone. */
static usher_err parse(const usher_value_spec *spec, const char *value, void *field, size_t size)
{
    unsigned char before[sizeof(usher_cron) > 256 ? sizeof(usher_cron) : 256];
    char why[256] = "";
    usher_err rc;

    memcpy(before, field, size);
    rc = usher_config_parse_value(spec, value, field, why, sizeof(why));
    FUZZ_CHECK(rc == USHER_OK || rc == USHER_ERR_CONFIG, "type %d answered %d", (int)spec->type,
               (int)rc);
    if (rc != USHER_OK) {
        FUZZ_CHECK(why[0] != '\0', "type %d refused '%s' without a reason", (int)spec->type, value);
        FUZZ_CHECK(memcmp(before, field, size) == 0, "type %d: refused '%s' but wrote the field",
                   (int)spec->type, value);
    }
    return rc;
}

static void check_int(const char *value, int min, int max)
{
    usher_value_spec spec = { .type = USHER_VAL_INT, .min = min, .max = max };
    int v = INT_MIN + 7;
    char *end;
    long expected;

    if (parse(&spec, value, &v, sizeof(v)) != USHER_OK)
        return;
    expected = strtol(value, &end, 10);
    FUZZ_CHECK(*end == '\0' && end != value && expected == v && v >= min && v <= max,
               "'%s' read as %d in %d..%d", value, v, min, max);
}

static void check_names(const char *value)
{
    static const char *const words[] = { "no", "if_available", "required", NULL };
    usher_value_spec name = { .type = USHER_VAL_NAME };
    usher_value_spec word = { .type = USHER_VAL_WORD, .words = words };
    usher_value_spec level = { .type = USHER_VAL_LEVEL };
    char field[USHER_NAME_MAX] = "unset";
    int index = -1;

    if (parse(&name, value, field, sizeof(field)) == USHER_OK)
        FUZZ_CHECK(usher_config_valid_name(value) && strcmp(field, value) == 0, "name '%s'", value);
    else
        FUZZ_CHECK(!usher_config_valid_name(value), "valid name '%s' refused", value);
    if (parse(&word, value, &index, sizeof(index)) == USHER_OK)
        FUZZ_CHECK(index >= 0 && index < 3 && strcmp(words[index], value) == 0, "word '%s'", value);
    index = -1;
    if (parse(&level, value, &index, sizeof(index)) == USHER_OK)
        FUZZ_CHECK(index >= 3 && index <= 7, "level '%s' is %d", value, index);
}

static void check_string(const char *value)
{
    usher_value_spec spec = { .type = USHER_VAL_STRING };
    char *field = NULL;

    if (parse(&spec, value, &field, sizeof(field)) == USHER_OK)
        FUZZ_CHECK(field != NULL && strcmp(field, value) == 0, "string '%s'", value);
    else
        FUZZ_CHECK(*value == '\0', "non-empty string refused");
    free(field);
}

static void check_windows(const char *value)
{
    usher_value_spec spec = { .type = USHER_VAL_WINDOWS };
    usher_windows w = { .count = -1 };

    if (parse(&spec, value, &w, sizeof(w)) != USHER_OK)
        return;
    FUZZ_CHECK(w.count >= 0 && w.count <= USHER_PROTECT_MAX, "%d windows", w.count);
    for (int i = 0; i < w.count; i++)
        FUZZ_CHECK(w.window[i].end_ms > w.window[i].start_ms && w.window[i].start_ms % 1000 == 0,
                   "window %d of '%s'", i, value);
}

/* The latest slot in (after_s, now_s] by trying every minute, or -1. */
static int64_t latest_by_search(const usher_cron *c, int64_t now_s, int64_t after_s)
{
    for (int64_t m = now_s / 60; m * 60 > after_s; m--) {
        if (usher_cron_matches(c, m))
            return m * 60;
    }
    return -1;
}

static void check_cron(const char *value, uint64_t h)
{
    usher_value_spec spec = { .type = USHER_VAL_CRON };
    usher_cron c;
    int64_t now_s = (int64_t)(h % ((uint64_t)1 << 33)), after_s = now_s - (int64_t)(h % 259200);
    int64_t got, want;

    memset(&c, 0xA5, sizeof(c));
    if (parse(&spec, value, &c, sizeof(c)) != USHER_OK)
        return;
    FUZZ_CHECK(strcmp(c.text, value) == 0, "cron text '%s' for '%s'", c.text, value);
    FUZZ_CHECK(c.minutes != 0 && c.minutes < (uint64_t)1 << 60 && c.hours != 0 &&
                   c.hours < 1u << 24 && c.mdays > 1 && (c.mdays & 1) == 0 && c.months > 1 &&
                   (c.months & 1) == 0 && c.months < 1u << 13 && c.wdays != 0 && c.wdays < 1u << 7,
               "cron '%s' has bits outside its fields", value);
    got = usher_cron_latest(&c, now_s, after_s);
    want = latest_by_search(&c, now_s, after_s);
    FUZZ_CHECK(got == want, "cron '%s' latest in (%lld, %lld]: %lld, a search finds %lld", value,
               (long long)after_s, (long long)now_s, (long long)got, (long long)want);
    got = usher_cron_latest(&c, now_s, INT64_MIN / 2);
    FUZZ_CHECK(got == -1 || (got % 60 == 0 && got <= now_s && usher_cron_matches(&c, got / 60)),
               "cron '%s' latest before %lld: %lld", value, (long long)now_s, (long long)got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = fuzz_text(data, size);

    if (value == NULL)
        return 0;
    check_int(value, 0, 2);
    check_int(value, 64, 16777216);
    check_int(value, INT_MIN, INT_MAX);
    check_names(value);
    check_string(value);
    check_windows(value);
    check_cron(value, fuzz_hash(data, size));
    free(value);
    return 0;
}
