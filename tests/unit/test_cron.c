/*
 * Tests of engine/cron.c with fixed UTC timestamps: the field syntax
 * (lists, ranges, steps, names, Sunday as 0 and 7), the day-of-month /
 * day-of-week rule, usher_cron_latest's window and look-back bound, leap
 * days, days without daylight-saving gaps, and every refusal with its
 * reason. Expected times are computed with timegm, independently of the
 * module's own calendar.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cron.h"

/* "YYYY-MM-DD HH:MM[:SS]" in UTC to epoch seconds. */
static int64_t at(const char *utc)
{
    struct tm tm = { 0 };
    const char *end = strptime(utc, "%Y-%m-%d %H:%M", &tm);

    cr_assert_not_null(end, "bad time in the test: %s", utc);
    if (*end == ':')
        end = strptime(end + 1, "%S", &tm);
    cr_assert(end != NULL && *end == '\0', "bad time in the test: %s", utc);
    return (int64_t)timegm(&tm);
}

static usher_cron parse_ok(const char *expr)
{
    usher_cron c;
    char err[256];

    cr_assert_eq(usher_cron_parse(expr, &c, err, sizeof(err)), USHER_OK, "'%s': %s", expr, err);
    cr_assert_str_empty(err);
    return c;
}

static bool matches(const char *expr, const char *utc)
{
    usher_cron c = parse_ok(expr);

    return usher_cron_matches(&c, at(utc) / 60);
}

/* The latest slot of expr in (after, now], as epoch seconds or -1. */
static int64_t latest(const char *expr, const char *now, const char *after)
{
    usher_cron c = parse_ok(expr);

    return usher_cron_latest(&c, at(now), at(after));
}

static void expect_refusal(const char *expr, const char *reason)
{
    usher_cron c;
    char err[256];

    memset(&c, 0xab, sizeof(c));
    cr_assert_eq(usher_cron_parse(expr, &c, err, sizeof(err)), USHER_ERR_INVALID, "accepted '%s'",
                 expr);
    cr_assert_str_eq(err, reason, "'%s'", expr);
    cr_assert_eq(c.minutes, 0);
    cr_assert_eq(c.wdays, 0);
    cr_assert_str_empty(c.text);
}

/* ---- syntax ------------------------------------------------------------- */

Test(cron, every_minute_matches_every_minute_and_keeps_its_text)
{
    usher_cron c = parse_ok("* * * * *");

    cr_assert_str_eq(c.text, "* * * * *");
    cr_assert(matches("* * * * *", "2026-03-02 10:02"));
    cr_assert(matches("* * * * *", "1970-01-01 00:00"));
    cr_assert(matches("* * * * *", "2099-12-31 23:59"));
}

Test(cron, numbers_match_only_that_minute_and_hour)
{
    cr_assert(matches("0 3 * * *", "2026-03-02 03:00"));
    cr_assert_not(matches("0 3 * * *", "2026-03-02 03:01"));
    cr_assert_not(matches("0 3 * * *", "2026-03-02 04:00"));
}

Test(cron, lists_ranges_and_steps_combine)
{
    const char *expr = "0-30/10,45 8-9 * * *";

    cr_assert(matches(expr, "2026-03-02 08:00"));
    cr_assert(matches(expr, "2026-03-02 08:10"));
    cr_assert(matches(expr, "2026-03-02 08:30"));
    cr_assert(matches(expr, "2026-03-02 09:45"));
    cr_assert_not(matches(expr, "2026-03-02 08:40"));
    cr_assert_not(matches(expr, "2026-03-02 08:05"));
    cr_assert_not(matches(expr, "2026-03-02 10:00"));
}

Test(cron, star_step_counts_from_the_fields_first_value)
{
    cr_assert(matches("*/15 */6 * * *", "2026-03-02 18:45"));
    cr_assert_not(matches("*/15 */6 * * *", "2026-03-02 19:45"));
    /* day-of-month starts at 1: odd days */
    cr_assert(matches("0 0 */2 * *", "2026-03-01 00:00"));
    cr_assert_not(matches("0 0 */2 * *", "2026-03-02 00:00"));
    /* month starts at 1: January, April, July, October */
    cr_assert(matches("0 0 1 */3 *", "2026-10-01 00:00"));
    cr_assert_not(matches("0 0 1 */3 *", "2026-03-01 00:00"));
}

Test(cron, sunday_is_both_0_and_7_and_names_work_in_any_case)
{
    /* 2026-03-01 is a Sunday, 2026-03-02 a Monday, 2026-03-07 a Saturday */
    cr_assert(matches("0 9 * * 0", "2026-03-01 09:00"));
    cr_assert(matches("0 9 * * 7", "2026-03-01 09:00"));
    cr_assert(matches("0 9 * * SUN", "2026-03-01 09:00"));
    cr_assert_not(matches("0 9 * * 7", "2026-03-02 09:00"));
    cr_assert(matches("0 9 * * mon-fri", "2026-03-02 09:00"));
    cr_assert_not(matches("0 9 * * Mon-Fri", "2026-03-07 09:00"));
    cr_assert(matches("0 9 * * 5-7", "2026-03-01 09:00"));
    cr_assert(matches("0 0 1 jan,JUL *", "2026-07-01 00:00"));
    cr_assert_not(matches("0 0 1 jan,jul *", "2026-06-01 00:00"));
    cr_assert(matches("0 0 1 mar-may/2 *", "2026-05-01 00:00"));
}

Test(cron, either_day_field_matches_when_both_are_restricted)
{
    /* 2026-03-06 and 2026-03-13 are Fridays, 2026-04-13 a Monday, 2026-03-11 a Wednesday */
    cr_assert(matches("0 0 13 * fri", "2026-03-06 00:00"));
    cr_assert(matches("0 0 13 * fri", "2026-04-13 00:00"));
    cr_assert_not(matches("0 0 13 * fri", "2026-03-11 00:00"));
    cr_assert_not(matches("0 0 13 * *", "2026-03-06 00:00"));
    cr_assert_not(matches("0 0 * * fri", "2026-04-13 00:00"));
}

Test(cron, both_day_fields_must_match_when_one_starts_with_a_star)
{
    /* odd days that are Fridays: the 13th, not the 6th (even) nor the 11th (Wednesday) */
    cr_assert(matches("0 0 */2 * fri", "2026-03-13 00:00"));
    cr_assert_not(matches("0 0 */2 * fri", "2026-03-06 00:00"));
    cr_assert_not(matches("0 0 */2 * fri", "2026-03-11 00:00"));
    cr_assert(matches("0 0 13 * */1", "2026-04-13 00:00"));
}

Test(cron, blanks_around_and_between_fields_are_accepted)
{
    cr_assert(matches("  0\t3  *  * *  ", "2026-03-02 03:00"));
}

/* ---- latest slots ------------------------------------------------------- */

Test(cron, latest_is_the_last_slot_at_or_before_now_after_the_recorded_one)
{
    const char *expr = "*/5 * * * *";

    cr_assert_eq(latest(expr, "2026-03-02 10:07:30", "2026-03-02 10:00"), at("2026-03-02 10:05"));
    cr_assert_eq(latest(expr, "2026-03-02 10:05:00", "2026-03-02 10:00"), at("2026-03-02 10:05"));
    cr_assert_eq(latest(expr, "2026-03-02 10:05:00", "2026-03-02 10:04:59"),
                 at("2026-03-02 10:05"));
    cr_assert_eq(latest(expr, "2026-03-02 10:09:59", "2026-03-02 10:05"), -1);
    cr_assert_eq(latest(expr, "2026-03-02 10:04:59", "2026-03-02 10:00"), -1);
}

Test(cron, latest_after_a_gap_is_only_the_newest_slot)
{
    cr_assert_eq(latest("*/5 * * * *", "2026-03-02 13:31", "2026-03-02 10:00"),
                 at("2026-03-02 13:30"));
    cr_assert_eq(latest("0 3 * * *", "2026-03-02 02:59", "2026-02-01 00:00"),
                 at("2026-03-01 03:00"));
    cr_assert_eq(latest("0 3 * * *", "2026-03-02 03:00", "2026-02-01 00:00"),
                 at("2026-03-02 03:00"));
}

Test(cron, latest_searches_earlier_hours_and_days)
{
    cr_assert_eq(latest("50 8 * * *", "2026-03-02 10:30", "2026-03-01 00:00"),
                 at("2026-03-02 08:50"));
    cr_assert_eq(latest("50 11 * * *", "2026-03-02 10:30", "2026-03-01 00:00"),
                 at("2026-03-01 11:50"));
    cr_assert_eq(latest("59 23 * * *", "2026-03-02 10:30", "2026-02-27 00:00"),
                 at("2026-03-01 23:59"));
    cr_assert_eq(latest("0 0 1 * *", "2026-03-02 10:30", "2026-01-01 00:00"),
                 at("2026-03-01 00:00"));
}

Test(cron, latest_is_none_when_now_is_not_after_the_recorded_slot)
{
    cr_assert_eq(latest("* * * * *", "2026-03-02 10:00", "2026-03-02 10:00"), -1);
    cr_assert_eq(latest("* * * * *", "2026-03-02 10:00", "2026-03-02 11:00"), -1);
}

Test(cron, yearly_slots_are_within_the_look_back_even_in_a_leap_year)
{
    cr_assert_eq(latest("0 0 1 1 *", "2024-12-31 23:59", "2000-01-01 00:00"),
                 at("2024-01-01 00:00"));
    cr_assert_eq(latest("0 0 1 1 *", "2026-12-31 23:59", "2000-01-01 00:00"),
                 at("2026-01-01 00:00"));
}

Test(cron, leap_day_matches_only_in_leap_years)
{
    const char *expr = "0 0 29 2 *";

    cr_assert(matches(expr, "2024-02-29 00:00"));
    cr_assert(matches(expr, "2000-02-29 00:00"));
    cr_assert_not(matches(expr, "2100-03-01 00:00")); /* 2100 is no leap year */
    cr_assert_not(matches(expr, "2025-03-01 00:00"));
    cr_assert_eq(latest(expr, "2024-06-01 00:00", "2020-01-01 00:00"), at("2024-02-29 00:00"));
    cr_assert_eq(latest(expr, "2024-02-29 00:00", "2020-01-01 00:00"), at("2024-02-29 00:00"));
    cr_assert_eq(latest(expr, "2100-12-31 00:00", "2000-01-01 00:00"), -1);
}

Test(cron, leap_day_more_than_366_days_back_is_beyond_the_look_back)
{
    cr_assert_eq(latest("0 0 29 2 *", "2025-06-01 00:00", "2020-01-01 00:00"), -1);
}

Test(cron, utc_days_have_no_daylight_saving_gaps_or_repeats)
{
    usher_cron daily = parse_ok("30 2 * * *"), hourly = parse_ok("0 * * * *");
    int64_t prev = usher_cron_latest(&daily, at("2026-01-01 12:00"), 0);
    int64_t slot, end = at("2026-10-25 23:59:59");
    int n = 0;

    /* 02:30 local does not exist on 2026-03-08 (US) nor 2026-03-29 (EU); in UTC it does */
    cr_assert(usher_cron_matches(&daily, at("2026-03-08 02:30") / 60));
    cr_assert(usher_cron_matches(&daily, at("2026-03-29 02:30") / 60));
    for (int64_t noon = at("2026-01-02 12:00"); noon < at("2026-12-31 12:00"); noon += 86400) {
        slot = usher_cron_latest(&daily, noon, prev);
        cr_assert_eq(slot - prev, 86400, "slot %lld after %lld", (long long)slot, (long long)prev);
        prev = slot;
    }
    /* 2026-10-25, when Europe's clocks go back: 24 hourly slots, not 25 */
    for (slot = usher_cron_latest(&hourly, end, 0); slot >= at("2026-10-25 00:00"); n++)
        slot = usher_cron_latest(&hourly, slot - 1, 0);
    cr_assert_eq(n, 24);
}

Test(cron, times_before_the_epoch_use_the_same_calendar)
{
    cr_assert(matches("0 0 31 12 *", "1969-12-31 00:00"));
    cr_assert(matches("59 23 * * wed", "1969-12-31 23:59")); /* a Wednesday */
    cr_assert_eq(latest("0 0 * * *", "1970-01-01 00:00:00", "1969-12-01 00:00"), 0);
    cr_assert_eq(latest("0 0 * * *", "1969-12-31 23:59:59", "1969-12-01 00:00"), -86400);
}

/* ---- refusals ----------------------------------------------------------- */

Test(cron, refuses_values_out_of_range)
{
    expect_refusal("61 * * * *", "minute: 61 is out of range (0..59)");
    expect_refusal("* 24 * * *", "hour: 24 is out of range (0..23)");
    expect_refusal("* * 0 * *", "day-of-month: 0 is out of range (1..31)");
    expect_refusal("* * 32 * *", "day-of-month: 32 is out of range (1..31)");
    expect_refusal("* * * 13 *", "month: 13 is out of range (1..12)");
    expect_refusal("* * * * 8", "day-of-week: 8 is out of range (0..7)");
    expect_refusal("99999999999999999999 * * * *",
                   "minute: 99999999999999999999 is out of range (0..59)");
}

Test(cron, refuses_the_wrong_number_of_fields)
{
    expect_refusal("* * *", "expected 5 fields (minute hour day-of-month month day-of-week), "
                            "found 3");
    expect_refusal("* * * * * *", "expected 5 fields (minute hour day-of-month month "
                                  "day-of-week), found 6");
    expect_refusal("", "expected 5 fields (minute hour day-of-month month day-of-week), found 0");
    expect_refusal("every day at noon", "expected 5 fields (minute hour day-of-month month "
                                        "day-of-week), found 4");
}

Test(cron, refuses_a_zero_or_missing_step_and_a_step_after_a_single_value)
{
    expect_refusal("*/0 * * * *", "minute: step 0 is out of range (1..60)");
    expect_refusal("* */25 * * *", "hour: step 25 is out of range (1..24)");
    expect_refusal("*/ * * * *", "minute: '*/': the step is not a number");
    expect_refusal("*/x * * * *", "minute: '*/x': the step is not a number");
    expect_refusal("5/2 * * * *", "minute: '5/2': a step needs * or a range before it");
}

Test(cron, refuses_garbage_inside_a_field)
{
    expect_refusal("a b c d e", "minute: 'a' is not a number");
    expect_refusal("* * * foo *", "month: 'foo' is neither a number nor a name like jan");
    expect_refusal("* * * * monday", "day-of-week: 'monday' is neither a number nor a name like "
                                     "sun");
    expect_refusal("* * * * jan", "day-of-week: 'jan' is neither a number nor a name like sun");
    expect_refusal("mon * * * *", "minute: 'mon' is not a number");
    expect_refusal("1-2-3 * * * *", "minute: unexpected '-3' in '1-2-3'");
    expect_refusal("12abc * * * *", "minute: unexpected 'abc' in '12abc'");
    expect_refusal("** * * * *", "minute: unexpected '*' in '**'");
    expect_refusal("-5 * * * *", "minute: '-5': a value is missing");
    expect_refusal("* * * * mon-", "day-of-week: 'mon-': a value is missing");
}

Test(cron, refuses_backwards_ranges_and_empty_list_items)
{
    expect_refusal("5-1 * * * *", "minute: range 5-1 runs backwards");
    expect_refusal("* * * * fri-mon", "day-of-week: range 5-1 runs backwards");
    expect_refusal("1,,2 * * * *", "minute: empty list item");
    expect_refusal("1, * * * *", "minute: empty list item");
}

Test(cron, refuses_a_missing_or_overlong_expression)
{
    char longer[200];
    usher_cron c;

    memset(longer, '1', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    expect_refusal(longer, "expression missing or longer than 127 characters");
    expect_refusal(NULL, "expression missing or longer than 127 characters");
    cr_assert_eq(usher_cron_parse("* * * * *", NULL, NULL, 0), USHER_ERR_INVALID);
    cr_assert_eq(usher_cron_parse("61 * * * *", &c, NULL, 0), USHER_ERR_INVALID);
}
