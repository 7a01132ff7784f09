/*
 * Fuzz target: the guard's reading of request heads (api/http_head.c),
 * the first code that sees what a client sends. The input is the bytes of
 * a connection, fed to the scanner whole, one byte at a time, and in
 * pieces whose sizes the input's first byte picks.
 * Properties: the scanner says the same however the bytes are split; a
 * head it finds ends in an empty line and holds no bare CR, bare LF or
 * control byte; what it refuses has one of those before the end; an
 * accepted head has a target of visible ASCII inside it, a Content-Length
 * of 18 digits at most, and a body only on a method libevent reads one for.
 */
#include "fuzz.h"
#include "http_head.h"

/* Scans data in pieces of `step` bytes (0: whole). */
static api_head_state scan_split(const uint8_t *data, size_t size, size_t step, api_head_scan *s)
{
    api_head_state st = API_HEAD_MORE;
    size_t at = 0;

    memset(s, 0, sizeof(*s));
    if (step == 0)
        step = size;
    while (st == API_HEAD_MORE && at < size) {
        size_t n = size - at < step ? size - at : step;

        st = api_head_scan_feed(s, data + at, n);
        at += n;
    }
    return st;
}

/* True when data[0..len) has a CR not before LF, an LF not after CR, or a control byte. */
static bool has_bad_byte(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = data[i];

        if ((c == '\r' && (i + 1 >= len || data[i + 1] != '\n')) ||
            (c == '\n' && (i == 0 || data[i - 1] != '\r')) ||
            (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
            return true;
    }
    return false;
}

static void check_head(const uint8_t *data, const api_head_scan *s)
{
    const char *head = (const char *)data + s->skip;
    size_t len = s->len - s->skip;
    api_head h;
    api_head_error err;

    FUZZ_CHECK(len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0, "head of %zu bytes", len);
    FUZZ_CHECK(!has_bad_byte(data, s->len), "a bad byte in a head scanned whole");
    if (!api_head_parse(head, len, &h, &err)) {
        FUZZ_CHECK(err.status >= 400 && err.status < 600 && err.code != NULL && err.message != NULL,
                   "refusal %d", err.status);
        FUZZ_CHECK(strchr(err.message, '"') == NULL && strchr(err.message, '\\') == NULL,
                   "'%s' would break the JSON", err.message);
        return;
    }
    FUZZ_CHECK(h.target > head && h.target + h.target_len < head + len && h.target_len > 0,
               "target outside the head");
    for (size_t i = 0; i < h.target_len; i++)
        FUZZ_CHECK(h.target[i] > 0x20 && h.target[i] < 0x7f, "target byte %02x",
                   (unsigned char)h.target[i]);
    FUZZ_CHECK(h.content_length >= -1 && h.content_length < 1000000000000000000LL, "length %lld",
               (long long)h.content_length);
    FUZZ_CHECK(h.content_length <= 0 || api_head_method_has_body(h.method), "a body on method %d",
               (int)h.method);
    FUZZ_CHECK(h.minor == 0 || h.minor == 1, "HTTP/1.%d", h.minor);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    api_head_scan whole, bytes, pieces;
    api_head_state st = scan_split(data, size, 0, &whole);

    FUZZ_CHECK(scan_split(data, size, 1, &bytes) == st && bytes.len == whole.len &&
                   bytes.skip == whole.skip,
               "byte by byte: state or length differs");
    FUZZ_CHECK(scan_split(data, size, size > 0 ? 1 + data[0] % 7 : 0, &pieces) == st &&
                   pieces.len == whole.len && pieces.skip == whole.skip,
               "in pieces: state or length differs");
    if (st == API_HEAD_DONE)
        check_head(data, &whole);
    else if (st == API_HEAD_BAD)
        FUZZ_CHECK(has_bad_byte(data, size), "refused without a bad byte");
    else
        FUZZ_CHECK(whole.len == size, "more to come, yet %zu of %zu bytes scanned", whole.len,
                   size);
    return 0;
}
