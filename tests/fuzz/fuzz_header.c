/*
 * Fuzz target: the request headers usher-api parses itself. The input is a
 * header value, read as
 *   - Authorization (api_bearer_token, auth.c), then hashed as a token is;
 *   - Range (api_range_parse, range.c) over files of several sizes.
 * Properties: a bearer token lies inside the header, without the spaces
 * around it; a range that is served lies inside the file (first <= last <
 * size), is refused (416) only when it starts at or past the end or asks
 * for no bytes, and is ignored (the whole file) for anything malformed.
 */
#include <strings.h>

#include "auth.h"
#include "fuzz.h"
#include "range.h"
#include "token.h"

static void check_bearer(const char *h)
{
    size_t len = 99999;
    const char *token = api_bearer_token(h, &len);
    unsigned char hash[USHER_TOKEN_HASH_BYTES];

    FUZZ_CHECK(token != NULL && len <= strlen(h) && token >= h && token + len <= h + strlen(h),
               "token outside '%s'", h);
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        FUZZ_CHECK(len == 0, "scheme of '%s' is not Bearer, yet a token", h);
        return;
    }
    FUZZ_CHECK(len == 0 || (token[0] != ' ' && token[len - 1] != ' '), "'%.*s' has spaces",
               (int)len, token);
    if (len > 0 && len < USHER_TOKEN_MAX)
        usher_token_hash(token, len, hash);
}

static void check_range(const char *h, uint64_t size)
{
    uint64_t first = 7, last = 7;
    api_range kind = api_range_parse(h, size, &first, &last);

    switch (kind) {
    case API_RANGE_NONE:
    case API_RANGE_UNSATISFIABLE:
        FUZZ_CHECK(first == 7 && last == 7, "'%s' over %llu: %d, yet bounds written", h,
                   (unsigned long long)size, (int)kind);
        FUZZ_CHECK(kind == API_RANGE_NONE || strncmp(h, "bytes=", 6) == 0, "'%s': 416", h);
        break;
    case API_RANGE_ONE:
        FUZZ_CHECK(strncmp(h, "bytes=", 6) == 0 && strchr(h, ',') == NULL && first <= last &&
                       last < size,
                   "'%s' over %llu bytes: %llu-%llu", h, (unsigned long long)size,
                   (unsigned long long)first, (unsigned long long)last);
        break;
    default:
        FUZZ_CHECK(0, "'%s': range kind %d", h, (int)kind);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t sizes[] = { 0, 1, 1000, UINT64_MAX };
    char *h = fuzz_text(data, size);
    size_t len = 0;

    if (h == NULL)
        return 0;
    FUZZ_CHECK(api_bearer_token(NULL, &len) == NULL, "no header, yet a token");
    check_bearer(h);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        check_range(h, sizes[i]);
    check_range(h, fuzz_hash(data, size) % 100000);
    free(h);
    return 0;
}
