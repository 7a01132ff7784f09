/*
 * Addresses and CIDR blocks (cidr.h). inet_pton reads the addresses, so
 * every spelling it takes is taken (and only those: no octal, no short
 * IPv4 forms); the prefix is plain decimal digits within the family's
 * width. A list is read item by item and refused whole at its first bad
 * item, naming it.
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

bool api_addr_parse(const char *text, size_t len, api_addr *out)
{
    char copy[API_ADDR_TEXT_MAX];

    if (len == 0 || len >= sizeof(copy))
        return false;
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (inet_pton(AF_INET, copy, out->bytes) == 1) {
        out->len = 4;
        return true;
    }
    if (inet_pton(AF_INET6, copy, out->bytes) != 1)
        return false;
    out->len = 16;
    if (memcmp(out->bytes, v4_mapped, sizeof(v4_mapped)) == 0) {
        memmove(out->bytes, out->bytes + 12, 4);
        out->len = 4;
    }
    return true;
}

void api_addr_text(const api_addr *a, char out[API_ADDR_TEXT_MAX])
{
    if (inet_ntop(a->len == 4 ? AF_INET : AF_INET6, a->bytes, out, API_ADDR_TEXT_MAX) == NULL)
        snprintf(out, API_ADDR_TEXT_MAX, "?");
}

/* Decimal digits only, at most max; -1 otherwise. */
static int parse_prefix(const char *text, size_t len, int max)
{
    int value = 0;

    if (len == 0 || len > 3)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        value = value * 10 + (text[i] - '0');
    }
    return value <= max ? value : -1;
}

/* True when no bit of a past the first prefix bits is set. */
static bool host_bits_clear(const api_addr *a, int prefix)
{
    for (int bit = prefix; bit < a->len * 8; bit++) {
        if (a->bytes[bit / 8] & (0x80 >> (bit % 8)))
            return false;
    }
    return true;
}

bool api_cidr_parse(const char *text, size_t len, api_cidr *out)
{
    const char *slash = memchr(text, '/', len);
    size_t addr_len = slash != NULL ? (size_t)(slash - text) : len;

    if (!api_addr_parse(text, addr_len, &out->base))
        return false;
    /* ::ffff:10.0.0.0/104 reads as 10.0.0.0/8 */
    if (out->base.len == 4 && memchr(text, ':', addr_len) != NULL && slash != NULL) {
        out->prefix = parse_prefix(slash + 1, len - addr_len - 1, 128) - 96;
        return out->prefix >= 0 && host_bits_clear(&out->base, out->prefix);
    }
    out->prefix = slash == NULL ? out->base.len * 8
                                : parse_prefix(slash + 1, len - addr_len - 1, out->base.len * 8);
    return out->prefix >= 0 && host_bits_clear(&out->base, out->prefix);
}

bool api_cidr_contains(const api_cidr *c, const api_addr *a)
{
    int whole = c->prefix / 8, rest = c->prefix % 8;

    if (a->len != c->base.len || memcmp(a->bytes, c->base.bytes, (size_t)whole) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((a->bytes[whole] ^ c->base.bytes[whole]) & (0xff00 >> rest)) == 0;
}

usher_err api_cidr_list_parse(const char *text, api_cidr_list *out, char *why, size_t whylen)
{
    static const char separators[] = ", \t";
    const char *p = text != NULL ? text : "";

    *out = (api_cidr_list){ 0 };
    for (p += strspn(p, separators); *p != '\0'; p += strspn(p, separators)) {
        size_t len = strcspn(p, separators);
        api_cidr block;

        if (!api_cidr_parse(p, len, &block)) {
            snprintf(why, whylen, "'%.*s' is not an address or CIDR block (e.g. 10.0.0.0/8)",
                     (int)(len > 64 ? 64 : len), p);
            api_cidr_list_release(out);
            return USHER_ERR_CONFIG;
        }
        out->blocks = usher_realloc(out->blocks, (out->n + 1) * sizeof(*out->blocks));
        out->blocks[out->n++] = block;
        p += len;
    }
    return USHER_OK;
}

bool api_cidr_list_contains(const api_cidr_list *list, const api_addr *a)
{
    for (size_t i = 0; i < list->n; i++) {
        if (api_cidr_contains(&list->blocks[i], a))
            return true;
    }
    return false;
}

void api_cidr_list_release(api_cidr_list *list)
{
    free(list->blocks);
    *list = (api_cidr_list){ 0 };
}
