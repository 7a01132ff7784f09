/*
 * Fuzz target: signed ticket codes (platform/ticket.c), as a scanner, a
 * download link (?ticket_code=) or the inbox hands them to usher-api. The
 * input is the code text; the key is fixed, the one tests/fuzz/corpus/ticket/
 * was signed with (000102...1f, as in tests/unit/test_ticket.c), so the
 * corpus holds valid codes whose mutations reach past the tag check.
 * Properties:
 *   - a code that verifies has positive ids, and signing those ids gives
 *     back the code (upper-cased, spaces trimmed): one code per ticket;
 *   - under another key it does not verify;
 *   - ids derived from the input sign to a code that verifies to them, in
 *     any case and with spaces around, and not with one character changed;
 *   - the input as a hex key: accepted only as 64 hex digits.
 */
#include <ctype.h>
#include <stdbool.h>

#include "fuzz.h"
#include "ticket.h"

static const unsigned char master[USHER_TICKET_KEY_BYTES] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};

/* code without the spaces around it, upper-cased, into out (USHER_TICKET_CODE_MAX bytes). */
static void canonical(const char *code, char *out)
{
    size_t len;

    while (*code == ' ')
        code++;
    len = strlen(code);
    while (len > 0 && code[len - 1] == ' ')
        len--;
    FUZZ_CHECK(len < USHER_TICKET_CODE_MAX, "a %zu-character code verified", len);
    for (size_t i = 0; i < len; i++)
        out[i] = (char)toupper((unsigned char)code[i]);
    out[len] = '\0';
}

static void check_verified(const char *code)
{
    unsigned char other[USHER_TICKET_KEY_BYTES];
    char signed_code[USHER_TICKET_CODE_MAX], expected[USHER_TICKET_CODE_MAX];
    int64_t event = 0, registration = 0, e2, r2;

    if (usher_ticket_verify(master, code, &event, &registration) != USHER_OK)
        return;
    FUZZ_CHECK(event > 0 && registration > 0, "ids %lld, %lld", (long long)event,
               (long long)registration);
    FUZZ_CHECK(usher_ticket_sign(master, event, registration, signed_code, sizeof(signed_code)) ==
                   USHER_OK,
               "cannot sign the ids of a valid code");
    canonical(code, expected);
    FUZZ_CHECK(strcmp(signed_code, expected) == 0, "'%s' verified but signs as '%s'", code,
               signed_code);
    memcpy(other, master, sizeof(other));
    other[31] ^= 0x80;
    FUZZ_CHECK(usher_ticket_verify(other, code, &e2, &r2) == USHER_ERR_INVALID,
               "'%s' verified under another key", code);
}

/* Signs ids derived from the input and checks the code's variants. */
static void check_round_trip(const uint8_t *data, size_t size)
{
    uint64_t h = fuzz_hash(data, size);
    int64_t event = (int64_t)(h >> 1 >> (h % 48)), registration = (int64_t)(h % 1000003);
    char code[USHER_TICKET_CODE_MAX], variant[USHER_TICKET_CODE_MAX + 8];
    int64_t e = 0, r = 0;
    size_t at;

    event = event > 0 ? event : 1;
    registration = registration > 0 ? registration : INT64_MAX;
    FUZZ_CHECK(usher_ticket_sign(master, event, registration, code, sizeof(code)) == USHER_OK,
               "sign %lld %lld", (long long)event, (long long)registration);
    FUZZ_CHECK(usher_ticket_verify(master, code, &e, &r) == USHER_OK && e == event &&
                   r == registration,
               "'%s' does not verify to its ids", code);
    snprintf(variant, sizeof(variant), "  %s ", code);
    for (char *p = variant; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    FUZZ_CHECK(usher_ticket_verify(master, variant, &e, &r) == USHER_OK, "'%s' refused", variant);
    at = 2 + h % (strlen(code) - 2);
    snprintf(variant, sizeof(variant), "%s", code);
    variant[at] = variant[at] == 'A' ? 'B' : 'A';
    FUZZ_CHECK(usher_ticket_verify(master, variant, &e, &r) == USHER_ERR_INVALID,
               "'%s' (from '%s') verified", variant, code);
}

static void check_hex_key(const char *text)
{
    unsigned char key[USHER_TICKET_KEY_BYTES];
    bool hex = strlen(text) == 2 * USHER_TICKET_KEY_BYTES;

    for (const char *p = text; hex && *p != '\0'; p++)
        hex = isxdigit((unsigned char)*p) != 0;
    FUZZ_CHECK((usher_ticket_key_from_hex(text, key) == USHER_OK) == hex, "key '%s' wrongly %s",
               text, hex ? "refused" : "accepted");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);

    if (text == NULL)
        return 0;
    check_verified(text);
    check_hex_key(text);
    check_round_trip(data, size);
    free(text);
    return 0;
}
