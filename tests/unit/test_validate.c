/*
 * api/validate.c's time parser: what TimeInput in schemas/openapi.yaml
 * says, no more (the conformance test checks the same from outside).
 */
#include <criterion/criterion.h>

#include "validate.h"

static int64_t parsed(const char *text, bool date_alone)
{
    int64_t us = -1;

    cr_assert(api_parse_time(text, date_alone, &us), "%s was refused", text);
    return us;
}

static void refused(const char *text, bool date_alone)
{
    int64_t us = 0;

    cr_assert_not(api_parse_time(text, date_alone, &us), "%s was taken", text);
}

Test(validate, rfc3339_times_give_microseconds_since_1970)
{
    cr_assert_eq(parsed("1970-01-01T00:00:01Z", false), 1000000);
    cr_assert_eq(parsed("2026-11-27T18:00:00Z", false), 1795802400LL * 1000000);
    cr_assert_eq(parsed("2026-11-27T19:00:00+01:00", false), 1795802400LL * 1000000);
    cr_assert_eq(parsed("2026-11-27T17:30:00-00:30", false), 1795802400LL * 1000000);
    cr_assert_eq(parsed("2026-11-27T18:00:00.25Z", false), 1795802400LL * 1000000 + 250000);
    cr_assert_eq(parsed("2026-11-27T18:00:00.123456789Z", false), 1795802400LL * 1000000 + 123456);
    cr_assert_eq(parsed("2024-02-29T00:00:00Z", false), 1709164800LL * 1000000);
    cr_assert_eq(parsed("0001-01-01T00:00:00Z", false), -62135596800LL * 1000000);
    cr_assert_eq(parsed("9999-12-31T23:59:59.999999Z", false), 253402300800LL * 1000000 - 1);
}

Test(validate, anything_else_is_refused)
{
    static const char *const bad[] = {
        "2026-11-27T18:00:00",
        "2026-11-27t18:00:00Z",
        "2026-11-27 18:00:00Z",
        "2026-11-27T18:00Z",
        "2026-11-27T18:00:00z",
        "2026-11-27T18:00:00+0100",
        "2026-11-27T18:00:00+24:00",
        "2026-11-27T18:00:00+01:60",
        "2026-11-27T24:00:00Z",
        "2026-11-27T18:60:00Z",
        "2026-11-27T18:00:60Z",
        "2026-02-30T18:00:00Z",
        "2023-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59-00:01",
        "2026-11-27T18:00:00.Z",
        "2026-11-27T18:00:00.1234567890Z",
        "2026-1-27T18:00:00Z",
        " 2026-11-27T18:00:00Z",
        "2026-11-27T18:00:00Z ",
        "2026-11-27",
        "@1795802400",
        "",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        refused(bad[i], false);
}

Test(validate, a_date_alone_is_midnight_utc_where_allowed)
{
    cr_assert_eq(parsed("2026-11-27", true), 1795737600LL * 1000000);
    cr_assert_eq(parsed("2026-11-27T18:00:00Z", true), 1795802400LL * 1000000);
    refused("2026-02-30", true);
    refused("2026-11-27T", true);
}

Test(validate, ends_before_start_compares_instants)
{
    cr_assert(api_ends_before_start("2026-11-27T18:00:00Z", "2026-11-27T17:59:59.9Z"));
    cr_assert_not(api_ends_before_start("2026-11-27T18:00:00Z", "2026-11-27T18:00:00Z"));
    cr_assert_not(api_ends_before_start("2026-11-27T19:00:00+01:00", "2026-11-27T18:00:00Z"));
    cr_assert(api_ends_before_start("2026-11-27T18:00:00Z", "2026-11-27T18:30:00+01:00"));
}
