/*
 * Layout of the signed bytes: version (1), event id and registration id as
 * LEB128 varints (small ids make short codes), then the first 10 bytes of
 * HMAC-SHA256(event key, those bytes). The event key is
 * HMAC-SHA256(master, "usher-ticket-event:" + decimal event id), so a key
 * for one event signs nothing for another. Tags are compared in constant
 * time (sodium_memcmp).
 */
#include "ticket.h"

#include <ctype.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define VERSION   1
#define TAG_BYTES 10
#define BODY_MAX  (1 + 10 + 10)
#define RAW_MAX   (BODY_MAX + TAG_BYTES)
#define PREFIX    "U1"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static size_t put_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;

    do {
        p[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            p[n] |= 0x80;
        n++;
    } while (v != 0);
    return n;
}

/*
 * Bytes used, or 0 when the varint is malformed or runs past len. Only what
 * put_varint writes is well-formed: no trailing zero groups (0x81 0x00 is
 * not a second spelling of 1) and nothing past 64 bits, so each id has one
 * encoding and a ticket one code.
 */
static size_t get_varint(const unsigned char *p, size_t len, uint64_t *v)
{
    *v = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        if (i == 9 && p[i] > 1)
            return 0; /* the 10th group holds bit 63 only */
        *v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if ((p[i] & 0x80) == 0)
            return i > 0 && p[i] == 0 ? 0 : i + 1;
    }
    return 0;
}

static void event_key(const unsigned char master[USHER_TICKET_KEY_BYTES], int64_t event_id,
                      unsigned char key[crypto_auth_hmacsha256_BYTES])
{
    char label[64];
    int n = snprintf(label, sizeof(label), "usher-ticket-event:%" PRId64, event_id);

    crypto_auth_hmacsha256(key, (const unsigned char *)label, (size_t)n, master);
}

static void tag(const unsigned char master[USHER_TICKET_KEY_BYTES], int64_t event_id,
                const unsigned char *body, size_t len, unsigned char out[TAG_BYTES])
{
    unsigned char key[crypto_auth_hmacsha256_BYTES], mac[crypto_auth_hmacsha256_BYTES];

    event_key(master, event_id, key);
    crypto_auth_hmacsha256(mac, body, len, key);
    memcpy(out, mac, TAG_BYTES);
    sodium_memzero(key, sizeof(key));
}

static size_t base32_encode(const unsigned char *in, size_t len, char *out)
{
    size_t n = 0;
    unsigned buffer = 0;
    int bits = 0;

    for (size_t i = 0; i < len; i++) {
        buffer = (buffer << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[n++] = alphabet[(buffer >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[n++] = alphabet[(buffer << (5 - bits)) & 31];
    out[n] = '\0';
    return n;
}

/* Bytes decoded, or 0 on a character outside the alphabet or too much input. */
static size_t base32_decode(const char *in, size_t len, unsigned char *out, size_t max)
{
    size_t n = 0;
    unsigned buffer = 0;
    int bits = 0;

    for (size_t i = 0; i < len; i++) {
        const char *at = strchr(alphabet, toupper((unsigned char)in[i]));

        if (in[i] == '\0' || at == NULL)
            return 0;
        buffer = (buffer << 5) | (unsigned)(at - alphabet);
        bits += 5;
        if (bits >= 8) {
            if (n == max)
                return 0;
            out[n++] = (unsigned char)((buffer >> (bits - 8)) & 0xff);
            bits -= 8;
        }
    }
    return n;
}

usher_err usher_ticket_sign(const unsigned char master[USHER_TICKET_KEY_BYTES], int64_t event_id,
                            int64_t registration_id, char *code, size_t len)
{
    unsigned char raw[RAW_MAX];
    size_t n = 0;

    if (event_id <= 0 || registration_id <= 0 || len < USHER_TICKET_CODE_MAX)
        return USHER_ERR_INVALID;
    if (sodium_init() < 0)
        return USHER_ERR_SYSTEM;
    raw[n++] = VERSION;
    n += put_varint(raw + n, (uint64_t)event_id);
    n += put_varint(raw + n, (uint64_t)registration_id);
    tag(master, event_id, raw, n, raw + n);
    memcpy(code, PREFIX, 2);
    base32_encode(raw, n + TAG_BYTES, code + 2);
    return USHER_OK;
}

/* Trims spaces and the prefix; returns the base32 part and its length, or NULL. */
static const char *strip(const char *code, size_t *len)
{
    size_t end;

    while (*code == ' ')
        code++;
    end = strlen(code);
    while (end > 0 && code[end - 1] == ' ')
        end--;
    if (end < 2 || end >= USHER_TICKET_CODE_MAX || toupper((unsigned char)code[0]) != 'U' ||
        code[1] != '1')
        return NULL;
    *len = end - 2;
    return code + 2;
}

usher_err usher_ticket_verify(const unsigned char master[USHER_TICKET_KEY_BYTES], const char *code,
                              int64_t *event_id, int64_t *registration_id)
{
    unsigned char raw[RAW_MAX + 1], expected[TAG_BYTES];
    char canonical[USHER_TICKET_CODE_MAX];
    uint64_t event, registration;
    size_t len, n, a, b;
    const char *text = strip(code, &len);

    if (sodium_init() < 0)
        return USHER_ERR_SYSTEM;
    if (text == NULL || (n = base32_decode(text, len, raw, sizeof(raw))) == 0 ||
        n < 1 + 2 + TAG_BYTES || raw[0] != VERSION)
        return USHER_ERR_INVALID;
    a = get_varint(raw + 1, n - 1 - TAG_BYTES, &event);
    b = a == 0 ? 0 : get_varint(raw + 1 + a, n - 1 - a - TAG_BYTES, &registration);
    if (b == 0 || 1 + a + b + TAG_BYTES != n || event == 0 || registration == 0 ||
        event > INT64_MAX || registration > INT64_MAX)
        return USHER_ERR_INVALID;
    /* One code per ticket: re-encoding must give the same characters. */
    base32_encode(raw, n, canonical);
    if (strlen(canonical) != len || strncasecmp(canonical, text, len) != 0)
        return USHER_ERR_INVALID;
    tag(master, (int64_t)event, raw, n - TAG_BYTES, expected);
    if (sodium_memcmp(expected, raw + n - TAG_BYTES, TAG_BYTES) != 0)
        return USHER_ERR_INVALID;
    *event_id = (int64_t)event;
    *registration_id = (int64_t)registration;
    return USHER_OK;
}

usher_err usher_ticket_key_from_hex(const char *hex, unsigned char key[USHER_TICKET_KEY_BYTES])
{
    size_t bin_len = 0;

    if (hex == NULL || strlen(hex) != 2 * USHER_TICKET_KEY_BYTES ||
        sodium_hex2bin(key, USHER_TICKET_KEY_BYTES, hex, strlen(hex), NULL, &bin_len, NULL) != 0 ||
        bin_len != USHER_TICKET_KEY_BYTES)
        return USHER_ERR_INVALID;
    return USHER_OK;
}
