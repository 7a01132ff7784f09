/*
 * Signed ticket codes: pure logic with libsodium, no services.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "ticket.h"

static unsigned char master[USHER_TICKET_KEY_BYTES];

static void fill_key(void)
{
    cr_assert_eq(usher_ticket_key_from_hex("000102030405060708090a0b0c0d0e0f"
                                           "101112131415161718191a1b1c1d1e1f",
                                           master),
                 USHER_OK);
}

TestSuite(ticket, .init = fill_key);

Test(ticket, a_signed_code_verifies_to_its_ids)
{
    char code[USHER_TICKET_CODE_MAX];
    int64_t event, registration;

    cr_assert_eq(usher_ticket_sign(master, 42, 123456, code, sizeof(code)), USHER_OK);
    cr_assert_eq(strncmp(code, "U1", 2), 0, "%s", code);
    cr_assert_eq(usher_ticket_verify(master, code, &event, &registration), USHER_OK);
    cr_assert_eq(event, 42);
    cr_assert_eq(registration, 123456);
}

Test(ticket, codes_are_short_and_qr_alphanumeric)
{
    char code[USHER_TICKET_CODE_MAX];

    cr_assert_eq(usher_ticket_sign(master, 7, 20000, code, sizeof(code)), USHER_OK);
    cr_assert_leq(strlen(code), 32, "%s is long", code);
    for (const char *p = code; *p != '\0'; p++)
        cr_assert(isupper((unsigned char)*p) || (*p >= '2' && *p <= '7') || *p == '1', "%c", *p);
    cr_assert_eq(usher_ticket_sign(master, INT64_MAX, INT64_MAX, code, sizeof(code)), USHER_OK);
    cr_assert_lt(strlen(code), USHER_TICKET_CODE_MAX);
}

Test(ticket, every_single_character_change_is_refused)
{
    char code[USHER_TICKET_CODE_MAX], forged[USHER_TICKET_CODE_MAX];
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    int64_t event, registration;

    cr_assert_eq(usher_ticket_sign(master, 42, 99, code, sizeof(code)), USHER_OK);
    for (size_t i = 2; i < strlen(code); i++) {
        for (const char *c = alphabet; *c != '\0'; c++) {
            if (*c == code[i])
                continue;
            strcpy(forged, code);
            forged[i] = *c;
            cr_assert_eq(usher_ticket_verify(master, forged, &event, &registration),
                         USHER_ERR_INVALID, "accepted %s (from %s)", forged, code);
        }
    }
}

Test(ticket, a_code_for_another_event_or_key_is_refused)
{
    unsigned char other[USHER_TICKET_KEY_BYTES];
    char code[USHER_TICKET_CODE_MAX];
    int64_t event, registration;

    memcpy(other, master, sizeof(other));
    other[0] ^= 1;
    cr_assert_eq(usher_ticket_sign(master, 42, 99, code, sizeof(code)), USHER_OK);
    cr_assert_eq(usher_ticket_verify(other, code, &event, &registration), USHER_ERR_INVALID);
}

Test(ticket, malformed_codes_are_refused)
{
    static const char *const bad[] = {
        "",
        "U1",
        "U2AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "U1!!!!",
        "U1AAAA",
        "XYZ",
        "U1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "U1AEAQCAIBAEAQCAIBAEAQCAIBAE0", /* '0' and '1' are not base32 */
    };
    int64_t event = -1, registration = -1;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(usher_ticket_verify(master, bad[i], &event, &registration), USHER_ERR_INVALID,
                     "accepted '%s'", bad[i]);
    cr_assert_eq(event, -1, "ids were written for a refused code");
}

Test(ticket, a_truncated_code_is_refused)
{
    char code[USHER_TICKET_CODE_MAX];
    int64_t event, registration;

    cr_assert_eq(usher_ticket_sign(master, 5, 6, code, sizeof(code)), USHER_OK);
    for (size_t len = strlen(code) - 1; len > 0; len--) {
        code[len] = '\0';
        cr_assert_eq(usher_ticket_verify(master, code, &event, &registration), USHER_ERR_INVALID,
                     "accepted %s", code);
    }
}

Test(ticket, scanners_may_lowercase_or_pad_the_code)
{
    char code[USHER_TICKET_CODE_MAX], typed[USHER_TICKET_CODE_MAX + 4];
    int64_t event, registration;

    cr_assert_eq(usher_ticket_sign(master, 3, 4, code, sizeof(code)), USHER_OK);
    snprintf(typed, sizeof(typed), " %s ", code);
    for (char *p = typed; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    cr_assert_eq(usher_ticket_verify(master, typed, &event, &registration), USHER_OK);
    cr_assert_eq(registration, 4);
}

Test(ticket, ids_must_be_positive_and_keys_64_hex_digits)
{
    char code[USHER_TICKET_CODE_MAX];
    unsigned char key[USHER_TICKET_KEY_BYTES];

    cr_assert_eq(usher_ticket_sign(master, 0, 1, code, sizeof(code)), USHER_ERR_INVALID);
    cr_assert_eq(usher_ticket_sign(master, 1, -1, code, sizeof(code)), USHER_ERR_INVALID);
    cr_assert_eq(usher_ticket_key_from_hex("abcd", key), USHER_ERR_INVALID);
    cr_assert_eq(usher_ticket_key_from_hex(NULL, key), USHER_ERR_INVALID);
}
