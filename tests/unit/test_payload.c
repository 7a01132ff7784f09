/*
 * Payload validation and the array-literal builder: pure logic, no services.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "payload.h"

Test(payload, accepts_a_json_object)
{
    char why[128];

    cr_assert_eq(
        usher_payload_check("{\"to\":\"ana@example.org\",\"n\":[1,2]}", 1024, why, sizeof(why)),
        USHER_OK);
    cr_assert_eq(usher_payload_check("{}", 2, why, sizeof(why)), USHER_OK);
}

Test(payload, refuses_what_is_not_an_object_with_the_reason)
{
    static const char *const bad[] = { "[]", "1", "null", "\"s\"", "{", "{\"a\":1,\"a\":2}", "" };
    char why[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(usher_payload_check(bad[i], 1024, why, sizeof(why)), USHER_ERR_PAYLOAD,
                     "'%s' accepted", bad[i]);
        cr_assert(strstr(why, "payload") != NULL, "%s", why);
    }
}

Test(payload, parse_error_names_line_and_column)
{
    char why[128];

    cr_assert_eq(usher_payload_check("{\n  \"a\": tru\n}", 1024, why, sizeof(why)),
                 USHER_ERR_PAYLOAD);
    cr_assert(strstr(why, "line 2") != NULL, "%s", why);
}

Test(payload, size_limit_is_checked_before_parsing)
{
    char why[128];

    cr_assert_eq(usher_payload_check("{\"a\":1}", 6, why, sizeof(why)), USHER_ERR_TOO_LARGE);
    cr_assert(strstr(why, "7 bytes") != NULL, "%s", why);
}

Test(buf, array_literal_quotes_and_escapes_elements)
{
    usher_buf b = { 0 };

    usher_buf_array_open(&b);
    usher_buf_array_text(&b, "plain");
    usher_buf_array_text(&b, "{\"q\":\"a\\\\b\"}");
    usher_buf_array_text(&b, NULL);
    usher_buf_array_int(&b, -42);
    usher_buf_array_close(&b);
    cr_assert_not(usher_buf_failed(&b));
    cr_assert_str_eq(usher_buf_str(&b), "{\"plain\",\"{\\\"q\\\":\\\"a\\\\\\\\b\\\"}\",NULL,-42}");
    usher_buf_release(&b);
    cr_assert_str_eq(usher_buf_str(&b), "");
}

Test(cli, parses_times_in_utc_offsets_and_epoch)
{
    int64_t us;

    cr_assert_eq(usher_cli_parse_time("1970-01-02T00:00:00Z", &us), 0);
    cr_assert_eq(us, 86400LL * 1000000);
    cr_assert_eq(usher_cli_parse_time("1970-01-02T01:00:00+01:00", &us), 0);
    cr_assert_eq(us, 86400LL * 1000000);
    cr_assert_eq(usher_cli_parse_time("1970-01-02", &us), 0);
    cr_assert_eq(us, 86400LL * 1000000);
    cr_assert_eq(usher_cli_parse_time("@60", &us), 0);
    cr_assert_eq(us, 60LL * 1000000);
}

Test(cli, refuses_unreadable_times)
{
    int64_t us;

    cr_assert_neq(usher_cli_parse_time("tomorrow", &us), 0);
    cr_assert_neq(usher_cli_parse_time("2026-11-27T10:00:00+25:00", &us), 0);
    cr_assert_neq(usher_cli_parse_time("@", &us), 0);
    cr_assert_neq(usher_cli_parse_time("2026-11-27T10:00:00 junk", &us), 0);
    /* Found by tests/fuzz/fuzz_body.c: µs past INT64_MAX, and offsets sscanf let through. */
    cr_assert_neq(usher_cli_parse_time("@9223372036854775807", &us), 0);
    cr_assert_neq(usher_cli_parse_time("@9223372036855", &us), 0);
    cr_assert_neq(usher_cli_parse_time("2026-11-27T10:00:00+-1:-5", &us), 0);
    cr_assert_neq(usher_cli_parse_time("2026-11-27T10:00:00+ 1:00", &us), 0);
    cr_assert_neq(usher_cli_parse_time("2026-11-27T10:00:00+01:00x", &us), 0);
}

Test(cli, takes_the_largest_epoch_time_that_fits)
{
    int64_t us;

    cr_assert_eq(usher_cli_parse_time("@9223372036854", &us), 0);
    cr_assert_eq(us, 9223372036854LL * 1000000);
    cr_assert_eq(usher_cli_parse_time("2026-11-27T10:00:00-05:30", &us), 0);
    cr_assert_eq(us, (1795773600LL + 5 * 3600 + 30 * 60) * 1000000);
}
